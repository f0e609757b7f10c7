#include "sim/timeline.hpp"

#include <algorithm>
#include <map>

namespace anya::sim {

namespace {
constexpr double kWidth = 1400;
constexpr double kLeft = 90;
constexpr double kLane = 46;
constexpr double kTop = 40;

const char* role_color(engine::Role r) {
  switch (r) {
    case engine::Role::leader: return "#2e7d32";
    case engine::Role::candidate: return "#f9a825";
    case engine::Role::pre_candidate: return "#fff176";
    case engine::Role::learner: return "#90caf9";
    case engine::Role::follower: return "#cfd8dc";
  }
  return "#cfd8dc";
}

const char* mark_color(Timeline::Mark m) {
  switch (m) {
    case Timeline::Mark::crash: return "#c62828";
    case Timeline::Mark::restart: return "#1565c0";
    case Timeline::Mark::pause: return "#6a1b9a";
    case Timeline::Mark::resume: return "#ab47bc";
    case Timeline::Mark::clock_jump: return "#ef6c00";
    case Timeline::Mark::dead: return "#000000";
    case Timeline::Mark::violation: return "#ff0000";
    case Timeline::Mark::liveness: return "#00897b";
    case Timeline::Mark::membership: return "#3949ab";
  }
  return "#000";
}

const char* mark_name(Timeline::Mark m) {
  switch (m) {
    case Timeline::Mark::crash: return "crash";
    case Timeline::Mark::restart: return "restart";
    case Timeline::Mark::pause: return "pause";
    case Timeline::Mark::resume: return "resume";
    case Timeline::Mark::clock_jump: return "clock jump";
    case Timeline::Mark::dead: return "disk corrupt: stays down";
    case Timeline::Mark::violation: return "VIOLATION";
    case Timeline::Mark::liveness: return "healed";
    case Timeline::Mark::membership: return "membership";
  }
  return "";
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}
}  // namespace

void Timeline::role(std::uint64_t at_us, engine::NodeId node, engine::Role role,
                    engine::Term term) {
  roles_.push_back({at_us, node, role, term});
}

void Timeline::commit(std::uint64_t at_us, engine::NodeId node, engine::Index index) {
  commits_.push_back({at_us, node, index});
}

void Timeline::mark(std::uint64_t at_us, engine::NodeId node, Mark kind, std::string note) {
  marks_.push_back({at_us, node, kind, std::move(note)});
}

void Timeline::partition(std::uint64_t start_us, std::uint64_t end_us, std::string describe) {
  partitions_.push_back({start_us, end_us, std::move(describe)});
}

std::string Timeline::render_html(const std::string& title, std::uint32_t nodes) const {
  for (const RoleChange& r : roles_) nodes = std::max(nodes, static_cast<std::uint32_t>(r.node));
  for (const MarkPoint& m : marks_) nodes = std::max(nodes, static_cast<std::uint32_t>(m.node));
  const double end = static_cast<double>(std::max<std::uint64_t>(end_us_, 1));
  auto x = [&](std::uint64_t us) { return kLeft + (kWidth - kLeft - 10) * static_cast<double>(us) / end; };
  auto y = [&](engine::NodeId n) { return kTop + kLane * static_cast<double>(n - 1); };
  const double height = kTop + kLane * nodes + 60;
  std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" + num(kWidth) +
                    "' height='" + num(height) + "' font-family='monospace' font-size='11'>\n";
  // Partitions as shaded bands behind everything.
  for (const Span& p : partitions_) {
    svg += "<rect x='" + num(x(p.start_us)) + "' y='" + num(kTop - 8) + "' width='" +
           num(std::max(1.0, x(p.end_us) - x(p.start_us))) + "' height='" +
           num(kLane * nodes + 4) + "' fill='#ffcdd2' opacity='0.5'><title>partition: " +
           escape(p.describe) + "</title></rect>\n";
  }
  // Role lanes.
  std::map<engine::NodeId, std::vector<RoleChange>> by_node;
  for (const RoleChange& r : roles_) by_node[r.node].push_back(r);
  for (engine::NodeId n = 1; n <= nodes; n++) {
    svg += "<text x='4' y='" + num(y(n) + 16) + "'>node " + std::to_string(n) + "</text>\n";
    const auto& changes = by_node[n];
    for (std::size_t i = 0; i < changes.size(); i++) {
      const std::uint64_t until = i + 1 < changes.size() ? changes[i + 1].at_us : end_us_;
      const RoleChange& r = changes[i];
      svg += "<rect x='" + num(x(r.at_us)) + "' y='" + num(y(n)) + "' width='" +
             num(std::max(0.5, x(until) - x(r.at_us))) + "' height='22' fill='" +
             role_color(r.role) + "'><title>" + engine::role_name(r.role) + " term " +
             std::to_string(r.term) + " from " + num(static_cast<double>(r.at_us) / 1000) +
             " ms</title></rect>\n";
      if (r.role == engine::Role::leader && x(until) - x(r.at_us) > 30) {
        svg += "<text x='" + num(x(r.at_us) + 2) + "' y='" + num(y(n) + 15) +
               "' fill='#fff'>t" + std::to_string(r.term) + "</text>\n";
      }
    }
  }
  // Commit ticks under each lane.
  for (const CommitPoint& c : commits_) {
    svg += "<line x1='" + num(x(c.at_us)) + "' x2='" + num(x(c.at_us)) + "' y1='" +
           num(y(c.node) + 24) + "' y2='" + num(y(c.node) + 30) +
           "' stroke='#37474f' stroke-width='0.5'><title>commit " + std::to_string(c.index) +
           "</title></line>\n";
  }
  // Event marks.
  for (const MarkPoint& m : marks_) {
    const double cy = m.node == engine::kNoNode ? kTop - 14 : y(m.node) + 11;
    svg += "<circle cx='" + num(x(m.at_us)) + "' cy='" + num(cy) + "' r='4' fill='" +
           mark_color(m.kind) + "'><title>" + mark_name(m.kind) + " at " +
           num(static_cast<double>(m.at_us) / 1000) + " ms " + escape(m.note) +
           "</title></circle>\n";
  }
  // Time axis.
  const double axis = kTop + kLane * nodes + 10;
  for (int i = 0; i <= 10; i++) {
    const std::uint64_t at = static_cast<std::uint64_t>(end * i / 10);
    svg += "<text x='" + num(x(at) - 10) + "' y='" + num(axis + 12) + "'>" +
           num(static_cast<double>(at) / 1e6) + "s</text>\n";
  }
  svg += "</svg>\n";

  std::string html = "<!doctype html><html><head><meta charset='utf-8'><title>" + escape(title) +
                     "</title></head><body style='font-family:sans-serif'>\n<h3>" +
                     escape(title) + "</h3>\n";
  html += "<p>Lanes: <span style='background:#2e7d32;color:#fff'>leader</span> "
          "<span style='background:#f9a825'>candidate</span> "
          "<span style='background:#fff176'>pre-candidate</span> "
          "<span style='background:#cfd8dc'>follower</span>. Red bands: partitions. Dots: "
          "<span style='color:#c62828'>crash</span>, <span style='color:#1565c0'>restart</span>, "
          "<span style='color:#6a1b9a'>pause</span>, <span style='color:#ef6c00'>clock jump</span>"
          ". Ticks under a lane: commits. Hover for details.</p>\n";
  html += svg;
  html += "<h4>Events</h4><pre>\n";
  for (const MarkPoint& m : marks_) {
    html += num(static_cast<double>(m.at_us) / 1000) + " ms  node " + std::to_string(m.node) +
            "  " + mark_name(m.kind) + "  " + escape(m.note) + "\n";
  }
  for (const Span& p : partitions_) {
    html += num(static_cast<double>(p.start_us) / 1000) + "-" +
            num(static_cast<double>(p.end_us) / 1000) + " ms  partition  " + escape(p.describe) +
            "\n";
  }
  html += "</pre></body></html>\n";
  return html;
}

}  // namespace anya::sim

#include "transport/metrics/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <system_error>
#include <utility>

namespace anya::transport::metrics {
namespace {

// Doubles with |value| below this are integers exactly, so they print without a fraction.
constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53

// One writer thread, but a reader may load concurrently: a relaxed compare-and-swap loop keeps
// each addition atomic without needing C++20's atomic<double>::fetch_add in every library.
void atomic_add(std::atomic<double>& target, double amount) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

bool is_name_start(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool is_name_char(char c, bool allow_colon) {
  return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  if (!is_name_start(name.front(), allow_colon)) return false;
  return std::all_of(name.begin(), name.end(),
                     [allow_colon](char c) { return is_name_char(c, allow_colon); });
}

// `{a="x",b="y"}`, with an optional trailing pair (the histogram's le); nothing if no pairs.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const LabelValues& values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  ANYA_ASSERT(names.size() == values.size());
  if (names.empty() && extra_name.empty()) return;
  out.push_back('{');
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i != 0) out.push_back(',');
    out += names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += escape_label_value(extra_value);
    out.push_back('"');
  }
  out.push_back('}');
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const LabelValues& values,
                   const std::string& value_text, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, names, values, extra_name, extra_value);
  out.push_back(' ');
  out += value_text;
  out.push_back('\n');
}

}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }

bool valid_label_name(std::string_view name) {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string format_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::to_chars_result result{};
  if (std::fabs(value) < kExactIntegerLimit && value == std::trunc(value)) {
    result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 0);
  } else {
    result = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round trip
  }
  ANYA_ASSERT(result.ec == std::errc());
  return std::string(buffer, result.ptr);
}

std::string format_uint(std::uint64_t value) { return std::to_string(value); }

const char* metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  ANYA_ASSERT(false);
  return "";
}

// --- Counter, Gauge, Histogram -----------------------------------------------------------------

void Counter::add(double amount) {
  ANYA_ASSERT(std::isfinite(amount));
  ANYA_ASSERT(amount >= 0.0);
  atomic_add(fraction_, amount);
}

double Counter::value() const {
  return static_cast<double>(whole()) + fraction_.load(std::memory_order_relaxed);
}

std::string Counter::value_text() const {
  const std::uint64_t whole_part = whole();
  const double fraction = fraction_.load(std::memory_order_relaxed);
  ANYA_ASSERT(fraction >= 0.0);
  if (fraction == 0.0) return format_uint(whole_part);
  return format_double(static_cast<double>(whole_part) + fraction);
}

void Gauge::inc(double amount) { atomic_add(value_, amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(bounds_.size() + 1) {
  ANYA_ASSERT(bounds_.size() <= kMaxHistogramBuckets);
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    ANYA_ASSERT(std::isfinite(bounds_[i]));
    ANYA_ASSERT(i == 0 || bounds_[i - 1] < bounds_[i]);
  }
}

void Histogram::observe(double value) {
  // First bound >= value; NaN compares false with everything, so it must be sent to +Inf itself.
  std::size_t bucket = bounds_.size();
  if (!std::isnan(value)) {
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    bucket = static_cast<std::size_t>(it - bounds_.begin());
  }
  ANYA_ASSERT(bucket < buckets_.size());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, value);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.cumulative.reserve(buckets_.size());
  std::uint64_t running = 0;
  for (const auto& bucket : buckets_) {
    running += bucket.load(std::memory_order_relaxed);
    snap.cumulative.push_back(running);
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  ANYA_ASSERT(snap.cumulative.size() == bounds_.size() + 1);
  return snap;
}

// --- rendering -----------------------------------------------------------------------------------

namespace detail {

void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Counter& child) {
  append_sample(out, name, "", label_names, values, child.value_text());
}

void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Gauge& child) {
  append_sample(out, name, "", label_names, values, format_double(child.value()));
}

void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Histogram& child) {
  const Histogram::Snapshot snap = child.snapshot();
  const auto& bounds = child.upper_bounds();
  ANYA_ASSERT(snap.cumulative.size() == bounds.size() + 1);
  for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
    const std::string le = i < bounds.size() ? format_double(bounds[i]) : "+Inf";
    append_sample(out, name, "_bucket", label_names, values, format_uint(snap.cumulative[i]),
                  "le", le);
  }
  append_sample(out, name, "_sum", label_names, values, format_double(snap.sum));
  append_sample(out, name, "_count", label_names, values, format_uint(snap.count));
}

}  // namespace detail

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  ANYA_ASSERT(valid_metric_name(name_));
  ANYA_ASSERT(help_.size() <= kMaxHelpBytes);
  ANYA_ASSERT(label_names_.size() <= kMaxLabelNames);
  std::set<std::string_view> seen;
  for (const auto& label : label_names_) {
    ANYA_ASSERT(valid_label_name(label));
    ANYA_ASSERT(seen.insert(label).second);  // no label name twice
  }
}

void FamilyBase::render(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out.push_back(' ');
  out += escape_help(help_);
  out += "\n# TYPE ";
  out += name_;
  out.push_back(' ');
  out += metric_type_name(type_);
  out.push_back('\n');
  render_children(out);
}

// --- Registry ------------------------------------------------------------------------------------

void Registry::check_new_family(const std::string& name) const {
  ANYA_ASSERT(families_.size() < kMaxFamilies);
  for (const auto& family : families_) {
    ANYA_ASSERT(family->name() != name);
  }
}

Family<Counter>& Registry::counter_family(std::string name, std::string help,
                                          std::vector<std::string> label_names) {
  check_new_family(name);
  auto family = std::make_unique<Family<Counter>>(
      std::move(name), std::move(help), MetricType::counter, std::move(label_names),
      [] { return std::make_unique<Counter>(); });
  Family<Counter>& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Family<Gauge>& Registry::gauge_family(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  check_new_family(name);
  auto family = std::make_unique<Family<Gauge>>(std::move(name), std::move(help),
                                                MetricType::gauge, std::move(label_names),
                                                [] { return std::make_unique<Gauge>(); });
  Family<Gauge>& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Family<Histogram>& Registry::histogram_family(std::string name, std::string help,
                                              std::vector<double> upper_bounds,
                                              std::vector<std::string> label_names) {
  check_new_family(name);
  for (const auto& label : label_names) ANYA_ASSERT(label != "le");
  // Check the bounds now, at registration, rather than when the first child appears.
  const Histogram probe(upper_bounds);
  auto family = std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), MetricType::histogram, std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); });
  Family<Histogram>& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Counter& Registry::counter(std::string name, std::string help) {
  return counter_family(std::move(name), std::move(help), {}).with({});
}

Gauge& Registry::gauge(std::string name, std::string help) {
  return gauge_family(std::move(name), std::move(help), {}).with({});
}

Histogram& Registry::histogram(std::string name, std::string help,
                               std::vector<double> upper_bounds) {
  return histogram_family(std::move(name), std::move(help), std::move(upper_bounds), {}).with({});
}

std::string Registry::render() const {
  std::string out;
  for (const auto& family : families_) family->render(out);
  return out;
}

}  // namespace anya::transport::metrics

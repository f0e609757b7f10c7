#include "engine/health/aggregation.hpp"

#include <charconv>

namespace anya::engine::health {

namespace {

Status invalid(std::string_view field, const std::string& problem) {
  return {Errc::invalid_argument, std::string(field) + ": " + problem};
}

constexpr std::string_view kForms =
    "expected \"all\", \"any\", \"at_least:K\" or \"weighted:W\"";

}  // namespace

Result<Aggregation> parse_aggregation(std::string_view text, std::string_view field) {
  if (text == "all") return Aggregation{Aggregation::Rule::all, 0};
  if (text == "any") return Aggregation{Aggregation::Rule::any, 0};
  const std::size_t colon = text.find(':');
  const std::string_view head = text.substr(0, colon);
  Aggregation out;
  if (head == "at_least") {
    out.rule = Aggregation::Rule::at_least;
  } else if (head == "weighted") {
    out.rule = Aggregation::Rule::weighted;
  } else {
    return invalid(field, "\"" + std::string(text) + "\": " + std::string(kForms));
  }
  if (colon == std::string_view::npos) {
    return invalid(field, "\"" + std::string(text) + "\" needs a number after ':' (e.g. \"" +
                              std::string(head) + ":2\")");
  }
  const std::string_view digits = text.substr(colon + 1);
  std::uint32_t value = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
      value == 0) {
    return invalid(field, "\"" + std::string(text) + "\": the number after ':' must be a "
                              "positive whole number");
  }
  out.threshold = value;
  return out;
}

std::string aggregation_text(const Aggregation& a) {
  switch (a.rule) {
    case Aggregation::Rule::all: return "all";
    case Aggregation::Rule::any: return "any";
    case Aggregation::Rule::at_least: return "at_least:" + std::to_string(a.threshold);
    case Aggregation::Rule::weighted: return "weighted:" + std::to_string(a.threshold);
  }
  ANYA_ASSERT(false);
  return "";
}

Status validate_aggregation(const Aggregation& a, std::span<const ProbeSpec> probes,
                            std::string_view field) {
  const bool counted = a.rule == Aggregation::Rule::at_least ||
                       a.rule == Aggregation::Rule::weighted;
  if (!counted) {
    if (a.threshold != 0) return invalid(field, "all and any take no number");
    return {};
  }
  if (a.threshold == 0) return invalid(field, "the number after ':' must be at least 1");
  if (a.rule == Aggregation::Rule::at_least && a.threshold > probes.size()) {
    return invalid(field, "at_least:" + std::to_string(a.threshold) + " needs at least " +
                              std::to_string(a.threshold) + " probes; " +
                              std::to_string(probes.size()) + " are configured");
  }
  std::uint64_t total_weight = 0;
  for (const ProbeSpec& p : probes) total_weight += p.weight;
  if (a.rule == Aggregation::Rule::weighted && a.threshold > total_weight) {
    return invalid(field, "weighted:" + std::to_string(a.threshold) +
                              " is more than the probes' weights add up to (" +
                              std::to_string(total_weight) + ")");
  }
  return {};
}

AggregateResult aggregate(const Aggregation& a, std::span<const ProbeVote> votes) {
  AggregateResult r;
  for (const ProbeVote& v : votes) {
    r.total++;
    r.total_weight += v.weight;
    if (v.passing) {
      r.passing++;
      r.passing_weight += v.weight;
    }
  }
  ANYA_ASSERT(r.passing <= r.total);
  ANYA_ASSERT(r.passing_weight <= r.total_weight);
  if (r.total == 0) return r;  // no probes: nothing against the node
  switch (a.rule) {
    case Aggregation::Rule::all: r.healthy = r.passing == r.total; break;
    case Aggregation::Rule::any: r.healthy = r.passing >= 1; break;
    case Aggregation::Rule::at_least: r.healthy = r.passing >= a.threshold; break;
    case Aggregation::Rule::weighted: r.healthy = r.passing_weight >= a.threshold; break;
  }
  return r;
}

std::string AggregateResult::describe(const Aggregation& a) const {
  std::string out = std::to_string(passing) + " of " + std::to_string(total) + " probes passing";
  if (a.rule == Aggregation::Rule::weighted) {
    out += " (weight " + std::to_string(passing_weight) + " of " + std::to_string(total_weight) +
           ")";
  }
  out += ", rule " + aggregation_text(a);
  switch (a.rule) {
    case Aggregation::Rule::all: out += " needs all " + std::to_string(total); break;
    case Aggregation::Rule::any: out += " needs 1"; break;
    case Aggregation::Rule::at_least:
      out += " needs " + std::to_string(a.threshold);
      break;
    case Aggregation::Rule::weighted:
      out += " needs weight " + std::to_string(a.threshold);
      break;
  }
  return out;
}

}  // namespace anya::engine::health

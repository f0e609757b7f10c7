#include "engine/health/evaluator.hpp"

#include <limits>
#include <set>

namespace anya::engine::health {

namespace {

constexpr std::uint32_t kMaxResourceHysteresis = 100;

Status invalid(std::string_view prefix, std::string_view key, const std::string& problem) {
  return {Errc::invalid_argument, std::string(prefix) + std::string(key) + ": " + problem};
}

void bump(std::uint32_t& counter) {
  if (counter != std::numeric_limits<std::uint32_t>::max()) counter++;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

std::uint8_t level(const std::optional<double>& percent) {
  return percent ? percent_u8(*percent) : kUnknownLevel;
}

}  // namespace

Status validate_health_policy(const HealthPolicy& p, std::string_view prefix) {
  if (p.probes.size() > ProbeLimits::max_probes) {
    return invalid(prefix, "probe", "at most " + std::to_string(ProbeLimits::max_probes) +
                                        " probes (" + std::to_string(p.probes.size()) + " given)");
  }
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < p.probes.size(); i++) {
    const std::string at = std::string(prefix) + "probe[" + std::to_string(i) + "].";
    if (Status s = validate_probe_spec(p.probes[i], at); !s) return s;
    if (!names.insert(p.probes[i].name).second) {
      return invalid(at, "name", "\"" + p.probes[i].name + "\" names another probe too");
    }
  }
  if (Status s = validate_aggregation(p.aggregation, p.probes,
                                      std::string(prefix) + "aggregate");
      !s) {
    return s;
  }
  if (Status s = validate_resource_limits(p.limits, prefix); !s) return s;
  if (p.resource_fall < 1 || p.resource_fall > kMaxResourceHysteresis) {
    return invalid(prefix, "resource_fall", "must be between 1 and 100");
  }
  if (p.resource_rise < 1 || p.resource_rise > kMaxResourceHysteresis) {
    return invalid(prefix, "resource_rise", "must be between 1 and 100");
  }
  if (p.window_ms < ProbeLimits::min_window_ms || p.window_ms > ProbeLimits::max_window_ms) {
    return invalid(prefix, "window", "must be between 1s and 1h");
  }
  return {};
}

HealthEvaluator::HealthEvaluator(HealthPolicy policy) : policy_(std::move(policy)) {
  ANYA_ASSERT(validate_health_policy(policy_, "").is_ok());
  trackers_.reserve(policy_.probes.size());
  for (const ProbeSpec& spec : policy_.probes) trackers_.emplace_back(spec, policy_.window_ms);
  for (const ResourceCheck& c : check_resources(ResourceSample{}, policy_.limits)) {
    ANYA_ASSERT(!c.over);  // nothing is known yet
    resources_.push_back(ResourceStatus{c, false, 0, 0});
  }
  static_cast<void>(evaluate());
  ANYA_ASSERT(trackers_.size() == policy_.probes.size());
}

const ProbeTracker& HealthEvaluator::probe(std::size_t index) const {
  ANYA_ASSERT(index < trackers_.size());
  return trackers_[index];
}

HealthUpdate HealthEvaluator::record_probe(std::size_t index, bool ok, std::uint64_t latency_ms,
                                           std::uint64_t now_ms, std::string_view error) {
  ANYA_ASSERT(index < trackers_.size());
  ProbeTracker& t = trackers_[index];
  const ProbeState before = t.state();
  const bool changed = t.record(ok, latency_ms, now_ms, error);
  HealthUpdate update = evaluate();
  if (changed) {
    update.probe_changed = true;
    update.transitions.insert(update.transitions.begin(),
                              "probe " + t.spec().name + ": " + probe_state_name(before) +
                                  " -> " + t.describe());
  }
  return update;
}

HealthUpdate HealthEvaluator::record_resources(const ResourceSample& sample, std::uint64_t now_ms) {
  ANYA_ASSERT(!sample_ms_ || now_ms >= *sample_ms_);
  sample_ = sample;
  sample_ms_ = now_ms;
  const std::vector<ResourceCheck> checks = check_resources(sample, policy_.limits);
  ANYA_ASSERT(checks.size() == resources_.size());
  std::vector<std::string> transitions;
  for (std::size_t i = 0; i < checks.size(); i++) {
    ResourceStatus& r = resources_[i];
    ANYA_ASSERT(std::string_view(r.check.limit_key) == checks[i].limit_key);
    r.check = checks[i];
    if (!r.check.value) continue;  // unknown: no evidence either way, the state holds
    if (r.check.over) {
      bump(r.over_in_a_row);
      r.under_in_a_row = 0;
    } else {
      bump(r.under_in_a_row);
      r.over_in_a_row = 0;
    }
    const std::string what = resource_name(r.check.resource);
    if (!r.exceeded && r.over_in_a_row >= policy_.resource_fall) {
      r.exceeded = true;
      transitions.push_back("resource " + what + " exceeded: " + r.check.describe());
    } else if (r.exceeded && r.under_in_a_row >= policy_.resource_rise) {
      r.exceeded = false;
      transitions.push_back("resource " + what + " back within its limit: " +
                            r.check.describe());
    }
  }
  HealthUpdate update = evaluate();
  transitions.insert(transitions.end(), update.transitions.begin(), update.transitions.end());
  update.transitions = std::move(transitions);
  return update;
}

std::vector<ResourceCheck> HealthEvaluator::exceeded() const {
  std::vector<ResourceCheck> out;
  for (const ResourceStatus& r : resources_) {
    if (r.exceeded) out.push_back(r.check);
  }
  return out;
}

HealthUpdate HealthEvaluator::evaluate() {
  std::vector<ProbeVote> votes;
  votes.reserve(trackers_.size());
  for (const ProbeTracker& t : trackers_) {
    votes.push_back({t.counts_as_passing(), t.spec().weight});
  }
  const AggregateResult agg = aggregate(policy_.aggregation, votes);
  HealthVerdict next;
  if (!agg.healthy) {
    for (const ProbeTracker& t : trackers_) {
      if (!t.counts_as_passing()) next.reasons.push_back("probe " + t.spec().name + " " +
                                                         t.describe());
    }
    next.reasons.push_back(agg.describe(policy_.aggregation));
  }
  for (const ResourceStatus& r : resources_) {
    if (r.exceeded) next.reasons.push_back(r.check.describe());
  }
  next.healthy = next.reasons.empty();
  ANYA_ASSERT(next.healthy == (agg.healthy && exceeded().empty()));
  if (next.healthy) {
    next.explanation = "healthy: " + (trackers_.empty() ? std::string("no probes")
                                                        : agg.describe(policy_.aggregation)) +
                       "; " + (resources_.empty() ? "no resource limits"
                                                  : "resources within limits");
  } else {
    next.explanation = "unhealthy: " + join(next.reasons, "; ");
  }
  HealthUpdate update;
  update.verdict_changed = next.healthy != verdict_.healthy;
  verdict_ = std::move(next);
  verdict_.summary = summarize();
  if (update.verdict_changed) update.transitions.push_back(verdict_.explanation);
  return update;
}

HealthSummary HealthEvaluator::summarize() const {
  HealthSummary s;
  s.healthy = verdict_.healthy;
  s.probe_count = static_cast<std::uint8_t>(trackers_.size());
  for (std::size_t i = 0; i < trackers_.size(); i++) {
    if (!trackers_[i].counts_as_passing()) s.failing_probes |= std::uint32_t{1} << i;
  }
  if (sample_) {
    s.cpu_percent = level(sample_->cpu_percent);
    s.memory_percent = level(sample_->memory_used_percent);
    s.disk_used_percent = level(sample_->disk_used_percent());
    s.fd_percent = level(sample_->fd_used_percent());
  }
  for (const ResourceStatus& r : resources_) {
    if (r.exceeded) s.exceeded |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(
                                                                r.check.resource));
  }
  ANYA_ASSERT(s.probe_count <= ProbeLimits::max_probes);
  return s;
}

}  // namespace anya::engine::health

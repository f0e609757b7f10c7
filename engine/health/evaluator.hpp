// The node's verdict on the service it protects: trackers for the configured probes, the latest
// resource sample with its thresholds, and the aggregation rule, giving one verdict (healthy or
// not), the compact summary a heartbeat reply carries, and the reasons in words. Pure: probe
// results and samples arrive with their time; transport/health runs the probes.
//
// Rule: the node is healthy when the probes satisfy the aggregation rule (aggregation.hpp;
// unknown counts as failing) and no resource is exceeded (resources.hpp). Every change of a
// probe's state, of a resource's exceeded flag and of the verdict comes back as text, so the
// node can log "unhealthy: probe signer-http failing (3 consecutive failures: connection
// refused); rule all needs all 1".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/health/aggregation.hpp"
#include "engine/health/probe.hpp"
#include "engine/health/resources.hpp"
#include "engine/health/summary.hpp"

namespace anya::engine::health {

struct HealthPolicy {
  std::vector<ProbeSpec> probes;     // Invariant: <= ProbeLimits::max_probes, unique names
  Aggregation aggregation;
  ResourceLimits limits;
  // Resource hysteresis: samples in a row over a limit to count as exceeded, and under it to
  // stop counting.
  std::uint32_t resource_fall = 2;
  std::uint32_t resource_rise = 2;
  std::uint64_t window_ms = ProbeLimits::default_window_ms;  // the probes' rolling window

  bool monitors_anything() const { return !probes.empty() || limits.any(); }
  friend bool operator==(const HealthPolicy&, const HealthPolicy&) = default;
};

// Errc::invalid_argument naming the field: `prefix` + "probe[I].timeout", + "aggregate",
// + "resource_fall", + "max_cpu_percent", ...
Status validate_health_policy(const HealthPolicy& policy, std::string_view prefix);

// One configured limit and where it stands.
struct ResourceStatus {
  ResourceCheck check;                 // the latest sample against this limit
  bool exceeded = false;               // after hysteresis: what counts against the node
  std::uint32_t over_in_a_row = 0;     // one of the two is 0
  std::uint32_t under_in_a_row = 0;
};

struct HealthVerdict {
  bool healthy = true;
  HealthSummary summary;
  // Each thing against the node, for people: "probe signer-http failing (3 consecutive
  // failures: connection refused)", "rule all needs all 2: 1 of 2 probes passing",
  // "disk free 1.0% below min_disk_free_percent 5.0%". Empty when healthy.
  std::vector<std::string> reasons;
  // One line for the log and status: "unhealthy: REASON; REASON" or "healthy: 2 of 2 probes
  // passing, rule all needs all 2; resources within limits".
  std::string explanation;
};

// What one input changed, in words; empty when nothing did.
struct HealthUpdate {
  bool verdict_changed = false;
  bool probe_changed = false;
  // "probe signer-http: passing -> failing (3 consecutive failures: connection refused)",
  // "resource cpu exceeded: cpu 97.0% above max_cpu_percent 90.0%".
  std::vector<std::string> transitions;
};

class HealthEvaluator {
 public:
  explicit HealthEvaluator(HealthPolicy policy);  // asserts validate_health_policy

  // Probe `index` (configuration order) gave a result at `now_ms`.
  HealthUpdate record_probe(std::size_t index, bool ok, std::uint64_t latency_ms,
                            std::uint64_t now_ms, std::string_view error);
  // A new resource sample.
  HealthUpdate record_resources(const ResourceSample& sample, std::uint64_t now_ms);

  const HealthPolicy& policy() const { return policy_; }
  const HealthVerdict& verdict() const { return verdict_; }
  std::size_t probe_count() const { return trackers_.size(); }
  const ProbeTracker& probe(std::size_t index) const;
  const std::vector<ResourceStatus>& resources() const { return resources_; }
  const std::optional<ResourceSample>& last_sample() const { return sample_; }
  std::optional<std::uint64_t> last_sample_ms() const { return sample_ms_; }
  // The exceeded resources (after hysteresis), for a scale-out action.
  std::vector<ResourceCheck> exceeded() const;

 private:
  HealthUpdate evaluate();
  HealthSummary summarize() const;

  HealthPolicy policy_;
  std::vector<ProbeTracker> trackers_;    // one per policy_.probes, same order
  std::vector<ResourceStatus> resources_;  // one per configured limit, check_resources order
  std::optional<ResourceSample> sample_;
  std::optional<std::uint64_t> sample_ms_;
  HealthVerdict verdict_;
};

}  // namespace anya::engine::health

// One health probe of the service this node protects (the signer, the wallet, the Bitcoin node),
// as the engine sees it: its specification and a tracker that turns a stream of pass/fail
// results into a state with hysteresis, plus the figures of a rolling window (error ratio,
// response-time percentiles). Pure: every result arrives with the time it was taken; running
// the probe (HTTP, TCP, exec, a callback) is transport/health's job.
//
// States. A tracker starts `unknown` and the first result decides at once (passing on a success,
// failing on a failure). After that, a passing probe turns failing only after `fall` failures
// in a row, and a failing one turns passing only after `rise` successes in a row, so a single
// slow reply does not flap the node's health. Why the first result decides at once: `unknown`
// already counts as failing for aggregation (a node that never ran its probes is not healthy),
// so waiting `rise` results would only keep a healthy node out of elections longer at start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::engine::health {

enum class ProbeKind : std::uint8_t { http, tcp, exec, callback };
const char* probe_kind_name(ProbeKind kind);
std::optional<ProbeKind> parse_probe_kind(std::string_view text);

enum class ProbeState : std::uint8_t { unknown, passing, failing };
const char* probe_state_name(ProbeState state);

// Named bounds on everything a probe specification or tracker holds.
struct ProbeLimits {
  static constexpr std::size_t max_probes = 32;          // one bit each in HealthSummary
  static constexpr std::size_t max_name_bytes = 64;
  static constexpr std::uint64_t min_interval_ms = 10;
  static constexpr std::uint64_t max_interval_ms = 3'600'000;
  static constexpr std::uint64_t min_timeout_ms = 1;
  static constexpr std::uint32_t max_fall = 100;
  static constexpr std::uint32_t max_rise = 100;
  static constexpr std::uint32_t max_weight = 1000;
  // Rolling window: results older than window_ms are forgotten, and at most max_window_samples
  // are kept (the oldest dropped first), so a fast probe cannot grow memory without bound.
  static constexpr std::uint64_t default_window_ms = 60'000;
  static constexpr std::uint64_t min_window_ms = 1000;
  static constexpr std::uint64_t max_window_ms = 3'600'000;
  static constexpr std::size_t max_window_samples = 1024;
  // The last error text is cut to this (a command's stderr may be long).
  static constexpr std::size_t max_error_bytes = 256;
};
static_assert(ProbeLimits::max_probes <= 32, "HealthSummary holds one bit per probe in a u32");
static_assert(ProbeLimits::min_timeout_ms < ProbeLimits::min_interval_ms);

struct ProbeSpec {
  std::string name;                 // 1..max_name_bytes of [A-Za-z0-9._-]; unique per node
  ProbeKind kind = ProbeKind::http;
  std::uint64_t interval_ms = 5000;  // from one run's start to the next
  std::uint64_t timeout_ms = 2000;   // Invariant: timeout_ms < interval_ms
  std::uint32_t fall = 3;            // failures in a row that turn a passing probe failing
  std::uint32_t rise = 2;            // successes in a row that turn a failing probe passing
  std::uint32_t weight = 1;          // for Aggregation::Rule::weighted

  friend bool operator==(const ProbeSpec&, const ProbeSpec&) = default;
};

// Errc::invalid_argument naming the field as `prefix` + key ("health.probe[1].timeout: ...").
// The keys are the configuration file's: name, interval, timeout, fall, rise, weight.
Status validate_probe_spec(const ProbeSpec& spec, std::string_view prefix);
bool valid_probe_name(std::string_view name);

// The rolling window's figures at one moment. Percentiles are nearest-rank over the latency of
// every result in the window, failures included: a probe that times out is slow as well as
// failing, which is what a "performance degradation" rule wants to see.
struct WindowStats {
  std::size_t samples = 0;
  std::size_t failures = 0;
  double error_ratio = 0.0;                // failures / samples; 0 when there are none
  std::optional<std::uint64_t> p50_ms;     // nullopt when the window is empty
  std::optional<std::uint64_t> p99_ms;
};

class ProbeTracker {
 public:
  explicit ProbeTracker(ProbeSpec spec,
                        std::uint64_t window_ms = ProbeLimits::default_window_ms);

  // One result, taken at `now_ms` (monotonic; never earlier than the previous result's).
  // `error` says why it failed (ignored on success). Returns true when the state changed.
  bool record(bool ok, std::uint64_t latency_ms, std::uint64_t now_ms, std::string_view error);

  const ProbeSpec& spec() const { return spec_; }
  ProbeState state() const { return state_; }
  // Unknown counts as failing: see the top of this file.
  bool counts_as_passing() const { return state_ == ProbeState::passing; }
  // Results in a row that agree with the last one; one of the two is always 0.
  std::uint32_t consecutive_successes() const { return consecutive_successes_; }
  std::uint32_t consecutive_failures() const { return consecutive_failures_; }
  std::uint64_t results() const { return results_; }
  const std::string& last_error() const { return last_error_; }  // empty: none yet
  std::optional<std::uint64_t> last_result_ms() const { return last_result_ms_; }
  WindowStats window(std::uint64_t now_ms) const;
  // For people: "failing (3 consecutive failures: connection refused)", "passing (12 in a
  // row)", "unknown (no result yet)".
  std::string describe() const;

 private:
  struct Sample {
    std::uint64_t at_ms = 0;
    std::uint64_t latency_ms = 0;
    bool ok = false;
  };
  void forget_before(std::uint64_t now_ms);

  ProbeSpec spec_;
  std::uint64_t window_ms_;
  ProbeState state_ = ProbeState::unknown;
  std::uint32_t consecutive_successes_ = 0;  // saturates at UINT32_MAX
  std::uint32_t consecutive_failures_ = 0;
  std::uint64_t results_ = 0;
  std::string last_error_;
  std::optional<std::uint64_t> last_result_ms_;
  std::deque<Sample> window_;  // Invariant: size() <= max_window_samples, ordered by at_ms
};

}  // namespace anya::engine::health

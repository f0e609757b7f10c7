#include "engine/health/probe.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <vector>

namespace anya::engine::health {

namespace {

Status invalid(std::string_view prefix, std::string_view key, const std::string& problem) {
  return {Errc::invalid_argument, std::string(prefix) + std::string(key) + ": " + problem};
}

// Nearest rank: the smallest value with at least `percent` of the values at or below it.
std::uint64_t percentile(std::vector<std::uint64_t>& values, unsigned percent) {
  ANYA_ASSERT(!values.empty());
  ANYA_ASSERT(percent >= 1 && percent <= 100);
  const std::size_t rank = (values.size() * percent + 99) / 100;  // 1-based, >= 1
  ANYA_ASSERT(rank >= 1 && rank <= values.size());
  auto nth = values.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

void bump(std::uint32_t& counter) {
  if (counter != std::numeric_limits<std::uint32_t>::max()) counter++;
}

}  // namespace

const char* probe_kind_name(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::http: return "http";
    case ProbeKind::tcp: return "tcp";
    case ProbeKind::exec: return "exec";
    case ProbeKind::callback: return "callback";
  }
  ANYA_ASSERT(false);
  return "";
}

std::optional<ProbeKind> parse_probe_kind(std::string_view text) {
  for (ProbeKind k : {ProbeKind::http, ProbeKind::tcp, ProbeKind::exec, ProbeKind::callback}) {
    if (text == probe_kind_name(k)) return k;
  }
  return std::nullopt;
}

const char* probe_state_name(ProbeState state) {
  switch (state) {
    case ProbeState::unknown: return "unknown";
    case ProbeState::passing: return "passing";
    case ProbeState::failing: return "failing";
  }
  ANYA_ASSERT(false);
  return "";
}

bool valid_probe_name(std::string_view name) {
  if (name.empty() || name.size() > ProbeLimits::max_name_bytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

Status validate_probe_spec(const ProbeSpec& s, std::string_view prefix) {
  if (!valid_probe_name(s.name)) {
    return invalid(prefix, "name", "must be 1 to 64 characters from letters, digits, '.', '_' "
                                   "and '-'");
  }
  if (s.interval_ms < ProbeLimits::min_interval_ms ||
      s.interval_ms > ProbeLimits::max_interval_ms) {
    return invalid(prefix, "interval", "must be between 10ms and 1h");
  }
  if (s.timeout_ms < ProbeLimits::min_timeout_ms || s.timeout_ms >= s.interval_ms) {
    return invalid(prefix, "timeout", "must be at least 1ms and less than the interval (" +
                                          std::to_string(s.interval_ms) + " ms), so one run "
                                          "ends before the next starts");
  }
  if (s.fall < 1 || s.fall > ProbeLimits::max_fall) {
    return invalid(prefix, "fall", "must be between 1 and 100");
  }
  if (s.rise < 1 || s.rise > ProbeLimits::max_rise) {
    return invalid(prefix, "rise", "must be between 1 and 100");
  }
  if (s.weight < 1 || s.weight > ProbeLimits::max_weight) {
    return invalid(prefix, "weight", "must be between 1 and 1000");
  }
  return {};
}

ProbeTracker::ProbeTracker(ProbeSpec spec, std::uint64_t window_ms)
    : spec_(std::move(spec)), window_ms_(window_ms) {
  ANYA_ASSERT(validate_probe_spec(spec_, "").is_ok());
  ANYA_ASSERT(window_ms_ >= ProbeLimits::min_window_ms);
  ANYA_ASSERT(window_ms_ <= ProbeLimits::max_window_ms);
}

bool ProbeTracker::record(bool ok, std::uint64_t latency_ms, std::uint64_t now_ms,
                          std::string_view error) {
  // One probe's results are taken one after another on a monotonic clock.
  ANYA_ASSERT(!last_result_ms_ || now_ms >= *last_result_ms_);
  last_result_ms_ = now_ms;
  results_++;
  if (ok) {
    bump(consecutive_successes_);
    consecutive_failures_ = 0;
  } else {
    bump(consecutive_failures_);
    consecutive_successes_ = 0;
    last_error_ = error.empty() ? std::string("failed") : std::string(error);
    if (last_error_.size() > ProbeLimits::max_error_bytes) {
      last_error_.resize(ProbeLimits::max_error_bytes - 3);
      last_error_ += "...";
    }
  }
  window_.push_back({now_ms, latency_ms, ok});
  forget_before(now_ms);
  ANYA_ASSERT(window_.size() <= ProbeLimits::max_window_samples);

  const ProbeState before = state_;
  if (state_ == ProbeState::unknown) {
    state_ = ok ? ProbeState::passing : ProbeState::failing;
  } else if (state_ == ProbeState::passing && consecutive_failures_ >= spec_.fall) {
    state_ = ProbeState::failing;
  } else if (state_ == ProbeState::failing && consecutive_successes_ >= spec_.rise) {
    state_ = ProbeState::passing;
  }
  ANYA_ASSERT(state_ != ProbeState::unknown);
  return state_ != before;
}

void ProbeTracker::forget_before(std::uint64_t now_ms) {
  while (!window_.empty() && now_ms - window_.front().at_ms >= window_ms_) window_.pop_front();
  while (window_.size() > ProbeLimits::max_window_samples) window_.pop_front();
}

WindowStats ProbeTracker::window(std::uint64_t now_ms) const {
  WindowStats st;
  std::vector<std::uint64_t> latencies;
  latencies.reserve(window_.size());
  for (const Sample& s : window_) {
    // A sample taken "after" now_ms (a caller's clock read before the last record) still
    // belongs to the window.
    if (now_ms > s.at_ms && now_ms - s.at_ms >= window_ms_) continue;
    latencies.push_back(s.latency_ms);
    if (!s.ok) st.failures++;
  }
  st.samples = latencies.size();
  ANYA_ASSERT(st.failures <= st.samples);
  if (st.samples == 0) return st;
  st.error_ratio = static_cast<double>(st.failures) / static_cast<double>(st.samples);
  st.p50_ms = percentile(latencies, 50);
  st.p99_ms = percentile(latencies, 99);
  ANYA_ASSERT(*st.p50_ms <= *st.p99_ms);
  return st;
}

std::string ProbeTracker::describe() const {
  switch (state_) {
    case ProbeState::unknown:
      return "unknown (no result yet)";
    case ProbeState::passing:
      if (consecutive_failures_ > 0) {
        return "passing (" + std::to_string(consecutive_failures_) + " of " +
               std::to_string(spec_.fall) + " failures to fail: " + last_error_ + ")";
      }
      return "passing (" + std::to_string(consecutive_successes_) + " in a row)";
    case ProbeState::failing:
      if (consecutive_successes_ > 0) {
        return "failing (" + std::to_string(consecutive_successes_) + " of " +
               std::to_string(spec_.rise) + " successes to pass; last error: " + last_error_ +
               ")";
      }
      return "failing (" + std::to_string(consecutive_failures_) + " consecutive " +
             (consecutive_failures_ == 1 ? "failure" : "failures") + ": " + last_error_ + ")";
  }
  ANYA_ASSERT(false);
  return "";
}

}  // namespace anya::engine::health

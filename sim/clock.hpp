// A node's monotonic clock in the simulated world: its own offset, a drift rate, and forward
// jumps, all within the run's bounds. It never goes backwards (a monotonic clock cannot).
#pragma once

#include <cstdint>

#include "engine/base/result.hpp"

namespace anya::sim {

class SimClock {
 public:
  SimClock() = default;
  SimClock(std::uint64_t offset_us, std::int64_t drift_ppm) : offset_us_(offset_us),
                                                              drift_ppm_(drift_ppm) {
    ANYA_ASSERT(drift_ppm > -1'000'000);
  }

  // Local time in microseconds at virtual time `now_us`.
  std::uint64_t local_us(std::uint64_t now_us) const {
    const std::int64_t drift = static_cast<std::int64_t>(now_us) / 1'000'000 * drift_ppm_ +
                               static_cast<std::int64_t>(now_us % 1'000'000) * drift_ppm_ /
                                   1'000'000;
    return offset_us_ + jumped_us_ + static_cast<std::uint64_t>(
                                         static_cast<std::int64_t>(now_us) + drift);
  }
  std::uint64_t local_ms(std::uint64_t now_us) const { return local_us(now_us) / 1000; }

  // The earliest virtual time at or after `now_us` when local_ms() reaches `deadline_ms`.
  std::uint64_t virtual_when(std::uint64_t deadline_ms, std::uint64_t now_us) const {
    if (local_ms(now_us) >= deadline_ms) return now_us;
    const std::uint64_t behind_us = deadline_ms * 1000 - local_us(now_us);
    // Local time advances by (1 + drift) per virtual unit; step over, then walk back if early.
    std::uint64_t t = now_us + behind_us * 1'000'000 / static_cast<std::uint64_t>(
                                   1'000'000 + drift_ppm_);
    while (local_ms(t) < deadline_ms) t++;
    return t;
  }

  void jump_forward(std::uint64_t us) { jumped_us_ += us; }

 private:
  std::uint64_t offset_us_ = 0;
  std::int64_t drift_ppm_ = 0;
  std::uint64_t jumped_us_ = 0;
};

}  // namespace anya::sim

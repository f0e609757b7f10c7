#include "engine/progress/liveness.hpp"

#include "engine/base/result.hpp"

namespace anya::engine {

PeerLiveness::PeerLiveness(const LivenessConfig& config, std::uint64_t now_ms)
    : config_(config), last_heard_ms_(now_ms) {
  ANYA_ASSERT(config_.suspect_after_ms > 0);
  ANYA_ASSERT(config_.down_after_ms > config_.suspect_after_ms);
  ANYA_ASSERT(config_.rise >= 1);
}

void PeerLiveness::heard(std::uint64_t now_ms, std::optional<std::uint64_t> rtt_ms) {
  tick(now_ms);  // a silence long enough for down counts even if no tick saw it
  // A streak breaks when two answers are further apart than a suspect's silence.
  const bool in_step = ever_heard_ && now_ms - last_heard_ms_ < config_.suspect_after_ms;
  streak_ = in_step ? streak_ + 1 : 1;
  last_heard_ms_ = std::max(last_heard_ms_, now_ms);
  ever_heard_ = true;
  if (state_ != Liveness::down || streak_ >= config_.rise) set_state(Liveness::reachable);
  if (rtt_ms) {
    // RFC 6298 §2: the first sample sets srtt and rttvar = srtt/2; then the 1/8 and 1/4 gains.
    const std::uint64_t sample_us = *rtt_ms * 1000;
    if (rtt_samples_ == 0) {
      srtt_us_ = sample_us;
      rttvar_us_ = sample_us / 2;
    } else {
      const std::uint64_t deviation = sample_us > srtt_us_ ? sample_us - srtt_us_
                                                           : srtt_us_ - sample_us;
      rttvar_us_ = (3 * rttvar_us_ + deviation) / 4;
      srtt_us_ = (7 * srtt_us_ + sample_us) / 8;
    }
    rtt_samples_++;
  }
}

void PeerLiveness::tick(std::uint64_t now_ms) {
  const Liveness next = state_at(now_ms);
  if (next == state_) return;
  streak_ = 0;
  set_state(next);
}

Liveness PeerLiveness::state_at(std::uint64_t now_ms) const {
  const std::uint64_t silence = silence_ms(now_ms);
  if (silence >= config_.down_after_ms) return Liveness::down;
  if (silence >= config_.suspect_after_ms && state_ != Liveness::down) return Liveness::suspect;
  return state_;
}

std::uint64_t PeerLiveness::silence_ms(std::uint64_t now_ms) const {
  return now_ms > last_heard_ms_ ? now_ms - last_heard_ms_ : 0;
}

std::optional<std::uint64_t> PeerLiveness::srtt_ms() const {
  if (rtt_samples_ == 0) return std::nullopt;
  return (srtt_us_ + 500) / 1000;
}

std::optional<std::uint64_t> PeerLiveness::rttvar_ms() const {
  if (rtt_samples_ == 0) return std::nullopt;
  return (rttvar_us_ + 500) / 1000;
}

void PeerLiveness::set_state(Liveness next) {
  if (next == state_) return;
  const bool was_known = state_ != Liveness::unknown;
  state_ = next;
  if (was_known) transitions_++;
}

}  // namespace anya::engine

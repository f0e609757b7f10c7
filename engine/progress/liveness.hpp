// The failure detector: how one node judges whether a peer is alive, from when it last heard
// the peer and how long the peer takes to answer. Pure: every input comes with the time.
//
// States, with hysteresis so that one slow reply does not flap:
//
//   unknown    nothing heard yet (a member just added, or a leader in its first moments)
//   reachable  heard within suspect_after_ms
//   suspect    silent for suspect_after_ms (a few missed heartbeats): maybe slow, maybe gone
//   down       silent for down_after_ms (> suspect_after_ms). Leaving down needs `rise`
//              answers in a row, each within suspect_after_ms of the one before, so a peer
//              that answers once in a while stays down instead of bouncing
//
// Unknown, suspect and down are all "not known alive": callers must never show such a peer
// healthy. Round-trip times are smoothed as TCP does (RFC 6298: srtt and rttvar, gains 1/8 and
// 1/4), in microseconds inside and reported in milliseconds.
#pragma once

#include <cstdint>
#include <optional>

namespace anya::engine {

enum class Liveness : std::uint8_t { unknown, reachable, suspect, down };
// Inline so that readers of a status (the admin API) need not link the engine.
inline const char* liveness_name(Liveness liveness) {
  switch (liveness) {
    case Liveness::unknown: return "unknown";
    case Liveness::reachable: return "reachable";
    case Liveness::suspect: return "suspect";
    case Liveness::down: return "down";
  }
  return "unknown";
}

struct LivenessConfig {
  std::uint64_t suspect_after_ms = 300;  // usually the election timeout
  std::uint64_t down_after_ms = 900;     // usually three election timeouts
  std::uint32_t rise = 2;                // answers in a row to leave down
};

class PeerLiveness {
 public:
  // `now_ms`: when watching began (counts as the start of the silence).
  PeerLiveness(const LivenessConfig& config, std::uint64_t now_ms);

  // The peer answered at `now_ms`; `rtt_ms` if the answer matched a request whose send time is
  // known (a heartbeat round).
  void heard(std::uint64_t now_ms, std::optional<std::uint64_t> rtt_ms);
  // Time passed: silence may move the state to suspect or down.
  void tick(std::uint64_t now_ms);

  Liveness state() const { return state_; }
  // The state a tick at `now_ms` would leave (for reports between ticks).
  Liveness state_at(std::uint64_t now_ms) const;
  // Milliseconds since last heard (since watching began, if never).
  std::uint64_t silence_ms(std::uint64_t now_ms) const;
  bool ever_heard() const { return ever_heard_; }
  std::optional<std::uint64_t> srtt_ms() const;    // smoothed round trip, once sampled
  std::optional<std::uint64_t> rttvar_ms() const;  // its mean deviation
  std::uint64_t rtt_samples() const { return rtt_samples_; }
  // Times the state changed between reachable and suspect or down (flapping shows here).
  std::uint64_t transitions() const { return transitions_; }

 private:
  void set_state(Liveness next);

  LivenessConfig config_;
  Liveness state_ = Liveness::unknown;
  std::uint64_t last_heard_ms_ = 0;  // or when watching began
  bool ever_heard_ = false;
  std::uint32_t streak_ = 0;  // answers in a row, each within suspect_after_ms of the last
  std::uint64_t srtt_us_ = 0;
  std::uint64_t rttvar_us_ = 0;
  std::uint64_t rtt_samples_ = 0;
  std::uint64_t transitions_ = 0;
};

}  // namespace anya::engine

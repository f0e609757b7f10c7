// A node's health in twelve bytes, small enough to ride on every heartbeat reply so the leader
// knows the cluster's health with no extra messages. Fixed size, little-endian, strict: a
// decoder refuses a wrong version, a reserved bit set, a bit for a probe that does not exist, a
// level above 100 that is not the "unknown" mark, a short buffer and trailing bytes, naming the
// field and its byte offset.
//
//   offset size field
//        0    1 version          kSummaryVersion
//        1    1 flags            bit 0: healthy; bits 1..7 reserved, 0
//        2    1 probe_count      0..32
//        3    4 failing_probes   bit i: probe i (in configuration order) is not passing
//                                (failing or unknown); bits >= probe_count are 0
//        7    1 cpu_percent      0..100, or 255: unknown (the levels are rounded)
//        8    1 memory_percent   0..100, or 255
//        9    1 disk_used_percent 0..100, or 255 (of the data directory's file system)
//       10    1 fd_percent       0..100, or 255 (open descriptors of RLIMIT_NOFILE)
//       11    1 exceeded         bit Resource: that resource is exceeded (resources.hpp);
//                                bits 4..7 reserved, 0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::engine::health {

inline constexpr std::uint8_t kSummaryVersion = 1;
inline constexpr std::size_t kSummaryBytes = 12;
inline constexpr std::uint8_t kUnknownLevel = 255;

struct HealthSummary {
  bool healthy = true;
  std::uint8_t probe_count = 0;        // Invariant: <= ProbeLimits::max_probes
  std::uint32_t failing_probes = 0;    // Invariant: no bit at or above probe_count
  std::uint8_t cpu_percent = kUnknownLevel;
  std::uint8_t memory_percent = kUnknownLevel;
  std::uint8_t disk_used_percent = kUnknownLevel;
  std::uint8_t fd_percent = kUnknownLevel;
  std::uint8_t exceeded = 0;           // Invariant: bits below kResourceCount only

  friend bool operator==(const HealthSummary&, const HealthSummary&) = default;
};

// Exactly kSummaryBytes. Asserts the invariants above (an invalid summary is a bug).
std::string encode_summary(const HealthSummary& summary);
// Errc::malformed: "health summary: FIELD ... at byte offset N".
Result<HealthSummary> decode_summary(std::string_view bytes);

}  // namespace anya::engine::health

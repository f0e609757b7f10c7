// The machine's resources beside the protected service, and the thresholds past which the node
// counts as exhausted. The sample is taken by transport/health (from /proc and statvfs); here is
// only the rule, so the simulator can drive it.
//
// Rule: a resource whose value is past its limit is "over". A resource is "exceeded" once it has
// been over in `fall` samples in a row, and stops being exceeded after `rise` samples in a row
// under (evaluator.hpp keeps the counts), so one busy second does not hand leadership away. An
// exceeded resource makes the node unhealthy, whatever its probes say: a leader that has run out
// of disk or descriptors is about to fail, and a healthy voter should lead instead. Exceeded
// resources are also listed on their own (ResourceCheck) so that a scale-out action can use them.
// A value the sampler could not read is unknown and never over: no evidence, no verdict.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::engine::health {

// The bit of each resource in HealthSummary::exceeded.
enum class Resource : std::uint8_t { cpu = 0, memory = 1, disk = 2, fds = 3 };
inline constexpr std::size_t kResourceCount = 4;
const char* resource_name(Resource resource);

struct ResourceSample {
  // Busy time of the whole machine (every CPU) since the previous sample, 0..100. The machine's
  // rather than this process's: the point is whether the service beside us is starved.
  std::optional<double> cpu_percent;
  std::optional<double> memory_used_percent;       // (MemTotal - MemAvailable) / MemTotal
  std::optional<std::uint64_t> data_dir_free_bytes;  // available to an unprivileged user
  std::optional<double> data_dir_free_percent;
  std::optional<std::uint64_t> open_fds;           // this process's
  std::optional<std::uint64_t> max_fds;            // RLIMIT_NOFILE (soft)

  std::optional<double> fd_used_percent() const;
  std::optional<double> disk_used_percent() const;
  friend bool operator==(const ResourceSample&, const ResourceSample&) = default;
};

// Every limit is optional; none set: resources never make the node unhealthy.
struct ResourceLimits {
  std::optional<double> max_cpu_percent;
  std::optional<double> max_memory_percent;
  std::optional<double> min_disk_free_percent;
  std::optional<std::uint64_t> min_disk_free_bytes;
  std::optional<double> max_fd_percent;

  bool any() const {
    return max_cpu_percent || max_memory_percent || min_disk_free_percent ||
           min_disk_free_bytes || max_fd_percent;
  }
  friend bool operator==(const ResourceLimits&, const ResourceLimits&) = default;
};

// Errc::invalid_argument naming `prefix` + the key (max_cpu_percent, max_memory_percent,
// min_disk_free_percent, min_disk_free, max_fd_percent).
Status validate_resource_limits(const ResourceLimits& limits, std::string_view prefix);

// One limit's view of one sample.
struct ResourceCheck {
  Resource resource = Resource::cpu;
  const char* limit_key = "";     // the configuration key of the limit: "max_cpu_percent"
  std::optional<double> value;    // nullopt: the sampler could not read it
  double limit = 0;
  bool upper = true;              // true: value must stay <= limit; false: >= limit
  bool over = false;              // past the limit in this sample
  // "cpu 97.0% above max_cpu_percent 90%", "disk free 1.2GiB below min_disk_free 2GiB".
  std::string describe() const;
};

// One entry per configured limit, in a fixed order (cpu, memory, disk percent, disk bytes, fds).
std::vector<ResourceCheck> check_resources(const ResourceSample& sample,
                                           const ResourceLimits& limits);

// A percentage for the summary and the log: rounded, clamped to 0..100.
std::uint8_t percent_u8(double percent);
// "97.0%".
std::string percent_text(double percent);
// "1.2GiB", "512MiB", "100B".
std::string bytes_text(std::uint64_t bytes);

}  // namespace anya::engine::health

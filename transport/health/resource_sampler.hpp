// Reads the machine's resources for engine/health's thresholds: CPU from /proc/stat (the whole
// machine's busy time between two samples: the question is whether the service beside us is
// starved, not what this process costs), memory from /proc/meminfo (MemTotal less
// MemAvailable), free space of the data directory's file system from statvfs (what an
// unprivileged user may still write), this process's open descriptors from /proc/self/fd and
// its RLIMIT_NOFILE. Quick (a few small reads), so it runs on the node's io thread.
//
// A value that cannot be read is left unknown (and never counts as over a limit); the reason is
// kept in last_error() for the log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "engine/health/resources.hpp"

namespace anya::transport {

// The counters of the "cpu" line of /proc/stat, in clock ticks.
struct CpuTimes {
  std::uint64_t busy = 0;   // user + nice + system + irq + softirq + steal
  std::uint64_t total = 0;  // busy + idle + iowait
};
std::optional<CpuTimes> parse_proc_stat(std::string_view text);
// (MemTotal - MemAvailable) / MemTotal in percent; nullopt when either line is missing.
std::optional<double> parse_meminfo_used_percent(std::string_view text);

class ResourceSampler {
 public:
  explicit ResourceSampler(std::filesystem::path data_dir);

  // The first sample has no CPU figure (it needs two readings of /proc/stat).
  engine::health::ResourceSample sample();
  // Why the last sample lacks a value ("cannot read /proc/meminfo: ..."); empty: complete.
  const std::string& last_error() const { return last_error_; }

 private:
  void note(const std::string& problem);

  std::filesystem::path data_dir_;
  std::optional<CpuTimes> previous_cpu_;
  std::string last_error_;
};

}  // namespace anya::transport

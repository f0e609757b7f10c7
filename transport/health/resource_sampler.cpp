#include "transport/health/resource_sampler.hpp"

#include <sys/resource.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <vector>

namespace anya::transport {

namespace {

// /proc files are small; more than this is not the file we think it is.
constexpr std::size_t kMaxProcFileBytes = 1 << 20;

std::optional<std::string> read_small_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxProcFileBytes) return std::nullopt;
  }
  return text;
}

// The whitespace-separated unsigned numbers at the start of `text`.
std::vector<std::uint64_t> numbers(std::string_view text) {
  std::vector<std::uint64_t> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) i++;
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc()) break;
    out.push_back(v);
    i = static_cast<std::size_t>(ptr - text.data());
  }
  return out;
}

std::optional<std::uint64_t> meminfo_kib(std::string_view text, std::string_view key) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, end - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key &&
        line[key.size()] == ':') {
      const std::vector<std::uint64_t> n = numbers(line.substr(key.size() + 1));
      if (n.empty()) return std::nullopt;
      return n[0];
    }
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<CpuTimes> parse_proc_stat(std::string_view text) {
  if (text.substr(0, 4) != "cpu ") return std::nullopt;
  const std::string_view line = text.substr(4, text.find('\n') - 4);
  // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
  // counted in user, so it is left out.
  const std::vector<std::uint64_t> n = numbers(line);
  if (n.size() < 4) return std::nullopt;
  const auto at = [&n](std::size_t i) { return i < n.size() ? n[i] : 0; };
  CpuTimes t;
  const std::uint64_t idle = at(3) + at(4);
  t.busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
  t.total = t.busy + idle;
  return t;
}

std::optional<double> parse_meminfo_used_percent(std::string_view text) {
  const std::optional<std::uint64_t> total = meminfo_kib(text, "MemTotal");
  const std::optional<std::uint64_t> available = meminfo_kib(text, "MemAvailable");
  if (!total || !available || *total == 0 || *available > *total) return std::nullopt;
  return 100.0 * static_cast<double>(*total - *available) / static_cast<double>(*total);
}

ResourceSampler::ResourceSampler(std::filesystem::path data_dir)
    : data_dir_(std::move(data_dir)) {
  ANYA_ASSERT(!data_dir_.empty());
}

void ResourceSampler::note(const std::string& problem) {
  if (!last_error_.empty()) last_error_ += "; ";
  last_error_ += problem;
}

engine::health::ResourceSample ResourceSampler::sample() {
  engine::health::ResourceSample s;
  last_error_.clear();
  const std::optional<std::string> stat = read_small_file("/proc/stat");
  const std::optional<CpuTimes> cpu = stat ? parse_proc_stat(*stat) : std::nullopt;
  if (!cpu) note("cannot read the cpu line of /proc/stat");
  if (cpu && previous_cpu_ && cpu->total > previous_cpu_->total &&
      cpu->busy >= previous_cpu_->busy) {
    s.cpu_percent = 100.0 * static_cast<double>(cpu->busy - previous_cpu_->busy) /
                    static_cast<double>(cpu->total - previous_cpu_->total);
  }
  if (cpu) previous_cpu_ = cpu;

  const std::optional<std::string> meminfo = read_small_file("/proc/meminfo");
  s.memory_used_percent = meminfo ? parse_meminfo_used_percent(*meminfo) : std::nullopt;
  if (!s.memory_used_percent) note("cannot read MemTotal and MemAvailable of /proc/meminfo");

  struct statvfs fs {};
  if (::statvfs(data_dir_.c_str(), &fs) == 0 && fs.f_blocks > 0) {
    s.data_dir_free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    s.data_dir_free_percent =
        100.0 * static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
  } else {
    note("cannot statvfs " + data_dir_.string() + ": " + std::strerror(errno));
  }

  std::error_code ec;
  std::uint64_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    fds++;
  }
  if (ec) {
    note("cannot list /proc/self/fd: " + ec.message());
  } else {
    s.open_fds = fds > 0 ? fds - 1 : 0;  // less the descriptor the listing itself holds open
  }
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    s.max_fds = static_cast<std::uint64_t>(limit.rlim_cur);
  }
  return s;
}

}  // namespace anya::transport

#include "engine/health/resources.hpp"

#include <cmath>
#include <cstdio>

namespace anya::engine::health {

namespace {

Status invalid(std::string_view prefix, std::string_view key, std::string_view problem) {
  return {Errc::invalid_argument,
          std::string(prefix) + std::string(key) + ": " + std::string(problem)};
}

// A percentage limit: a finite number in [low, high].
bool percent_in(const std::optional<double>& value, double low, double high) {
  return !value || (std::isfinite(*value) && *value >= low && *value <= high);
}

ResourceCheck make_check(Resource resource, const char* key, std::optional<double> value,
                         double limit, bool upper) {
  ResourceCheck c;
  c.resource = resource;
  c.limit_key = key;
  c.value = value;
  c.limit = limit;
  c.upper = upper;
  c.over = value.has_value() && (upper ? *value > limit : *value < limit);
  return c;
}

}  // namespace

const char* resource_name(Resource resource) {
  switch (resource) {
    case Resource::cpu: return "cpu";
    case Resource::memory: return "memory";
    case Resource::disk: return "disk";
    case Resource::fds: return "fds";
  }
  ANYA_ASSERT(false);
  return "";
}

std::optional<double> ResourceSample::fd_used_percent() const {
  if (!open_fds || !max_fds || *max_fds == 0) return std::nullopt;
  return 100.0 * static_cast<double>(*open_fds) / static_cast<double>(*max_fds);
}

std::optional<double> ResourceSample::disk_used_percent() const {
  if (!data_dir_free_percent) return std::nullopt;
  return 100.0 - *data_dir_free_percent;
}

Status validate_resource_limits(const ResourceLimits& l, std::string_view prefix) {
  if (!percent_in(l.max_cpu_percent, 1, 100)) {
    return invalid(prefix, "max_cpu_percent", "must be between 1 and 100");
  }
  if (!percent_in(l.max_memory_percent, 1, 100)) {
    return invalid(prefix, "max_memory_percent", "must be between 1 and 100");
  }
  if (!percent_in(l.min_disk_free_percent, 0.01, 99)) {
    return invalid(prefix, "min_disk_free_percent", "must be between 0.01 and 99");
  }
  if (l.min_disk_free_bytes && *l.min_disk_free_bytes == 0) {
    return invalid(prefix, "min_disk_free", "must be more than 0 (leave it out for no limit)");
  }
  if (!percent_in(l.max_fd_percent, 1, 100)) {
    return invalid(prefix, "max_fd_percent", "must be between 1 and 100");
  }
  return {};
}

std::vector<ResourceCheck> check_resources(const ResourceSample& s, const ResourceLimits& l) {
  ANYA_ASSERT(validate_resource_limits(l, "").is_ok());
  std::vector<ResourceCheck> out;
  if (l.max_cpu_percent) {
    out.push_back(make_check(Resource::cpu, "max_cpu_percent", s.cpu_percent,
                             *l.max_cpu_percent, true));
  }
  if (l.max_memory_percent) {
    out.push_back(make_check(Resource::memory, "max_memory_percent", s.memory_used_percent,
                             *l.max_memory_percent, true));
  }
  if (l.min_disk_free_percent) {
    out.push_back(make_check(Resource::disk, "min_disk_free_percent", s.data_dir_free_percent,
                             *l.min_disk_free_percent, false));
  }
  if (l.min_disk_free_bytes) {
    std::optional<double> free;
    if (s.data_dir_free_bytes) free = static_cast<double>(*s.data_dir_free_bytes);
    out.push_back(make_check(Resource::disk, "min_disk_free", free,
                             static_cast<double>(*l.min_disk_free_bytes), false));
  }
  if (l.max_fd_percent) {
    out.push_back(make_check(Resource::fds, "max_fd_percent", s.fd_used_percent(),
                             *l.max_fd_percent, true));
  }
  return out;
}

std::string ResourceCheck::describe() const {
  const bool bytes = std::string_view(limit_key) == "min_disk_free";
  const auto text = [bytes](double v) {
    return bytes ? bytes_text(static_cast<std::uint64_t>(v)) : percent_text(v);
  };
  std::string what;
  switch (resource) {
    case Resource::cpu: what = "cpu"; break;
    case Resource::memory: what = "memory used"; break;
    case Resource::disk: what = "disk free"; break;
    case Resource::fds: what = "descriptors used"; break;
  }
  const std::string value_text = value ? text(*value) : std::string("unknown");
  const char* relation = !over ? "within" : upper ? "above" : "below";
  return what + " " + value_text + " " + relation + " " + limit_key + " " + text(limit);
}

std::uint8_t percent_u8(double percent) {
  if (!std::isfinite(percent) || percent <= 0) return 0;
  if (percent >= 100) return 100;
  return static_cast<std::uint8_t>(std::lround(percent));
}

std::string percent_text(double percent) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", percent);
  return buffer;
}

std::string bytes_text(std::uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    unit++;
  }
  char buffer[32];
  if (unit == 0) {
    std::snprintf(buffer, sizeof buffer, "%lluB", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f%s", value, kUnits[unit]);
  }
  return buffer;
}

}  // namespace anya::engine::health

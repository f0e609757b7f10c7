#include "engine/health/summary.hpp"

#include "engine/base/le_bytes.hpp"
#include "engine/health/probe.hpp"
#include "engine/health/resources.hpp"

namespace anya::engine::health {

namespace {

constexpr std::uint8_t kHealthyFlag = 0x01;
constexpr std::uint8_t kResourceMask = (1u << kResourceCount) - 1;
static_assert(kResourceCount <= 8, "one bit per resource in a u8");

bool valid_level(std::uint8_t level) { return level <= 100 || level == kUnknownLevel; }

// Reads fixed-width fields in order; the first error sticks and names the field and offset,
// in the wording engine/kv's decoders use.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t take(std::size_t width, const char* field) {
    if (!status_.is_ok()) return 0;
    if (width > bytes_.size() - pos_) {
      fail(std::string(field) + " truncated: needs " + std::to_string(width) + " bytes, " +
               std::to_string(bytes_.size() - pos_) + " remain",
           pos_);
      return 0;
    }
    field_offset_ = pos_;
    const std::uint64_t value = le::get(bytes_, pos_, width);
    pos_ += width;
    return value;
  }
  // Fails at the offset of the field just read.
  void refuse(const std::string& problem) { fail(problem, field_offset_); }
  void expect_end() {
    if (status_.is_ok() && pos_ != bytes_.size()) {
      fail(std::to_string(bytes_.size() - pos_) + " trailing bytes", pos_);
    }
  }
  bool ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }

 private:
  void fail(const std::string& problem, std::size_t offset) {
    if (!status_.is_ok()) return;
    status_ = Status(Errc::malformed, "health summary: " + problem + " at byte offset " +
                                          std::to_string(offset));
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
  std::size_t field_offset_ = 0;
  Status status_;
};

bool check_level(Cursor& c, std::uint8_t& out, const char* field) {
  out = static_cast<std::uint8_t>(c.take(1, field));
  if (c.ok() && !valid_level(out)) {
    c.refuse(std::string(field) + " " + std::to_string(out) + " is neither 0..100 nor 255");
  }
  return c.ok();
}

}  // namespace

std::string encode_summary(const HealthSummary& s) {
  ANYA_ASSERT(s.probe_count <= ProbeLimits::max_probes);
  ANYA_ASSERT(s.probe_count == 32 || (s.failing_probes >> s.probe_count) == 0);
  ANYA_ASSERT(valid_level(s.cpu_percent));
  ANYA_ASSERT(valid_level(s.memory_percent));
  ANYA_ASSERT(valid_level(s.disk_used_percent));
  ANYA_ASSERT(valid_level(s.fd_percent));
  ANYA_ASSERT((s.exceeded & ~kResourceMask) == 0);
  std::string out;
  out.reserve(kSummaryBytes);
  out.push_back(static_cast<char>(kSummaryVersion));
  out.push_back(static_cast<char>(s.healthy ? kHealthyFlag : 0));
  out.push_back(static_cast<char>(s.probe_count));
  le::put_u32(out, s.failing_probes);
  for (std::uint8_t level : {s.cpu_percent, s.memory_percent, s.disk_used_percent,
                             s.fd_percent, s.exceeded}) {
    out.push_back(static_cast<char>(level));
  }
  ANYA_ASSERT(out.size() == kSummaryBytes);
  return out;
}

Result<HealthSummary> decode_summary(std::string_view bytes) {
  Cursor c(bytes);
  HealthSummary s;
  const auto version = c.take(1, "version");
  if (c.ok() && version != kSummaryVersion) {
    c.refuse("version " + std::to_string(version) + " unsupported (expected " +
             std::to_string(kSummaryVersion) + ")");
  }
  const auto flags = c.take(1, "flags");
  if (c.ok() && (flags & ~std::uint64_t{kHealthyFlag}) != 0) {
    c.refuse("flags " + std::to_string(flags) + " has reserved bits set");
  }
  s.healthy = (flags & kHealthyFlag) != 0;
  s.probe_count = static_cast<std::uint8_t>(c.take(1, "probe_count"));
  if (c.ok() && s.probe_count > ProbeLimits::max_probes) {
    c.refuse("probe_count " + std::to_string(s.probe_count) + " above " +
             std::to_string(ProbeLimits::max_probes));
  }
  s.failing_probes = static_cast<std::uint32_t>(c.take(4, "failing_probes"));
  if (c.ok() && s.probe_count < 32 && (s.failing_probes >> s.probe_count) != 0) {
    c.refuse("failing_probes has a bit for a probe at or above probe_count " +
             std::to_string(s.probe_count));
  }
  check_level(c, s.cpu_percent, "cpu_percent");
  check_level(c, s.memory_percent, "memory_percent");
  check_level(c, s.disk_used_percent, "disk_used_percent");
  check_level(c, s.fd_percent, "fd_percent");
  s.exceeded = static_cast<std::uint8_t>(c.take(1, "exceeded"));
  if (c.ok() && (s.exceeded & ~kResourceMask) != 0) {
    c.refuse("exceeded " + std::to_string(s.exceeded) + " has reserved bits set");
  }
  c.expect_end();
  if (!c.ok()) return c.status();
  return s;
}

}  // namespace anya::engine::health

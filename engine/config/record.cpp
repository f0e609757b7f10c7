// ConfigRecord rules and its binary layout. The rules live in small "problem" functions that
// both check_config_record and the decoder use, so a record that decodes is a record that checks.
#include <algorithm>
#include <limits>
#include <utility>

#include "engine/config/config.hpp"
#include "engine/base/le_bytes.hpp"

namespace anya::engine {
namespace {

constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
static_assert(ConfigLimits::max_document_bytes <= kMaxU32);
static_assert(ConfigLimits::max_required_members <= kMaxU32);
static_assert(ConfigLimits::max_reason_bytes <= kMaxU32);
constexpr std::uint8_t kMaxKind = static_cast<std::uint8_t>(ConfigRecordKind::abort);

// Each returns an empty string when the field obeys the rules, else what is wrong with it.

std::string version_problem(std::uint64_t version) {
  if (version == 0) return "version 0 (versions start at 1)";
  if (version > ConfigLimits::max_version) {
    return "version " + std::to_string(version) + " above the limit of " +
           std::to_string(ConfigLimits::max_version);
  }
  return {};
}

std::string document_problem(ConfigRecordKind kind, std::size_t size) {
  if (kind != ConfigRecordKind::prepare) {
    return size == 0 ? std::string() : "document in a record that is not a PREPARE";
  }
  if (size == 0) return "empty document";
  if (size > ConfigLimits::max_document_bytes) {
    return "document length " + std::to_string(size) + " exceeds the limit of " +
           std::to_string(ConfigLimits::max_document_bytes);
  }
  return {};
}

std::string required_count_problem(ConfigRecordKind kind, std::size_t count) {
  if (kind != ConfigRecordKind::prepare) {
    return count == 0 ? std::string() : "required members in a record that is not a PREPARE";
  }
  if (count == 0) return "empty required member set";
  if (count > ConfigLimits::max_required_members) {
    return "required member count " + std::to_string(count) + " exceeds the limit of " +
           std::to_string(ConfigLimits::max_required_members);
  }
  return {};
}

// Ids are strictly increasing so that one set has one encoding and equality is byte equality.
std::string required_id_problem(NodeId id, std::optional<NodeId> previous) {
  if (id == kNoNode) return "required member id 0 (no node)";
  if (previous && id <= *previous) {
    return "required member id " + std::to_string(id) + " not above the previous id " +
           std::to_string(*previous);
  }
  return {};
}

std::string reason_problem(ConfigRecordKind kind, std::size_t size) {
  if (kind != ConfigRecordKind::abort) {
    return size == 0 ? std::string() : "reason in a record that is not an ABORT";
  }
  if (size > ConfigLimits::max_reason_bytes) {
    return "reason length " + std::to_string(size) + " exceeds the limit of " +
           std::to_string(ConfigLimits::max_reason_bytes);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Writing.

void put_le(std::string& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}

void put_u32(std::string& out, std::size_t value) {
  ANYA_ASSERT(value <= kMaxU32);
  put_le(out, value, 4);
}

void put_bytes(std::string& out, std::string_view bytes) {
  put_u32(out, bytes.size());
  out.append(bytes);
}

// ---------------------------------------------------------------------------------------------
// Reading: a cursor that never reads past its view; the first error sticks and later reads
// return zeros, so the decoder can read a run of fields and check once.

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t le(std::size_t width, const char* field) {
    ANYA_ASSERT(width >= 1 && width <= 8);
    if (!need(width, field)) return 0;
    const std::uint64_t value = le::get(bytes_, pos_, width);
    pos_ += width;
    return value;
  }

  std::string_view bytes(std::size_t count, const char* field) {
    if (!need(count, field)) return {};
    const std::string_view out = bytes_.substr(pos_, count);
    pos_ += count;
    return out;
  }

  void fail_at(const std::string& what, std::size_t offset) {
    if (!ok()) return;
    status_ = Status(Errc::malformed,
                     "config record: " + what + " at byte offset " + std::to_string(offset));
  }

  // Records a broken rule about the field that started at `offset`, if there is one.
  void check(const std::string& problem, std::size_t offset) {
    if (!problem.empty()) fail_at(problem, offset);
  }

  bool ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const {
    ANYA_ASSERT(pos_ <= bytes_.size());
    return bytes_.size() - pos_;
  }

 private:
  bool need(std::size_t count, const char* field) {
    if (!ok()) return false;
    if (count > remaining()) {
      fail_at(std::string(field) + " truncated: needs " + std::to_string(count) + " bytes, " +
                  std::to_string(remaining()) + " remain",
              offset());
      return false;
    }
    return true;
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
  Status status_;
};

// A u32 length, checked against the rules before the bytes are read, then the bytes.
std::string read_text(Reader& r, ConfigRecordKind kind, const char* length_field,
                      const char* field, std::string (*problem)(ConfigRecordKind, std::size_t)) {
  const std::size_t at = r.offset();
  const auto length = static_cast<std::size_t>(r.le(4, length_field));
  if (r.ok()) r.check(problem(kind, length), at);
  return std::string(r.bytes(length, field));
}

std::vector<NodeId> read_required(Reader& r, ConfigRecordKind kind) {
  const std::size_t at = r.offset();
  const auto count = static_cast<std::size_t>(r.le(4, "required member count"));
  if (r.ok()) r.check(required_count_problem(kind, count), at);
  if (!r.ok()) return {};
  if (count > r.remaining() / 8) {  // before reserving: allocate only what the bytes can fill
    r.fail_at("required member ids truncated: " + std::to_string(count) + " ids need " +
                  std::to_string(count * 8) + " bytes, " + std::to_string(r.remaining()) +
                  " remain",
              r.offset());
    return {};
  }
  std::vector<NodeId> ids;
  ids.reserve(count);
  std::optional<NodeId> previous;
  for (std::size_t i = 0; i < count && r.ok(); ++i) {
    const std::size_t id_at = r.offset();
    const NodeId id = r.le(8, "required member id");
    r.check(required_id_problem(id, previous), id_at);
    ids.push_back(id);
    previous = id;
  }
  return ids;
}

}  // namespace

const char* config_record_kind_name(ConfigRecordKind kind) {
  switch (kind) {
    case ConfigRecordKind::prepare: return "PREPARE";
    case ConfigRecordKind::commit: return "COMMIT";
    case ConfigRecordKind::abort: return "ABORT";
  }
  return "unknown";
}

ConfigRecord ConfigRecord::prepare(std::uint64_t version, std::string document,
                                   std::vector<NodeId> required) {
  return {ConfigRecordKind::prepare, version, std::move(document), std::move(required), {}};
}

ConfigRecord ConfigRecord::commit(std::uint64_t version) {
  return {ConfigRecordKind::commit, version, {}, {}, {}};
}

ConfigRecord ConfigRecord::abort(std::uint64_t version, std::string reason) {
  return {ConfigRecordKind::abort, version, {}, {}, std::move(reason)};
}

Status check_config_record(const ConfigRecord& record) {
  const auto kind = static_cast<std::uint8_t>(record.kind);
  std::string problem = (kind == 0 || kind > kMaxKind)
                            ? "unknown record kind " + std::to_string(kind)
                            : version_problem(record.version);
  if (problem.empty()) problem = document_problem(record.kind, record.document.size());
  if (problem.empty()) problem = required_count_problem(record.kind, record.required.size());
  std::optional<NodeId> previous;
  for (std::size_t i = 0; i < record.required.size() && problem.empty(); ++i) {
    problem = required_id_problem(record.required[i], previous);
    previous = record.required[i];
  }
  if (problem.empty()) problem = reason_problem(record.kind, record.reason.size());
  if (problem.empty()) return Status::ok();
  return Status(Errc::invalid_argument, "config record: " + problem);
}

std::string encode_config_record(const ConfigRecord& record) {
  ANYA_ASSERT(check_config_record(record).is_ok());
  std::string out;
  out.reserve(1 + 8 + 3 * 4 + record.document.size() + 8 * record.required.size() +
              record.reason.size());
  put_le(out, static_cast<std::uint8_t>(record.kind), 1);
  put_le(out, record.version, 8);
  put_bytes(out, record.document);
  put_u32(out, record.required.size());
  for (const NodeId id : record.required) put_le(out, id, 8);
  put_bytes(out, record.reason);
  ANYA_ASSERT(out.size() <= ConfigLimits::max_record_bytes);
  return out;
}

Result<ConfigRecord> decode_config_record(std::string_view bytes) {
  Reader r(bytes);
  ConfigRecord record;
  const auto kind = static_cast<std::uint8_t>(r.le(1, "record kind"));
  if (r.ok() && (kind == 0 || kind > kMaxKind)) {
    r.fail_at("unknown record kind " + std::to_string(kind), 0);
  }
  record.kind = static_cast<ConfigRecordKind>(kind);
  const std::size_t version_at = r.offset();
  record.version = r.le(8, "version");
  if (r.ok()) r.check(version_problem(record.version), version_at);
  record.document = read_text(r, record.kind, "document length", "document", document_problem);
  record.required = read_required(r, record.kind);
  record.reason = read_text(r, record.kind, "reason length", "reason", reason_problem);
  if (r.ok() && r.remaining() != 0) {
    r.fail_at(std::to_string(r.remaining()) + " trailing bytes after the record", r.offset());
  }
  if (!r.ok()) return r.status();
  ANYA_ASSERT(check_config_record(record).is_ok());  // both sides of the boundary agree
  return record;
}

std::string bounded_reason(std::string_view text) {
  if (text.size() <= ConfigLimits::max_reason_bytes) return std::string(text);
  std::size_t end = ConfigLimits::max_reason_bytes;
  // Back off over continuation bytes (10xxxxxx) so the cut falls before a sequence's lead byte.
  while (end > 0 && (static_cast<std::uint8_t>(text[end]) & 0xC0u) == 0x80u) --end;
  ANYA_ASSERT(end <= ConfigLimits::max_reason_bytes);
  return std::string(text.substr(0, end));
}

}  // namespace anya::engine

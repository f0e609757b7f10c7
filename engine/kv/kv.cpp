#include "engine/kv/kv.hpp"

#include <limits>
#include <utility>

#include "engine/codec/crc32c.hpp"
#include "engine/base/le_bytes.hpp"

namespace anya::engine {

namespace {
// One key's part of KvStore::digest(): FNV-1a over the key, the value and the three revisions.
// Summed over keys, so the digest does not depend on the order keys changed in.
std::uint64_t key_digest(std::string_view key, const KeyValue& kv) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto add = [&h](std::string_view bytes) {
    for (const char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ULL;
    }
  };
  add(key);
  h ^= 0xff;  // the key's end: ("ab", "c") and ("a", "bc") differ
  h *= 0x100000001b3ULL;
  add(kv.value);
  for (std::uint64_t v : {kv.create_revision, kv.mod_revision, kv.version}) {
    h ^= v;
    h *= 0x100000001b3ULL;
  }
  return h;
}
}  // namespace
namespace {

constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
static_assert(kMaxKeyBytes <= kMaxU32 && kMaxValueBytes <= kMaxU32, "lengths are u32 fields");
static_assert(kKvSnapshotMagic.size() == 4);
static_assert(kMaxKeyBytes + kMaxValueBytes <= kMaxStoreBytes, "one key must fit the store");

constexpr std::uint8_t kLastOp = static_cast<std::uint8_t>(KvOp::del);

void put_le(std::string& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}
void put_u32(std::string& out, std::size_t value) {
  ANYA_ASSERT(value <= kMaxU32);
  put_le(out, value, 4);
}
void put_u64(std::string& out, std::uint64_t value) { put_le(out, value, 8); }

void put_bytes(std::string& out, std::string_view bytes) {
  put_u32(out, bytes.size());
  out.append(bytes);
}

// A cursor that never reads past its view. The first error sticks; later reads return zeros and
// empty views and do not move, so a decoder can read a group of fields and check once.
class Reader {
 public:
  Reader(std::string_view bytes, Errc error_code, const char* what)
      : bytes_(bytes), error_code_(error_code), what_(what) {}

  std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(take_le(1, field)); }
  std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(take_le(4, field)); }
  std::uint64_t u64(const char* field) { return take_le(8, field); }

  // A u32 length (checked against `max` before anything is read) followed by that many bytes;
  // errors name the "<field> length" or the "<field>" bytes.
  std::string_view sized(const char* field, std::size_t min, std::size_t max) {
    const std::size_t length_offset = pos_;
    const std::string length_field = std::string(field) + " length";
    const std::uint32_t length = u32(length_field.c_str());
    if (!ok()) return {};
    if (length < min || length > max) {
      fail_at(length_field + " " + std::to_string(length) + " outside " +
                  std::to_string(min) + ".." + std::to_string(max),
              length_offset);
      return {};
    }
    if (!need(length, field)) return {};
    const std::string_view out = bytes_.substr(pos_, length);
    pos_ += length;
    return out;
  }

  void fail_at(const std::string& problem, std::size_t offset) {
    if (!status_.is_ok()) return;
    status_ = Status(error_code_,
                     std::string(what_) + ": " + problem + " at byte offset " +
                         std::to_string(offset));
  }
  void fail_with(Status status) {
    ANYA_ASSERT(!status.is_ok());
    if (status_.is_ok()) status_ = std::move(status);
  }

  void expect_end() {
    if (ok() && remaining() != 0) {
      fail_at(std::to_string(remaining()) + " trailing bytes", pos_);
    }
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
              pos_);
      return false;
    }
    return true;
  }

  std::uint64_t take_le(std::size_t width, const char* field) {
    ANYA_ASSERT(width >= 1 && width <= 8);
    if (!need(width, field)) return 0;
    const std::uint64_t value = le::get(bytes_, pos_, width);
    pos_ += width;
    return value;
  }

  std::string_view bytes_;
  Errc error_code_;
  const char* what_;  // "kv command" or "kv snapshot", the start of every message
  std::size_t pos_ = 0;
  Status status_;
};

Status version_error(const char* what, unsigned version, unsigned expected, std::size_t offset) {
  return Status(Errc::unsupported, std::string(what) + ": unsupported format version " +
                                       std::to_string(version) + " (this build speaks " +
                                       std::to_string(expected) + ") at byte offset " +
                                       std::to_string(offset));
}

KvResult invalid(std::string message) {
  return KvResult{KvOutcome::invalid, 0, std::move(message)};
}

}  // namespace

const char* kv_outcome_name(KvOutcome outcome) {
  switch (outcome) {
    case KvOutcome::ok: return "ok";
    case KvOutcome::conflict: return "conflict";
    case KvOutcome::not_found: return "not_found";
    case KvOutcome::invalid: return "invalid";
  }
  return "unknown";
}

// --- commands ------------------------------------------------------------------------------------

KvCommand KvCommand::put(std::string key, std::string value) {
  return KvCommand{KvOp::put, std::move(key), std::move(value), 0};
}

KvCommand KvCommand::cas(std::string key, Index expected_revision, std::string value) {
  return KvCommand{KvOp::cas, std::move(key), std::move(value), expected_revision};
}

KvCommand KvCommand::del(std::string key, std::optional<Index> expected_revision) {
  ANYA_ASSERT(!expected_revision.has_value() || *expected_revision != 0);
  return KvCommand{KvOp::del, std::move(key), {}, expected_revision.value_or(0)};
}

Status check_command(const KvCommand& command) {
  const auto op = static_cast<std::uint8_t>(command.op);
  if (op == 0 || op > kLastOp) {
    return Status(Errc::invalid_argument, "unknown kv op " + std::to_string(op));
  }
  if (command.key.empty()) return Status(Errc::invalid_argument, "key is empty");
  if (command.key.size() > kMaxKeyBytes) {
    return Status(Errc::invalid_argument, "key of " + std::to_string(command.key.size()) +
                                              " bytes exceeds limit " +
                                              std::to_string(kMaxKeyBytes));
  }
  if (command.value.size() > kMaxValueBytes) {
    return Status(Errc::invalid_argument, "value of " + std::to_string(command.value.size()) +
                                              " bytes exceeds limit " +
                                              std::to_string(kMaxValueBytes));
  }
  if (command.op == KvOp::del && !command.value.empty()) {
    return Status(Errc::invalid_argument, "a delete carries no value");
  }
  if (command.op == KvOp::put && command.expected_revision != 0) {
    return Status(Errc::invalid_argument, "a put carries no expected revision (use cas)");
  }
  return Status::ok();
}

std::string encode_command(const KvCommand& command) {
  const Status check = check_command(command);
  ANYA_ASSERT(check.is_ok());
  std::string out;
  out.reserve(kKvCommandHeaderBytes + 8 + 8 + command.key.size() + command.value.size());
  out.push_back(static_cast<char>(kKvCommandVersion));
  out.push_back(static_cast<char>(command.op));
  if (command.op != KvOp::put) put_u64(out, command.expected_revision);
  put_bytes(out, command.key);
  if (command.op != KvOp::del) put_bytes(out, command.value);
  ANYA_ASSERT(out.size() <= kMaxKvCommandBytes);
  return out;
}

Result<KvCommand> decode_command(std::string_view bytes) {
  Reader r(bytes, Errc::malformed, "kv command");
  const std::uint8_t version = r.u8("version");
  if (r.ok() && version != kKvCommandVersion) {
    return version_error("kv command", version, kKvCommandVersion, 0);
  }
  const std::size_t op_offset = r.offset();
  const std::uint8_t op = r.u8("op");
  if (r.ok() && (op == 0 || op > kLastOp)) r.fail_at("unknown op " + std::to_string(op), op_offset);
  if (!r.ok()) return r.status();

  KvCommand command;
  command.op = static_cast<KvOp>(op);
  if (command.op != KvOp::put) command.expected_revision = r.u64("expected revision");
  command.key = std::string(r.sized("key", 1, kMaxKeyBytes));
  if (command.op != KvOp::del) command.value = std::string(r.sized("value", 0,
                                                                   kMaxValueBytes));
  r.expect_end();
  if (!r.ok()) return r.status();
  // Every field was range-checked above; what decodes must be encodable (strictness).
  ANYA_ASSERT(check_command(command).is_ok());
  return command;
}

// --- the store -----------------------------------------------------------------------------------

KvStore::KvStore(KvLimits limits) : limits_(limits) {
  ANYA_ASSERT(limits_.max_keys <= kMaxKeys);
  ANYA_ASSERT(limits_.max_store_bytes <= kMaxStoreBytes);
}

KvResult KvStore::apply(Index index, std::string_view command) {
  ANYA_ASSERT(index > revision_);
  revision_ = index;
  Result<KvCommand> decoded = decode_command(command);
  if (!decoded) return invalid(decoded.status().message());
  KvCommand& cmd = decoded.value();
  switch (cmd.op) {
    case KvOp::put: return apply_put(index, cmd);
    case KvOp::cas: return apply_cas(index, cmd);
    case KvOp::del: return apply_delete(index, cmd);
  }
  ANYA_ASSERT(false);  // decode_command accepts only the ops above
  return invalid("unknown op");
}

const KeyValue* KvStore::get(std::string_view key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, KeyValue>> KvStore::scan(std::string_view prefix,
                                                            std::size_t limit) const {
  std::vector<std::pair<std::string, KeyValue>> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && out.size() < limit && it->first.starts_with(prefix); ++it) {
    out.emplace_back(it->first, it->second);
  }
  ANYA_ASSERT(out.size() <= limit);
  return out;
}

KvResult KvStore::apply_put(Index index, KvCommand& command) {
  return write(index, command.key, command.value);
}

KvResult KvStore::apply_cas(Index index, KvCommand& command) {
  const KeyValue* current = get(command.key);
  const Index current_revision = current == nullptr ? 0 : current->mod_revision;
  if (current_revision != command.expected_revision) {
    return KvResult{KvOutcome::conflict, current_revision, {}};
  }
  return write(index, command.key, command.value);
}

KvResult KvStore::apply_delete(Index index, const KvCommand& command) {
  const auto it = entries_.find(command.key);
  if (it == entries_.end()) return KvResult{KvOutcome::not_found, 0, {}};
  const Index current_revision = it->second.mod_revision;
  if (command.expected_revision != 0 && command.expected_revision != current_revision) {
    return KvResult{KvOutcome::conflict, current_revision, {}};
  }
  const std::size_t bytes = it->first.size() + it->second.value.size();
  ANYA_ASSERT(store_bytes_ >= bytes);
  store_bytes_ -= bytes;
  keys_digest_ -= key_digest(it->first, it->second);
  entries_.erase(it);
  return KvResult{KvOutcome::ok, index, {}};
}

KvResult KvStore::write(Index index, std::string& key, std::string& value) {
  ANYA_ASSERT(index == revision_);
  const auto it = entries_.find(key);
  const bool exists = it != entries_.end();
  const std::size_t old_bytes = exists ? key.size() + it->second.value.size() : 0;
  ANYA_ASSERT(store_bytes_ >= old_bytes);
  const std::size_t new_total = store_bytes_ - old_bytes + key.size() + value.size();
  if (!exists && entries_.size() >= limits_.max_keys) {
    return invalid("store full: " + std::to_string(entries_.size()) + " keys, limit " +
                   std::to_string(limits_.max_keys) + "; delete keys first");
  }
  if (new_total > limits_.max_store_bytes) {
    return invalid("store full: the write would make " + std::to_string(new_total) +
                   " bytes of keys and values, limit " + std::to_string(limits_.max_store_bytes));
  }
  if (exists) {
    KeyValue& entry = it->second;
    ANYA_ASSERT(entry.mod_revision < index);
    keys_digest_ -= key_digest(it->first, entry);
    entry.value = std::move(value);
    entry.mod_revision = index;
    ++entry.version;
    keys_digest_ += key_digest(it->first, entry);
  } else {
    auto [added, fresh] =
        entries_.emplace(std::move(key), KeyValue{std::move(value), index, index, 1});
    ANYA_ASSERT(fresh);
    keys_digest_ += key_digest(added->first, added->second);
  }
  store_bytes_ = new_total;
  return KvResult{KvOutcome::ok, index, {}};
}

std::uint64_t KvStore::digest() const {
  std::uint64_t h = keys_digest_ ^ 0x9e3779b97f4a7c15ULL;
  h ^= revision_ + (h << 6) + (h >> 2);
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 31);
}

// --- snapshots -----------------------------------------------------------------------------------

std::string KvStore::snapshot() const {
  std::string out;
  out.reserve(kKvSnapshotHeaderBytes + entries_.size() * kKvSnapshotKeyFixedBytes + store_bytes_ +
              kKvSnapshotChecksumBytes);
  out.append(kKvSnapshotMagic);
  out.push_back(static_cast<char>(kKvSnapshotVersion));
  put_u64(out, revision_);
  put_u64(out, entries_.size());
  ANYA_ASSERT(out.size() == kKvSnapshotHeaderBytes);
  for (const auto& [key, entry] : entries_) {
    ANYA_ASSERT(entry.create_revision >= 1);
    ANYA_ASSERT(entry.mod_revision <= revision_);
    put_bytes(out, key);
    put_bytes(out, entry.value);
    put_u64(out, entry.create_revision);
    put_u64(out, entry.mod_revision);
    put_u64(out, entry.version);
  }
  put_le(out, crc32c(out), 4);
  return out;
}

namespace {

// Reads one key of a snapshot and checks it against itself and the snapshot's revision.
void read_snapshot_key(Reader& r, Index revision, std::string_view previous_key,
                       std::string_view& key, KeyValue& entry) {
  const std::size_t key_offset = r.offset();
  key = r.sized("key", 1, kMaxKeyBytes);
  entry.value = std::string(r.sized("value", 0, kMaxValueBytes));
  const std::size_t revisions_offset = r.offset();
  entry.create_revision = r.u64("create revision");
  entry.mod_revision = r.u64("mod revision");
  const std::size_t version_offset = r.offset();
  entry.version = r.u64("version");
  if (!r.ok()) return;
  if (!previous_key.empty() && !(previous_key < key)) {
    r.fail_at("keys out of order or repeated", key_offset);
  } else if (entry.create_revision == 0 || entry.create_revision > entry.mod_revision ||
             entry.mod_revision > revision) {
    r.fail_at("revisions need 1 <= create (" + std::to_string(entry.create_revision) +
                  ") <= mod (" + std::to_string(entry.mod_revision) + ") <= snapshot revision (" +
                  std::to_string(revision) + ")",
              revisions_offset);
  } else if (entry.version == 0 ||
             entry.version - 1 > entry.mod_revision - entry.create_revision) {
    r.fail_at("version " + std::to_string(entry.version) + " impossible between create " +
                  std::to_string(entry.create_revision) + " and mod " +
                  std::to_string(entry.mod_revision),
              version_offset);
  }
}

Status check_snapshot_frame(std::string_view bytes) {
  const std::size_t min_bytes = kKvSnapshotHeaderBytes + kKvSnapshotChecksumBytes;
  if (bytes.size() < min_bytes) {
    return Status(Errc::corrupt, "kv snapshot: truncated: " + std::to_string(bytes.size()) +
                                     " bytes, at least " + std::to_string(min_bytes) +
                                     " needed at byte offset " + std::to_string(bytes.size()));
  }
  if (bytes.substr(0, kKvSnapshotMagic.size()) != kKvSnapshotMagic) {
    return Status(Errc::corrupt, "kv snapshot: bad magic, expected \"AKVS\" at byte offset 0");
  }
  const std::size_t checksum_offset = bytes.size() - kKvSnapshotChecksumBytes;
  Reader tail(bytes.substr(checksum_offset), Errc::corrupt, "kv snapshot");
  const std::uint32_t stored = tail.u32("checksum");
  const std::uint32_t computed = crc32c(bytes.substr(0, checksum_offset));
  if (stored != computed) {
    return Status(Errc::corrupt, "kv snapshot: checksum mismatch: stored " +
                                     std::to_string(stored) + ", computed " +
                                     std::to_string(computed) + " at byte offset " +
                                     std::to_string(checksum_offset));
  }
  const auto version = static_cast<std::uint8_t>(bytes[kKvSnapshotMagic.size()]);
  if (version != kKvSnapshotVersion) {
    return version_error("kv snapshot", version, kKvSnapshotVersion, kKvSnapshotMagic.size());
  }
  return Status::ok();
}

}  // namespace

Result<KvStore> KvStore::restore(std::string_view bytes, KvLimits limits) {
  if (Status frame = check_snapshot_frame(bytes); !frame.is_ok()) return frame;
  const std::string_view body = bytes.substr(0, bytes.size() - kKvSnapshotChecksumBytes);
  Reader r(body, Errc::corrupt, "kv snapshot");
  static_cast<void>(r.u32("magic"));
  static_cast<void>(r.u8("version"));
  KvStore store(limits);
  store.revision_ = r.u64("revision");
  const std::size_t count_offset = r.offset();
  const std::uint64_t count = r.u64("key count");
  ANYA_ASSERT(r.ok());  // the frame check guaranteed the whole header
  // Bound the count by the limit and by the bytes present before reading any key.
  if (count > limits.max_keys || count > r.remaining() / kKvSnapshotKeyFixedBytes) {
    r.fail_at("key count " + std::to_string(count) + " exceeds the limit " +
                  std::to_string(limits.max_keys) + " or the " + std::to_string(r.remaining()) +
                  " bytes present",
              count_offset);
  }
  std::string_view previous_key;
  for (std::uint64_t i = 0; r.ok() && i < count; ++i) {
    const std::size_t key_offset = r.offset();
    std::string_view key;
    KeyValue entry;
    read_snapshot_key(r, store.revision_, previous_key, key, entry);
    if (!r.ok()) break;
    store.store_bytes_ += key.size() + entry.value.size();
    if (store.store_bytes_ > limits.max_store_bytes) {
      r.fail_at("keys and values exceed the limit of " + std::to_string(limits.max_store_bytes) +
                    " bytes",
                key_offset);
      break;
    }
    store.keys_digest_ += key_digest(key, entry);
    store.entries_.emplace_hint(store.entries_.end(), std::string(key), std::move(entry));
    previous_key = key;
  }
  r.expect_end();
  if (!r.ok()) return r.status();
  ANYA_ASSERT(store.entries_.size() == count);
  return store;
}

}  // namespace anya::engine

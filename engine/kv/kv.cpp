#include "engine/kv/kv.hpp"

#include <limits>
#include <utility>

#include "engine/codec/crc32c.hpp"
#include "engine/base/le_bytes.hpp"
#include "engine/kv/wire.hpp"

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

using kvwire::kMaxU32;
using kvwire::put_bytes;
using kvwire::put_le;
using kvwire::put_u32;
using kvwire::put_u64;
using kvwire::Reader;
static_assert(kMaxKeyBytes <= kMaxU32 && kMaxValueBytes <= kMaxU32, "lengths are u32 fields");
static_assert(kKvSnapshotMagic.size() == 4);
static_assert(kMaxKeyBytes + kMaxValueBytes <= kMaxStoreBytes, "one key must fit the store");

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
    case KvOutcome::expired: return "expired";
  }
  return "unknown";
}

// --- the store -----------------------------------------------------------------------------------

KvStore::KvStore(KvLimits limits) : limits_(limits) {
  ANYA_ASSERT(limits_.max_keys <= kMaxKeys);
  ANYA_ASSERT(limits_.max_store_bytes <= kMaxStoreBytes);
}

KvResult KvStore::apply(Index index, std::string_view command) {
  ANYA_ASSERT(index > revision_);
  ANYA_ASSERT(reserve_.keys == 0 && reserve_.bytes == 0);
  revision_ = index;
  Result<Command> decoded = decode_command(command);
  if (!decoded) return invalid(decoded.status().message());
  Command& cmd = decoded.value();
  if (cmd.session) return apply_session(index, cmd);
  if (const SessionOpen* open = cmd.open()) return apply_open(index, *open);
  return apply_body(index, cmd);
}

namespace {
// Keys only the record commands write: a plain put or delete there could forge a reservation,
// a contract or a session's remembered outcome.
std::string_view record_prefix_of(std::string_view key) {
  for (std::string_view prefix : {kUtxoKeyPrefix, kDlcKeyPrefix, kSessionKeyPrefix}) {
    if (key.starts_with(prefix)) return prefix;
  }
  return {};
}
}  // namespace

KvResult KvStore::apply_body(Index index, Command& command) {
  if (const UtxoCommand* utxo = command.utxo()) return apply_utxo(index, *utxo);
  if (const DlcCommand* dlc = command.dlc()) return apply_dlc(index, *dlc);
  ANYA_ASSERT(command.open() == nullptr);  // decode_command allows it at the outer level only
  KvCommand& cmd = std::get<KvCommand>(command.body);
  if (const std::string_view prefix = record_prefix_of(cmd.key); !prefix.empty()) {
    return invalid("key: \"" + std::string(prefix) + "\" is reserved for the record commands");
  }
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
  return write(index, std::move(command.key), std::move(command.value));
}

KvResult KvStore::apply_cas(Index index, KvCommand& command) {
  const KeyValue* current = get(command.key);
  const Index current_revision = current == nullptr ? 0 : current->mod_revision;
  if (current_revision != command.expected_revision) {
    return KvResult{KvOutcome::conflict, current_revision, {}};
  }
  return write(index, std::move(command.key), std::move(command.value));
}

KvResult KvStore::apply_delete(Index index, const KvCommand& command) {
  const auto it = entries_.find(command.key);
  if (it == entries_.end()) return KvResult{KvOutcome::not_found, 0, {}};
  const Index current_revision = it->second.mod_revision;
  if (command.expected_revision != 0 && command.expected_revision != current_revision) {
    return KvResult{KvOutcome::conflict, current_revision, {}};
  }
  erase(command.key);
  return KvResult{KvOutcome::ok, index, {}};
}

void KvStore::erase(std::string_view key) {
  const auto it = entries_.find(key);
  ANYA_ASSERT(it != entries_.end());
  const std::size_t bytes = it->first.size() + it->second.value.size();
  ANYA_ASSERT(store_bytes_ >= bytes);
  store_bytes_ -= bytes;
  keys_digest_ -= key_digest(it->first, it->second);
  entries_.erase(it);
}

KvResult KvStore::write(Index index, std::string key, std::string value) {
  ANYA_ASSERT(index == revision_);
  const auto it = entries_.find(key);
  const bool exists = it != entries_.end();
  const std::size_t old_bytes = exists ? key.size() + it->second.value.size() : 0;
  ANYA_ASSERT(store_bytes_ >= old_bytes);
  const std::size_t new_total = store_bytes_ - old_bytes + key.size() + value.size();
  if (!exists && entries_.size() + reserve_.keys >= limits_.max_keys) {
    return invalid("store full: " + std::to_string(entries_.size()) + " keys, limit " +
                   std::to_string(limits_.max_keys) + "; delete keys first");
  }
  if (new_total + reserve_.bytes > limits_.max_store_bytes) {
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
  if (Status sessions = store.rebuild_session_order(); !sessions) return sessions;
  return store;
}

}  // namespace anya::engine

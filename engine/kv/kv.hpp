// The replicated key-value state machine: the node applies each committed application entry to a
// KvStore, in log order, and every replica ends in the same state because apply is a pure,
// deterministic function of (state, index, command bytes). Keys carry revisions so clients can
// compare-and-set; a snapshot lets a node compact its log.
//
// Pure like the rest of engine/: no I/O, no clock, no threads, no randomness. Depends on base and
// codec (CRC-32C) only, not on raft or host.
//
// Revisions are log indexes. A key's create_revision is the index that created it, mod_revision
// the index that last wrote it, version the number of writes since creation (1 on create). A
// deleted and re-created key starts again at version 1.
//
// Command layout (an entry's data; all integers little-endian, fixed width):
//
//   offset  size  field
//   0       1     format version, 1 (anything else: Errc::unsupported)
//   1       1     op: 1 = put, 2 = cas, 3 = delete
//   put:    2 key length K u32 (1..kMaxKeyBytes), 6 key, 6+K value length V u32
//           (0..kMaxValueBytes), 10+K value
//   cas:    2 expected_revision u64 (0 = the key must not exist), 10 key length K u32, 14 key,
//           14+K value length V u32, 18+K value
//   delete: 2 expected_revision u64 (0 = unconditional), 10 key length K u32, 14 key
//
// Decoding is strict: unknown version or op, a length over its limit or past the end, an empty
// key, or trailing bytes is an error naming the field and its byte offset, so decode succeeding
// implies encode(decode(bytes)) == bytes. Lengths are checked before anything is copied.
//
// Snapshot layout (all integers little-endian):
//
//   0       4     magic "AKVS"
//   4       1     snapshot format version, 1
//   5       8     revision u64: the last applied index
//   13      8     key count N u64 (<= the store's max_keys)
//   21      ...   N keys in strictly increasing byte order, each: key length u32, key,
//                 value length u32, value, create_revision u64, mod_revision u64, version u64
//   end-4   4     CRC-32C (engine/codec/crc32c.hpp) of every byte before it
//
// restore() checks the checksum first, then every field: key and value limits, key order,
// 1 <= create_revision <= mod_revision <= revision, 1 <= version <= mod_revision - create_revision
// + 1 (each write has its own index), the key and byte limits, no trailing bytes. A snapshot
// failing any check is Errc::corrupt (Errc::unsupported for another version) naming the field and
// its byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine {

// Limits. Key and value limits are part of the command format; the store limits bound memory and
// the snapshot size. Every replica must use the same store limits, since a put refused at the
// limit must be refused everywhere (they are part of the state machine's definition).
inline constexpr std::size_t kMaxKeyBytes = 1024;             // keys are 1..1024 bytes
inline constexpr std::size_t kMaxValueBytes = 256 * 1024;     // values are 0..256 KiB
inline constexpr std::size_t kMaxKeys = 1'000'000;            // a put of a new key past it fails
inline constexpr std::size_t kMaxStoreBytes = std::size_t{1} << 30;  // keys + values: 1 GiB

inline constexpr std::uint8_t kKvCommandVersion = 1;
inline constexpr std::uint8_t kKvSnapshotVersion = 1;
inline constexpr std::string_view kKvSnapshotMagic = "AKVS";
inline constexpr std::size_t kKvCommandHeaderBytes = 2;        // version, op
inline constexpr std::size_t kKvSnapshotHeaderBytes = 4 + 1 + 8 + 8;
inline constexpr std::size_t kKvSnapshotKeyFixedBytes = 4 + 4 + 3 * 8;
inline constexpr std::size_t kKvSnapshotChecksumBytes = 4;
// The largest command, a cas with the largest key and value.
inline constexpr std::size_t kMaxKvCommandBytes =
    kKvCommandHeaderBytes + 8 + 4 + kMaxKeyBytes + 4 + kMaxValueBytes;
static_assert(kMaxKvCommandBytes <= Limits::max_entry_data_bytes,
              "every valid command must fit one log entry");

enum class KvOp : std::uint8_t { put = 1, cas = 2, del = 3 };

struct KvCommand {
  KvOp op = KvOp::put;
  std::string key;
  std::string value;  // put and cas; empty for delete
  // cas: the key's mod_revision the writer saw, 0 = the key must not exist.
  // delete: 0 = unconditional, otherwise the key's mod_revision must equal it. put: always 0.
  Index expected_revision = 0;

  static KvCommand put(std::string key, std::string value);
  static KvCommand cas(std::string key, Index expected_revision, std::string value);
  // A given expected revision must be non-zero (asserted): 0 is how "unconditional" is encoded.
  static KvCommand del(std::string key, std::optional<Index> expected_revision = std::nullopt);

  friend bool operator==(const KvCommand&, const KvCommand&) = default;
};

// OK if `command` can be encoded: a non-empty key of at most kMaxKeyBytes, a value of at most
// kMaxValueBytes, no value on a delete, no expected revision on a put, and a delete's expected
// revision (when given) non-zero. Otherwise Errc::invalid_argument naming the field. The admin API
// checks client input with this before proposing.
Status check_command(const KvCommand& command);

// Encodes a command; it must pass check_command (asserted).
std::string encode_command(const KvCommand& command);

// Decodes exactly one command; Errc::malformed (Errc::unsupported for another version) naming the
// field and byte offset otherwise.
Result<KvCommand> decode_command(std::string_view bytes);

struct KeyValue {
  std::string value;
  Index create_revision = 0;   // Invariant: 1 <= create_revision <= mod_revision
  Index mod_revision = 0;      // Invariant: <= the store's revision()
  std::uint64_t version = 0;   // Invariant: 1 <= version <= mod_revision - create_revision + 1

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

enum class KvOutcome : std::uint8_t {
  ok,         // the write happened
  conflict,   // a cas or conditional delete lost; revision is the key's current mod_revision
  not_found,  // a delete of a key that does not exist
  invalid,    // the command did not decode or hit a store limit; message says which
};
const char* kv_outcome_name(KvOutcome outcome);

struct KvResult {
  KvOutcome outcome = KvOutcome::ok;
  // ok: the applied index (the key's new mod_revision, or the index of the delete).
  // conflict: the key's current mod_revision, 0 if the key does not exist. Otherwise 0.
  Index revision = 0;
  std::string message;  // invalid only: what is wrong, for the client

  friend bool operator==(const KvResult&, const KvResult&) = default;
};

// Store limits, the defaults above unless a test shrinks them (see the note on limits).
struct KvLimits {
  std::size_t max_keys = kMaxKeys;
  std::size_t max_store_bytes = kMaxStoreBytes;  // sum of key and value sizes
};

class KvStore {
 public:
  explicit KvStore(KvLimits limits = {});

  // Applies the command of the entry at `index`; `index` must be greater than revision()
  // (asserted: the log hands out increasing indexes; entries that are not KV commands may be
  // skipped). Never throws on any bytes: a command that does not decode, or a put past a limit, is
  // KvOutcome::invalid and changes no key. Every outcome advances revision() to `index`, since the
  // entry has been applied.
  KvResult apply(Index index, std::string_view command);

  const KeyValue* get(std::string_view key) const;  // nullptr if absent
  // The keys that start with `prefix`, in key order, at most `limit` of them.
  std::vector<std::pair<std::string, KeyValue>> scan(std::string_view prefix,
                                                     std::size_t limit) const;
  std::size_t size() const { return entries_.size(); }
  std::size_t store_bytes() const { return store_bytes_; }
  Index revision() const { return revision_; }
  const KvLimits& limits() const { return limits_; }
  // A 64-bit digest of the whole state (every key with its value and revisions, and
  // revision()), kept up to date as keys change, so replicas can be compared after every apply
  // without serializing the store. Equal stores have equal digests; restore() recomputes it.
  std::uint64_t digest() const;

  // The whole state, in the snapshot layout above. restore(snapshot()) yields an equal store.
  std::string snapshot() const;
  static Result<KvStore> restore(std::string_view bytes, KvLimits limits = {});

 private:
  KvResult apply_put(Index index, KvCommand& command);
  KvResult apply_cas(Index index, KvCommand& command);
  KvResult apply_delete(Index index, const KvCommand& command);
  // Writes `value` to `key` at `index`, creating the key if needed; checks the store limits first.
  KvResult write(Index index, std::string& key, std::string& value);

  KvLimits limits_;
  std::map<std::string, KeyValue, std::less<>> entries_;  // ordered: snapshots are canonical
  std::size_t store_bytes_ = 0;  // Invariant: sum of key and value sizes, <= max_store_bytes
  std::uint64_t keys_digest_ = 0;  // Invariant: sum (mod 2^64) of key_digest over entries_
  Index revision_ = 0;           // Invariant: >= every key's mod_revision
};

}  // namespace anya::engine

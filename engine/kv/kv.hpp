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
// Commands and their encoding are in engine/kv/command.hpp; the Bitcoin records (UTXO
// reservations, DLC contracts) in engine/kv/bitcoin.hpp. Both live in this one store.
//
// Client sessions (exactly-once writes). A client first opens a session (a SessionOpen command):
// the store gives it the index of that entry as its client id, never used before or again. Its
// writes then carry (client id, seq). The store keeps, per session, the outcomes of its last
// kSessionWindow requests, under the reserved key kSessionKeyPrefix + the id in decimal (so
// snapshots carry them). Applying a command whose (client, seq) was applied before changes
// nothing and returns the first outcome, marked replayed; so a client that retries after a
// timeout or a failover, with the same id and seq, has its write applied at most once, whichever
// leader proposed which copy. The rules:
//   - a request for a session the store does not hold is refused as expired: only an open
//     creates a session, so a session once forgotten is never re-opened by a late retry;
//   - a seq at or below (the highest seq applied - kSessionWindow) is refused as expired: its
//     outcome is no longer known (at most kSessionWindow requests in flight per client);
//   - a session is forgotten when idle for kSessionIdleMs (by the proposers' clocks carried in
//     the commands) or when it is the least recently used of more than max_sessions. Either is
//     only a loss of liveness: the client is told "expired" and opens a new session. Safety does
//     not rest on any clock.
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
#include "engine/kv/command.hpp"

namespace anya::engine {

// Store limits. Every replica must use the same store limits, since a put refused at the limit
// must be refused everywhere (they are part of the state machine's definition).
inline constexpr std::size_t kMaxKeys = 1'000'000;            // a put of a new key past it fails
inline constexpr std::size_t kMaxStoreBytes = std::size_t{1} << 30;  // keys + values: 1 GiB
inline constexpr std::size_t kMaxSessions = 10'000;
inline constexpr std::uint64_t kSessionWindow = 32;            // outcomes kept per client
inline constexpr std::uint64_t kSessionIdleMs = 24ULL * 3600 * 1000;
inline constexpr std::string_view kSessionKeyPrefix = "_anya/session/";

inline constexpr std::uint8_t kKvSnapshotVersion = 1;
inline constexpr std::string_view kKvSnapshotMagic = "AKVS";
inline constexpr std::size_t kKvSnapshotHeaderBytes = 4 + 1 + 8 + 8;
inline constexpr std::size_t kKvSnapshotKeyFixedBytes = 4 + 4 + 3 * 8;
inline constexpr std::size_t kKvSnapshotChecksumBytes = 4;

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
  not_found,  // a delete of a key (release of an outpoint, change of a contract) that is absent
  invalid,    // the command did not decode or hit a store limit; message says which
  expired,    // a session request whose outcome is no longer known (see client sessions)
};
const char* kv_outcome_name(KvOutcome outcome);

struct KvResult {
  KvOutcome outcome = KvOutcome::ok;
  // ok: the applied index (the key's new mod_revision, or the index of the delete).
  // conflict: the key's current mod_revision, 0 if the key does not exist. Otherwise 0.
  Index revision = 0;
  std::string message;  // why not ok, for the client (empty for a plain conflict or not_found)
  // A session request applied before: this is its first outcome, and nothing changed now.
  bool replayed = false;

  friend bool operator==(const KvResult&, const KvResult&) = default;
};

// Store limits, the defaults above unless a test shrinks them (see the note on limits).
struct KvLimits {
  std::size_t max_keys = kMaxKeys;
  std::size_t max_store_bytes = kMaxStoreBytes;  // sum of key and value sizes
  std::size_t max_sessions = kMaxSessions;
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
  // Space a write must leave free (see apply_session): what the session record may still need.
  struct Reserve {
    std::size_t keys = 0;
    std::size_t bytes = 0;
  };

  KvResult apply_body(Index index, Command& command);
  KvResult apply_put(Index index, KvCommand& command);
  KvResult apply_cas(Index index, KvCommand& command);
  KvResult apply_delete(Index index, const KvCommand& command);
  // engine/kv/kv_bitcoin.cpp
  KvResult apply_utxo(Index index, const UtxoCommand& command);
  KvResult apply_dlc(Index index, const DlcCommand& command);
  // engine/kv/kv_session.cpp
  KvResult apply_open(Index index, const SessionOpen& open);
  KvResult apply_session(Index index, Command& command);
  // Makes room for one more session: forgets idle ones, then the least recently used.
  void forget_sessions(std::uint64_t now_ms);
  void forget_idle_sessions(std::uint64_t now_ms);  // a few of the least recently used, if idle
  void forget_session(std::uint64_t client_id);
  Status rebuild_session_order();  // Errc::corrupt if two sessions share a revision
  // Writes `value` to `key` at `index`, creating the key if needed; checks the store limits first
  // (less reserve_).
  KvResult write(Index index, std::string key, std::string value);
  void erase(std::string_view key);  // the key exists (asserted)

  KvLimits limits_;
  std::map<std::string, KeyValue, std::less<>> entries_;  // ordered: snapshots are canonical
  std::size_t store_bytes_ = 0;  // Invariant: sum of key and value sizes, <= max_store_bytes
  std::uint64_t keys_digest_ = 0;  // Invariant: sum (mod 2^64) of key_digest over entries_
  Index revision_ = 0;           // Invariant: >= every key's mod_revision
  Reserve reserve_;              // non-zero only inside apply_session
  // Sessions by last use: the mod_revision of each session key -> its client id. Derived from
  // the session keys (restore() rebuilds it), so it is not part of snapshots or the digest.
  std::map<Index, std::uint64_t> session_order_;
};

}  // namespace anya::engine

// engine/config: the two-phase, versioned protocol that changes the cluster's configuration
// document. Pure like the rest of engine/: no I/O, no clock (time is the caller's `now_ms`), no
// threads, no entropy. Depends on engine/base only; raft, the host loop and the wire codec know
// nothing of it beyond EntryType::config_txn and MessageType::config_ack.
//
// The contract
// - The cluster holds one authoritative configuration document (JSON to the host, opaque here:
//   non-empty and at most ConfigLimits::max_document_bytes) and its version, a u64 that starts at
//   0 (= none yet). A version names at most one activated document: versions are allocated as
//   highest_version_seen + 1 and never reused, aborted ones included.
// - A change is a transaction recorded in the raft log as EntryType::config_txn entries whose
//   data is an encoded ConfigRecord:
//       PREPARE(version, document, required members)   COMMIT(version)   ABORT(version, reason)
//   Every member applies them in log order once raft has committed them (ConfigState::apply), so
//   every member that applied the same prefix holds the same active, staged and history.
// - PREPARE(v) is ignored (and counted) unless v is above the version of every PREPARE applied
//   before, and unless no transaction is open. Otherwise the member runs the host's
//   ConfigValidator and stages the document; a member in the required set returns a ConfigAck
//   (ok, or reject with the validator's message) that the host sends to the leader as a
//   config_ack message (the leader routes its own to its coordinator). A member outside the
//   required set stages the document whatever its validator says: the log decides, not the
//   local verdict (StagedConfig::locally_valid keeps that verdict for the host to report).
// - COMMIT(v) for the staged version activates it: active version and document change together
//   and enter the history (the last ConfigLimits::history_capacity activations). ABORT(v) for the
//   staged version drops it. A COMMIT or ABORT of any other version is ignored and counted.
// - The leader's ConfigCoordinator begins transactions (compare-and-set on the active version),
//   collects acks and proposes exactly one COMMIT (every required member acked ok) or ABORT (a
//   reject, or the deadline passed). A transaction left open by an earlier leader is aborted.
//   The required set is the host's choice (the voters, say); nothing here checks it against the
//   membership, so a required member that cannot answer ends in ABORT at the deadline.
// - A member that replays its log after a restart sends its acks again; the coordinator counts
//   acks for its open version only, so old ones are ignored (and counted).
//
// Why it is safe across leader changes: at most one PREPARE per version is ever staged (a later
// one with the same version is stale), so an ack, which names only a version, always speaks of
// the one staged document. The coordinator proposes COMMIT only once its own applied state has
// staged exactly the PREPARE it began; anything else staged is foreign and gets an ABORT.
// Note: a new leader whose applied state lags may begin a version an older leader's uncommitted
// PREPARE also uses. Only the first of the two can be staged; the second is ignored when
// applied (ConfigEffects::ignored names its version so the host can fail that request). The
// host avoids the case by beginning only once the leader has applied its own term's first entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine {

struct ConfigLimits {
  static constexpr std::size_t max_document_bytes = 64 * 1024;
  static constexpr std::size_t max_required_members = 256;
  // Reasons travel in ABORT records and config_ack payloads; a validator may say a lot.
  static constexpr std::size_t max_reason_bytes = 1024;
  static constexpr std::size_t history_capacity = 32;
  // Like Limits::max_term: out of reach of any real cluster, so version + 1 never wraps.
  static constexpr std::uint64_t max_version = std::uint64_t{1} << 62;
  // kind u8, version u64, three u32 lengths/counts, and the variable parts at their maximum.
  static constexpr std::size_t max_record_bytes =
      1 + 8 + 3 * 4 + max_document_bytes + 8 * max_required_members + max_reason_bytes;
};
static_assert(ConfigLimits::max_record_bytes <= Limits::max_entry_data_bytes);
static_assert(ConfigLimits::max_reason_bytes <= Limits::max_entry_data_bytes);
static_assert(ConfigLimits::history_capacity > 0);

// ---------------------------------------------------------------------------------------------
// Records and their encoding.

enum class ConfigRecordKind : std::uint8_t { prepare = 1, commit = 2, abort = 3 };
const char* config_record_kind_name(ConfigRecordKind kind);

struct ConfigRecord {
  ConfigRecordKind kind = ConfigRecordKind::prepare;
  std::uint64_t version = 0;     // 1..ConfigLimits::max_version
  std::string document;          // prepare only; empty otherwise
  std::vector<NodeId> required;  // prepare only: strictly increasing, no kNoNode, non-empty
  std::string reason;            // abort only; empty otherwise

  static ConfigRecord prepare(std::uint64_t version, std::string document,
                              std::vector<NodeId> required);
  static ConfigRecord commit(std::uint64_t version);
  static ConfigRecord abort(std::uint64_t version, std::string reason);

  friend bool operator==(const ConfigRecord&, const ConfigRecord&) = default;
};

// The rules above; Errc::invalid_argument names the first field that breaks one.
Status check_config_record(const ConfigRecord& record);

// Layout, little-endian: kind u8 | version u64 | document length u32, bytes |
// required count u32, ids u64 each | reason length u32, bytes. Encoding asserts a valid record.
std::string encode_config_record(const ConfigRecord& record);
// Strict: Errc::malformed naming the field and its byte offset for truncation, trailing bytes,
// an unknown kind or any broken rule. Never reads past `bytes` nor allocates more than it holds.
Result<ConfigRecord> decode_config_record(std::string_view bytes);

// Cuts `text` to at most max_reason_bytes without splitting a UTF-8 sequence, so a validator's
// long message cannot overflow a record or a message.
std::string bounded_reason(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Every member: the applied state.

// Supplied by the host (schema checks, resolvable addresses...). Must be deterministic enough
// that a reject is worth aborting for; it is called once per PREPARE staged on this member.
class ConfigValidator {
 public:
  virtual ~ConfigValidator() = default;
  virtual Status validate(std::uint64_t version, std::string_view document) = 0;
};

// A member's verdict on a PREPARE, for the host to send to the leader as a config_ack message
// (`ok` false -> reject, `reason` -> payload).
struct ConfigAck {
  std::uint64_t version = 0;
  bool ok = false;
  std::string reason;  // empty when ok; at most max_reason_bytes

  friend bool operator==(const ConfigAck&, const ConfigAck&) = default;
};

// What applying one record did. Versions are 0 when nothing of the kind happened.
struct ConfigEffects {
  std::optional<ConfigAck> ack;  // send to the leader: this member is required by the PREPARE
  std::uint64_t staged = 0;      // a PREPARE was staged
  std::uint64_t activated = 0;   // a COMMIT activated this version
  std::uint64_t dropped = 0;     // an ABORT dropped this version
  bool ignored = false;          // the record was ignored and counted
  std::uint64_t version = 0;     // the record's version (0 if it did not decode)
  std::string reason;            // dropped: the ABORT's reason; ignored: why
};

struct StagedConfig {
  std::uint64_t version = 0;
  std::string document;
  std::vector<NodeId> required;
  Index index = 0;             // log index of the PREPARE
  bool locally_valid = false;  // what this member's validator said
  std::string local_reason;    // the validator's message when it rejected

  friend bool operator==(const StagedConfig&, const StagedConfig&) = default;
};

struct ConfigHistoryEntry {
  std::uint64_t version = 0;
  std::string document;
  Index index = 0;  // log index of the COMMIT that activated it

  friend bool operator==(const ConfigHistoryEntry&, const ConfigHistoryEntry&) = default;
};

// Records that were ignored, by cause. None happens with a correct leader except across a
// leader change (stale prepares, unmatched aborts); a steady climb deserves a look.
struct ConfigStateCounters {
  std::uint64_t stale_prepares = 0;       // version not above every version seen
  std::uint64_t prepares_while_open = 0;  // another transaction was staged
  std::uint64_t unmatched_commits = 0;    // COMMIT of a version that is not staged
  std::uint64_t unmatched_aborts = 0;     // ABORT of a version that is not staged
  std::uint64_t invalid_records = 0;      // undecodable, or breaking check_config_record

  std::uint64_t total() const {
    return stale_prepares + prepares_while_open + unmatched_commits + unmatched_aborts +
           invalid_records;
  }
};

class ConfigState {
 public:
  // Applies one committed record at log `index`. Invariant (the host's): indexes strictly
  // increase. An invalid record is ignored and counted, never trusted.
  ConfigEffects apply(Index index, const ConfigRecord& record, ConfigValidator& validator,
                      NodeId self);
  // Same, from a config_txn log entry; data that does not decode is ignored and counted.
  ConfigEffects apply(const Entry& entry, ConfigValidator& validator, NodeId self);

  std::uint64_t active_version() const;  // 0 before the first activation
  const std::string& active_document() const;
  const std::optional<StagedConfig>& staged() const { return staged_; }
  // Oldest first; the newest is the active version. Invariant: versions strictly increase.
  const std::deque<ConfigHistoryEntry>& history() const { return history_; }
  const ConfigHistoryEntry* find_in_history(std::uint64_t version) const;
  std::uint64_t highest_version_seen() const { return highest_version_seen_; }
  Index last_index() const { return last_index_; }
  const ConfigStateCounters& counters() const { return counters_; }

  // The whole state, for snapshots (engine/host): a node restored from it holds what one that
  // applied the same log prefix holds. Layout (little-endian): format u8 (1) | highest version
  // seen u64 | last index u64 | the five counters u64 | history count u32 (<= capacity), each:
  // version u64, index u64, document (u32 length, bytes) | staged u8 (0/1), if 1: version u64,
  // index u64, locally valid u8, document, required count u32 and ids u64, local reason.
  std::string encode() const;
  // Strict: Errc::malformed naming the field and byte offset, for truncation, trailing bytes,
  // limits, or a state breaking the invariants below.
  static Result<ConfigState> decode(std::string_view bytes);

 private:
  ConfigEffects apply_prepare(Index index, const ConfigRecord& record,
                              ConfigValidator& validator, NodeId self);
  ConfigEffects apply_commit(Index index, const ConfigRecord& record);
  ConfigEffects apply_abort(const ConfigRecord& record);
  void check_invariants() const;

  // Invariant: active version = history_.back().version, and active < staged <= highest seen.
  std::deque<ConfigHistoryEntry> history_;
  std::optional<StagedConfig> staged_;
  std::uint64_t highest_version_seen_ = 0;  // over every valid PREPARE applied, ignored or not
  Index last_index_ = 0;
  ConfigStateCounters counters_;
};

// ---------------------------------------------------------------------------------------------
// The leader: begins transactions and decides them. Only meaningful on the current leader; the
// host calls reset() (or makes a new one) when leadership is lost, and decide() after every
// apply, ack and tick, proposing what it returns.

class ConfigCoordinator {
 public:
  // `deadline_ms`: how long after begin() the required members have to ack before ABORT.
  explicit ConfigCoordinator(std::uint64_t deadline_ms);

  // Returns the PREPARE to propose. Errors, checked in this order: Errc::invalid_argument (empty
  // or oversized document, empty required set, node 0 or too many members); Errc::conflict when
  // `if_version` differs from the active version (checked before busy because it is final: the
  // active version never goes back); Errc::busy while a transaction is open, here or staged.
  // `required` may be in any order, with duplicates; the record holds it sorted and unique.
  Result<ConfigRecord> begin(const ConfigState& state, std::optional<std::uint64_t> if_version,
                             std::string document, std::vector<NodeId> required,
                             std::uint64_t now_ms);
  // A new transaction (new version) carrying the document of `to_version` from the history;
  // Errc::invalid_argument naming the version if the history does not hold it.
  Result<ConfigRecord> rollback(const ConfigState& state, std::uint64_t to_version,
                                std::optional<std::uint64_t> if_version,
                                std::vector<NodeId> required, std::uint64_t now_ms);
  // A member's config_ack. Returns false (and counts it) unless it is the verdict of a required
  // member on the open, undecided version. A reject is final: a later ok does not undo it.
  bool on_ack(NodeId from, std::uint64_t version, bool ok, std::string reason);
  // The one COMMIT or ABORT to propose now, if any; each is returned once.
  std::optional<ConfigRecord> decide(const ConfigState& state, std::uint64_t now_ms);
  // Leadership lost: forget everything in flight.
  void reset();

  std::uint64_t open_version() const { return txn_ ? txn_->prepare.version : 0; }
  bool decided() const { return txn_ && txn_->decided; }
  std::uint64_t deadline_ms() const { return deadline_ms_; }
  std::uint64_t ignored_acks() const { return ignored_acks_; }

 private:
  struct Verdict {
    bool ok = false;
    std::string reason;
  };
  struct Txn {
    ConfigRecord prepare;
    std::uint64_t deadline_at_ms = 0;
    std::map<NodeId, Verdict> verdicts;  // required members only
    bool decided = false;                // COMMIT or ABORT proposed
  };

  void observe_time(std::uint64_t now_ms);
  void forget_finished(const ConfigState& state);
  bool staged_is_ours(const ConfigState& state) const;
  std::optional<ConfigRecord> abort_foreign(const ConfigState& state);
  std::optional<ConfigRecord> decide_own(const ConfigState& state, std::uint64_t now_ms);
  std::optional<ConfigRecord> settle(ConfigRecord record);

  std::uint64_t deadline_ms_;
  std::optional<Txn> txn_;
  std::uint64_t foreign_abort_version_ = 0;  // a foreign staged version we proposed to abort
  std::uint64_t last_now_ms_ = 0;            // Invariant: time never goes back
  std::uint64_t ignored_acks_ = 0;
};

}  // namespace anya::engine

// The simulator's proof of exactly-once writes and UTXO reservation safety: a checker fed every
// entry every replica applies (NodeCore's ApplyObserver), every snapshot a replica restores,
// every write acknowledged to a client, and each live replica's state at the end of the run.
//
// It holds an independent reference model of the rules in engine/kv/bitcoin.hpp (reservations)
// and engine/kv/kv.hpp (client sessions), written from their specification, not by calling
// KvStore. The model is fed the committed log in index order: the first replica to apply an
// index hands it the entry; every later application of that index, on any replica, is compared
// with what the model holds there. The checks:
//
//   exactly-once   a (client id, seq) is applied non-replayed (any outcome but expired, with
//                  KvResult::replayed false) at one log index at most, across every replica
//                  and the whole run.
//   sessions       every replica computes, at every index, the outcome the model computes for
//                  a session open (ok, its own index as the new client id) and for a session
//                  request (replayed, expired, or applied).
//   reservations   every replica computes, at every index, the outcome the model computes
//                  (outcome, revision, replayed), and after a UTXO command holds the record the
//                  model holds for that outpoint: never two owners of one outpoint at one log
//                  position; a spent outpoint is never reserved, released or spent again.
//   log agreement  every replica applies the same bytes at an index; a replica never applies
//                  an index the model went past without seeing it.
//   acknowledged   a session write a client was told succeeded at revision r is, at index r,
//                  that client's command with that seq and an ok first outcome (an open a
//                  client was told gave it client id r is the open applied at r); every replica
//                  applying r applies it; a snapshot restored at revision s (installed from a
//                  leader, or the node's own on restart) holds the model's records at s; at the
//                  end, every live replica's outpoints equal the model's at its revision and its
//                  log, where it still holds an acknowledged index, holds the same command.
//
// The session rule (engine/kv/kv.hpp): only a SessionOpen creates a session, named by the index
// of its entry; a request for a session the store does not hold is expired, whatever its seq.
// The store forgets a session idle for kSessionIdleMs by the proposers' clocks, or the least
// recently used when an open finds max_sessions (which the simulator's few clients never
// reach). The model does not guess when: it accepts a replica's "expired" for a session it
// holds only if that session was idle by the highest proposer clock the log has carried so far,
// or had max_sessions - 1 more recently used sessions beside it at some later open, and forgets
// it then. A session the store forgot and then applies a request for (re-opened, as a late
// retry once did) is a session mismatch, and an exactly-once violation if that request had
// applied before.
//
// Deterministic: ordered containers only; the data hash is FNV-1a, not std::hash.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/kv/command.hpp"
#include "engine/kv/kv.hpp"
#include "engine/log/raft_log.hpp"

namespace anya::sim {

// What the records workload did and what the checker compared, per run (RunStats::records),
// summed over seeds by the swarm.
struct RecordStats {
  // Client sessions (the KV and UTXO clients): writes begun, attempts after the first with the
  // same (client id, seq), replies marked replayed (a retry answered with its first outcome),
  // replies saying the session expired (treated as an unknown outcome).
  std::uint64_t sessions_opened = 0;  // opens answered ok (before a client's first write)
  std::uint64_t session_writes = 0;
  std::uint64_t session_retries = 0;
  std::uint64_t session_replays = 0;
  std::uint64_t session_expired = 0;
  // UTXO requests by their final reply: reserve ok (renewals included), release ok, spend ok,
  // refused (conflict or not_found), given up with the outcome unknown.
  std::uint64_t utxo_reserved = 0;
  std::uint64_t utxo_released = 0;
  std::uint64_t utxo_spent = 0;
  std::uint64_t utxo_refused = 0;
  std::uint64_t utxo_unknown = 0;
  // The checker: applications compared with the model, session applications checked for
  // exactly-once, UTXO applications checked against the model's record, acknowledgements
  // checked, snapshots compared with the model, live replicas compared at the end.
  std::uint64_t checked_entries = 0;
  std::uint64_t checked_sessions = 0;
  std::uint64_t checked_utxo = 0;
  std::uint64_t checked_acks = 0;
  std::uint64_t checked_snapshots = 0;
  std::uint64_t checked_final_replicas = 0;

  void add(const RecordStats& other);
  std::string describe() const;  // one line, for anya-sim's run and swarm summaries
};

class RecordsChecker {
 public:
  // `max_sessions`: the stores' KvLimits::max_sessions.
  explicit RecordsChecker(std::size_t max_sessions = engine::kMaxSessions)
      : max_sessions_(max_sessions) {
    ANYA_ASSERT(max_sessions_ >= 1);
  }

  // Replica `node` applied the normal entry `entry`, computed `result`, and now holds `kv`.
  void on_applied(engine::NodeId node, const engine::Entry& entry,
                  const engine::KvResult& result, const engine::KvStore& kv);
  // Replica `node` replaced its state with a snapshot at kv.revision().
  void on_restored(engine::NodeId node, const engine::KvStore& kv);
  // A client was told its session write `request` succeeded at `revision`, or its session open
  // `request` gave it client id `revision`. The request's now_ms (command and session) may
  // differ from the applied copy's: each attempt is stamped by the node it reached.
  void on_acknowledged(engine::NodeId node, const engine::Command& request,
                       engine::Index revision);
  // End of the run: live replica `node`'s state and log.
  void check_final(engine::NodeId node, const engine::KvStore& kv, const engine::RaftLog& log);

  // The first violation found and not yet taken, then nothing until the next one.
  std::optional<std::string> take_violation();
  // The checker's counts (the checked_* fields; the rest stay 0).
  const RecordStats& counts() const { return counts_; }

 private:
  // An outpoint in the model, as of some index. Free outpoints have no record in the store.
  struct Record {
    enum class State : std::uint8_t { free, reserved, spent };
    State state = State::free;
    std::string owner;
    std::uint64_t expires_at_ms = 0;  // reserved only
    engine::Index changed_at = 0;     // the index that made it so (the key's mod revision)
    std::string describe() const;
  };
  // What the model holds for one applied index.
  struct Slot {
    std::uint64_t data_hash = 0;
    bool session = false;            // a request in a session
    bool open = false;               // a session open
    std::uint64_t client_id = 0;     // session only
    std::uint64_t seq = 0;           // session only
    std::optional<engine::UtxoCommand> utxo;  // a UTXO command, session or not
    engine::KvOutcome outcome = engine::KvOutcome::ok;  // what every replica must compute
    engine::Index revision = 0;
    bool replayed = false;
    std::string describe;            // the command, for messages
    std::string request;             // what was asked, whatever the clocks (fingerprint())
  };
  struct Session {
    std::uint64_t max_seq = 0;
    std::uint64_t last_used_ms = 0;  // the latest proposer clock of its open and fresh requests
    engine::Index last_used_at = 0;  // the index of its open or latest fresh request
    // An open met max_sessions - 1 more recently used sessions: the store may have evicted it.
    bool evictable = false;
    std::map<std::uint64_t, std::pair<engine::KvOutcome, engine::Index>> outcomes;  // by seq
  };

  Slot model_apply(const engine::Entry& entry, const engine::KvResult& first);
  void model_open(Slot& slot, const engine::SessionOpen& open, engine::Index index,
                  const engine::KvResult& first);
  void model_session(Slot& slot, engine::Command& command, engine::Index index,
                     const engine::KvResult& first);
  void forget_session(std::map<std::uint64_t, Session>::iterator session);
  // Applies a UTXO command to the model's outpoints; the outcome and revision it decides.
  std::pair<engine::KvOutcome, engine::Index> model_utxo(const engine::UtxoCommand& command,
                                                         engine::Index index);
  Record record_at(const std::string& key, engine::Index revision) const;
  void check_exactly_once(engine::NodeId node, const Slot& slot, engine::Index index,
                          const engine::KvResult& result);
  void check_outcome(engine::NodeId node, const Slot& slot, engine::Index index,
                     const engine::KvResult& result);
  // The replica's record for `key` (as held in `kv`) equals the model's at `revision`.
  void check_record(engine::NodeId node, const std::string& key, const engine::KvStore& kv,
                    engine::Index revision, const std::string& when);
  void check_all_records(engine::NodeId node, const engine::KvStore& kv,
                         const std::string& when);
  void fail(std::string what);

  std::size_t max_sessions_;
  engine::Index model_index_ = 0;  // the highest index the model has applied
  // The highest proposer clock a session open or request carried.
  std::uint64_t max_session_now_ms_ = 0;
  std::map<engine::Index, Slot> slots_;
  // Each outpoint key's history: the record from each index that changed it.
  std::map<std::string, std::map<engine::Index, Record>> outpoints_;
  // The sessions the store may hold (a superset of what it holds: the model forgets one only when
  // a replica answers expired for it), by client id; and their ids by last use.
  std::map<std::uint64_t, Session> sessions_;
  std::map<engine::Index, std::uint64_t> session_order_;  // Invariant: mirrors sessions_
  // Exactly-once: the one index each (client id, seq) was applied at, non-replayed.
  std::map<std::pair<std::uint64_t, std::uint64_t>, engine::Index> applied_at_;
  std::set<engine::Index> acknowledged_;
  std::optional<std::string> violation_;
  bool reported_ = false;  // one violation per run: the first is the one that matters
  RecordStats counts_;
};

}  // namespace anya::sim

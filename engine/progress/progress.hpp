// What the leader knows of each follower's log, and the flow control of appends to it.
// Depends on quorum math only; knows nothing of roles, messages or membership changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/types.hpp"
#include "engine/quorum/quorum.hpp"

namespace anya::engine {

// A bounded window of appends in flight to one follower, by the last index each carried.
// At the limit the leader stops sending until a response frees a slot.
class Inflights {
 public:
  explicit Inflights(std::size_t capacity) : capacity_(capacity) { ANYA_ASSERT(capacity > 0); }
  void add(Index last_index);
  void free_le(Index index);  // an ack for `index` frees every append up to it
  void free_first();          // a heartbeat response frees one slot, to keep probing alive
  void reset() { window_.clear(); }
  bool full() const { return window_.size() >= capacity_; }
  std::size_t count() const { return window_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::vector<Index> window_;  // Invariant: increasing, size <= capacity_
};

enum class ProgressState {
  probe,      // unsure where the follower's log matches: one append at a time
  replicate,  // matching: stream appends optimistically, bounded by the inflight window
  // The follower needs entries the leader has compacted away: a snapshot was sent. Paused until
  // the follower answers (or the leader's timeout gives up on it), like etcd's StateSnapshot.
  snapshot,
};
const char* progress_state_name(ProgressState state);

struct Progress {
  explicit Progress(std::size_t max_inflight) : inflights(max_inflight) {}

  Index match = 0;  // highest index known to be on the follower. Invariant: match < next
  Index next = 1;   // next index to send
  ProgressState state = ProgressState::probe;
  bool probe_sent = false;     // probe: an append is out; wait for an answer or a heartbeat ack
  Index pending_snapshot = 0;  // snapshot state: the index of the snapshot sent
  std::uint64_t snapshot_sent_ms = 0;  // snapshot state: when it was sent
  std::uint64_t last_active_ms = 0;  // when the follower last answered (CheckQuorum)
  bool healthy = true;               // as the follower last reported (health-gated leadership)
  // The follower's chain view as its latest response reported it (none: it reported none, or
  // has not answered this leader yet). Chain-gated leadership; see Raft.
  std::optional<ChainView> chain_view;
  // Leader, this term: the highest heartbeat round the follower answered (ReadIndex, leases),
  // and the round that was current when `match` last rose. A heartbeat answer for a later round
  // was sent by the follower after it acknowledged `match`, so one that reports a shorter log
  // proves the follower lost entries it had acknowledged.
  std::uint64_t acked_round = 0;
  std::uint64_t match_round = 0;
  Inflights inflights;

  void become_probe();
  void become_replicate();
  // A snapshot covering up to `index` was sent at `now_ms`.
  void become_snapshot(Index index, std::uint64_t now_ms);
  // A successful append response up to `index`. Returns false if it told us nothing new.
  bool maybe_update(Index index);
  // After sending entries up to `last_index` in replicate state.
  void optimistic_update(Index last_index);
  // The follower lost acknowledged entries: its log now ends at `last_index` < match. Move match
  // back (what it had acknowledged is gone) and probe from there.
  void regress_to(Index last_index);
  // A rejection of the append at `rejected`; `hint` is the follower's guess of its match.
  // Returns false for a stale rejection (one that no longer describes what we sent).
  bool maybe_decrease_to(Index rejected, Index hint);
  bool is_paused() const;
  std::string describe() const;
};

// The set of voters and learners and a Progress for each, plus the votes of an election.
class ProgressTracker {
 public:
  ProgressTracker(std::size_t max_inflight) : max_inflight_(max_inflight) {}

  void reset_config(const JointConfig& voters, const std::set<NodeId>& learners,
                    Index next_index);
  const JointConfig& voters() const { return voters_; }
  const std::set<NodeId>& learners() const { return learners_; }
  bool is_voter(NodeId id) const { return voters_.contains(id); }
  bool is_learner(NodeId id) const { return learners_.count(id) != 0; }
  std::set<NodeId> members() const;

  Progress& at(NodeId id);
  const Progress& at(NodeId id) const;
  bool has(NodeId id) const { return progress_.count(id) != 0; }
  std::map<NodeId, Progress>& all() { return progress_; }
  const std::map<NodeId, Progress>& all() const { return progress_; }

  // The highest index a quorum of voters has (by match), under the joint rule.
  Index committed() const;
  // CheckQuorum: do the voters heard from within the last `window_ms` form a quorum?
  // `self` always counts.
  bool quorum_active(NodeId self, std::uint64_t now_ms, std::uint64_t window_ms) const;
  // The highest chain height a quorum of voters holds, from the views the followers reported
  // and `self_view` for `self` (whose own Progress is not where its view lives). A voter with no
  // view holds nothing; nullopt when fewer than a quorum of voters have a view.
  std::optional<std::uint64_t> chain_quorum_height(
      NodeId self, const std::optional<ChainView>& self_view) const;

  void reset_votes() { votes_.clear(); }
  void record_vote(NodeId id, bool granted);
  VoteResult tally() const { return voters_.vote_result(votes_); }
  const std::map<NodeId, bool>& votes() const { return votes_; }

 private:
  std::size_t max_inflight_;
  JointConfig voters_;
  std::set<NodeId> learners_;       // Invariant: disjoint from voters
  std::map<NodeId, Progress> progress_;  // one per voter and learner
  std::map<NodeId, bool> votes_;
};

}  // namespace anya::engine

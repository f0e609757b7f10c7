// The Raft state machine of one node: roles, elections (with PreVote), CheckQuorum, leader
// stickiness, log replication with fast back-off, commitment, leadership transfer, learners.
//
// Pure: time comes in as `now_ms` (this node's monotonic clock), randomness from a Prng seeded
// by the host, messages in as arguments. Outputs are collected into a Ready batch:
//   1. hard state and entries to persist,
//   2. messages that may leave only after (1) is durable,
//   3. committed (and durable) entries to apply.
// The host calls ready(), does the I/O in that order, then advance(). engine/host does exactly
// that; nothing else may reorder it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/fault_hooks.hpp"
#include "engine/base/prng.hpp"
#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/log/raft_log.hpp"
#include "engine/progress/progress.hpp"
#include "engine/progress/liveness.hpp"
#include "engine/raft/membership.hpp"
#include "engine/raft/snapshot.hpp"

namespace anya::engine {

struct RaftConfig {
  NodeId id = kNoNode;
  // Messages carrying another cluster id are refused and counted (0: do not check).
  std::uint64_t cluster_id = 0;
  // The bootstrap configuration. Membership changes in the log replace it; a node joining an
  // existing cluster starts with both empty and learns the configuration from the leader.
  std::set<NodeId> voters;
  std::set<NodeId> learners;  // non-voting members: receive the log, never count or campaign
  std::map<NodeId, std::string> addresses;
  std::uint64_t heartbeat_interval_ms = 50;
  // The election timeout is drawn uniformly from [election_timeout_ms, election_timeout_ms +
  // election_jitter_ms); 0 jitter means election_timeout_ms, the paper's [T, 2T). A narrower
  // range detects a dead leader sooner on average; it needs to stay well above a vote's round
  // trip (network plus fsync) for split votes to stay rare.
  std::uint64_t election_timeout_ms = 300;
  std::uint64_t election_jitter_ms = 0;
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t max_inflight_appends = 256;     // per follower, in replicate state
  std::size_t max_append_bytes = 1u << 20;    // data bytes per append message (soft limit)
  std::size_t max_apply_batch = 1024;         // committed entries handed out per Ready
  // Used by the host (engine/host), not by Raft itself: take a snapshot of the state machine
  // every `snapshot_entries` applied entries (0: never), then compact the log up to
  // `snapshot_keep_entries` entries below it, so that a follower a little behind still catches
  // up from the log rather than from a whole snapshot. At most kMaxSnapshotKeepEntries.
  std::uint64_t snapshot_entries = 0;
  std::uint64_t snapshot_keep_entries = 256;
  std::uint64_t random_seed = 1;
  // Leader leases (lease_until_ms). Off: no lease is ever held, and nothing below applies. On:
  // a node grants no vote and starts no election (except one a leadership transfer asked for)
  // within election_timeout_ms of last hearing its leader, nor within election_timeout_ms of
  // starting; a leader that has sent timeout_now holds no lease for the rest of its term.
  bool leases = false;
  // The bound on how far any member's clock rate may stray from true time, in parts per million
  // (50'000: 5 % fast or slow). Leases are only as safe as this bound; see lease_duration_ms().
  std::uint32_t max_clock_drift_ppm = 50'000;
  // Chain-gated leadership (Raft::set_chain_view). A node is behind when a quorum view of the
  // chain exists and its own height is unknown or more than this many blocks below the height a
  // quorum of voters holds. A behind node never campaigns, is never a transfer target, gets no
  // vote from a voter whose own view is more than this far ahead, and as leader hands leadership
  // to a voter that is not behind. Until hosts set chain views nothing here applies. At most
  // kMaxBlocksBehind.
  std::uint64_t max_blocks_behind = 2;
  // Simulator fault hooks (see base/fault_hooks.hpp); null in production. Not owned.
  FaultHooks* fault_hooks = nullptr;

  Status validate() const;
};

inline constexpr std::uint64_t kMaxSnapshotKeepEntries = 1u << 20;
// Above this a clock is broken, not drifting: leases would be too short to be of use.
inline constexpr std::uint32_t kMaxClockDriftPpm = 500'000;
// A follower trusts the quorum height its leader last sent for this many election timeouts.
// Past that (no leader heard for a while) it judges itself by its own view alone: were every
// backend to go dark while the leader died, a remembered height would otherwise keep every node
// "behind" and the cluster leaderless until a backend came back.
inline constexpr std::uint64_t kChainQuorumValidTimeouts = 3;

// Is `height` more than `max_blocks_behind` below `quorum_height`? (Written so that nothing
// wraps: heights are at most Limits::max_chain_height.)
inline bool height_behind(std::uint64_t height, std::uint64_t quorum_height,
                          std::uint64_t max_blocks_behind) {
  return quorum_height > max_blocks_behind && height < quorum_height - max_blocks_behind;
}

// Heartbeat rounds whose send times a leader remembers (leases look them up); older rounds
// are forgotten, which only shortens a lease.
inline constexpr std::size_t kMaxRememberedRounds = 1024;
// The failure detector: answers in a row a down member needs to count as reachable again.
inline constexpr std::uint32_t kLivenessRise = 2;

// How long a lease lasts on the leader's clock, counted from when it sent the heartbeat round a
// quorum answered. A voter that answered refuses other candidates for election_timeout_ms on
// its own clock, which is at least election_timeout_ms / (1 + d) of true time; the leader's
// lease_duration_ms on its clock is at most lease_duration_ms / (1 - d) of true time. So
// duration = election_timeout_ms * (1 - d) / (1 + d), less 1 ms for rounding to milliseconds.
std::uint64_t lease_duration_ms(std::uint64_t election_timeout_ms, std::uint32_t drift_ppm);

// Durable state handed back on restart.
struct RestoredState {
  HardState hard_state;
  // Contiguous; from index 1 without a snapshot, else from at most snapshot index + 1 (entries
  // at or below the snapshot's index may remain from before compaction; they are ignored).
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;  // the latest saved, if any
};

struct Ready {
  // A snapshot installed from the leader: persist it before the entries (the log continues
  // after it) and restore the state machine from it before applying anything.
  std::optional<Snapshot> snapshot;
  std::optional<HardState> hard_state;   // persist if set
  std::vector<Entry> entries;            // persist, replacing any stored entry at their indexes
  std::vector<Message> messages;         // send only once the above is durable
  std::vector<Entry> committed_entries;  // apply in order; all are committed and durable

  bool empty() const {
    return !snapshot && !hard_state && entries.empty() && messages.empty() &&
           committed_entries.empty();
  }
};

// Counters for operators and tests; never used for decisions.
struct RaftStats {
  std::uint64_t elections_started = 0;  // real elections (not pre-votes)
  std::uint64_t pre_votes_started = 0;
  std::uint64_t elections_won = 0;
  std::uint64_t leader_changes = 0;     // times `leader` changed to a different known node
  std::uint64_t votes_ignored_in_lease = 0;
  std::uint64_t steps_down_check_quorum = 0;
  std::uint64_t stale_messages = 0;     // lower term, dropped or answered with our term
  std::uint64_t invalid_messages = 0;   // refused: impossible term, entries out of order, ...
  std::uint64_t non_member_messages = 0;   // requests or responses from outside the membership
  std::uint64_t foreign_cluster_messages = 0;  // cluster id mismatch
  std::uint64_t invalid_conf_changes = 0;  // config_change entries that did not decode or apply
  std::uint64_t health_transfers = 0;   // leadership handed away because this node is unhealthy
  // Leadership handed away because this node was behind the chain (and healthy: a node both
  // unhealthy and behind counts under health_transfers only, so the two add up to the total).
  std::uint64_t chain_transfers = 0;
  // Election timeouts on which this voter did not campaign because it was behind the chain.
  std::uint64_t chain_campaigns_skipped = 0;
  // (Pre)votes refused because the candidate was behind this voter's own chain view.
  std::uint64_t chain_votes_refused = 0;
  std::uint64_t snapshots_sent = 0;     // leader: to followers that needed compacted entries
  // Leader: a snapshot larger than Limits::max_snapshot_payload_bytes was not sent (the follower
  // stays in probe and is retried); raise the limit or shrink the state.
  std::uint64_t snapshots_too_large = 0;
  std::uint64_t snapshots_installed = 0;  // follower: the log was replaced by a leader's snapshot
  std::uint64_t snapshots_stale = 0;      // follower: at or below our commit index, ignored
  std::uint64_t read_rounds = 0;          // leader: heartbeat rounds sent for ReadIndex
  // Leader: followers found to have lost entries they had acknowledged (a cut WAL tail, a data
  // directory restored from a backup); each went back to probing.
  std::uint64_t followers_regressed = 0;
  // Votes refused and elections not started because a leader's lease could still be in force.
  std::uint64_t lease_guarded = 0;
};

// One member as this node sees it, for operators (GET /v1/status).
struct MemberStatus {
  NodeId id = kNoNode;
  bool voter = false;
  std::string address;
  bool reachable = false;            // heard from within an election timeout (leader's view)
  std::optional<std::uint64_t> last_contact_age_ms;  // unknown unless leader (or the leader)
  // The failure detector's verdict (engine/progress/liveness.hpp): the leader's of each member,
  // a follower's of its leader; unknown for everyone else (this node cannot tell).
  Liveness liveness = Liveness::unknown;
  std::optional<std::uint64_t> rtt_ms;  // smoothed heartbeat round trip, leader's view
  std::uint64_t liveness_transitions = 0;  // reachable <-> suspect/down changes (flapping)
  Index match = 0;                   // leader's view of its log; 0 if unknown
  bool healthy = true;               // as last reported
  // The member's chain view: its own for this node; as last reported, on the leader; else
  // unknown. chain_behind: judged against chain_quorum_height() (for others: leader only).
  std::optional<ChainView> chain_view;
  bool chain_behind = false;
};

class Raft {
 public:
  Raft(const RaftConfig& config, std::uint64_t now_ms);
  Raft(const RaftConfig& config, const RestoredState& restored, std::uint64_t now_ms);

  // Inputs. `now_ms` never goes backwards.
  void tick(std::uint64_t now_ms);
  void step(const Message& message, std::uint64_t now_ms);
  // Leader only. Returns the index the entry will have if it commits. `type` is normal or
  // config_txn; membership changes go through propose_conf_change.
  Result<Index> propose(std::string data, std::uint64_t now_ms,
                        EntryType type = EntryType::normal);
  // Leader only: several entries at once, all or none (same checks as propose). Returns the
  // index of the first; the others follow it. Hosts batch client writes this way so that one
  // fsync and one append per follower carry many of them.
  Result<Index> propose_batch(std::vector<std::string> data, std::uint64_t now_ms,
                              EntryType type = EntryType::normal);
  // Leader only: one membership change at a time (see membership.hpp).
  Result<Index> propose_conf_change(const ConfChange& change, std::uint64_t now_ms);
  // The host's verdict on this node (e.g. its Bitcoin backend is not synced). An unhealthy node
  // never campaigns, and an unhealthy leader hands leadership to a healthy, caught-up voter.
  void set_healthy(bool healthy, std::uint64_t now_ms);
  // The host's view of this node's Bitcoin backend; nullopt when unknown (its probe failed). It
  // travels in this node's responses and vote requests. A node that becomes behind stops any
  // campaign of its own, and a leader that does hands leadership to a voter that is not.
  void set_chain_view(std::optional<ChainView> view, std::uint64_t now_ms);
  // Leader only: hand leadership to `target` (a voter). Proposals are refused meanwhile.
  Status transfer_leadership(NodeId target, std::uint64_t now_ms);
  // Start an election now (as if the election timeout fired), e.g. when the leader's
  // connection dropped. With PreVote this is a pre-vote, so a live leader is not disturbed.
  void campaign_now(std::uint64_t now_ms);
  // The host saw the leader's process go away (its connection reset or closed). Stop honouring
  // its lease (leader stickiness), so that a candidate may win this node's vote without waiting
  // out the election timeout. Safety does not depend on the lease; only disruption does, and
  // PreVote still refuses a candidate whose log is behind.
  void leader_unreachable(std::uint64_t now_ms);

  // ReadIndex (Raft thesis §6.4). Leader only: send a heartbeat round now and return its number.
  // Once confirmed_round() reaches it, a quorum of voters still followed this node in this term
  // after the call, so no other leader had committed anything by then. A single-voter cluster
  // confirms its rounds at once.
  std::uint64_t request_read_round(std::uint64_t now_ms);
  // Leader: the highest heartbeat round of this term answered by a quorum of voters (this node
  // counts for the current round). 0 when none, or not leading.
  std::uint64_t confirmed_round() const;
  // Leader: has an entry of its own term committed? Until then its commit index may be behind
  // what earlier leaders committed, so it is no read index.
  bool committed_in_term() const;
  // Leader with leases on: the instant (this node's clock) before which no other node can
  // become leader, by the rule of RaftConfig::leases and max_clock_drift_ppm. 0: no lease (not
  // leading, leases off, no round answered by a quorum yet, or timeout_now sent this term).
  std::uint64_t lease_until_ms() const;
  bool lease_revoked() const { return lease_revoked_; }
  // Follower: the leader's commit index as last heard in this term (0 if none). Leader: its own.
  Index leader_commit() const;
  // Followers found to have lost acknowledged entries since the last call (see RaftStats).
  std::vector<NodeId> take_regressed_followers();

  // Snapshots and compaction (the host's decisions). The host made a snapshot of its state as
  // of `index` (<= applied, above the previous snapshot): keep it to send to followers that
  // need compacted entries, and return it with its meta (term, membership at `index`) to store.
  const Snapshot& record_snapshot(Index index, std::string data);
  // Drop log entries up to `index` (<= the recorded snapshot's index, and durable).
  void compact(Index index);
  // The latest snapshot recorded, installed or restored; nullopt if none.
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }

  // Outputs.
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& ready);

  // Observation.
  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return leader_; }
  Role role() const;
  bool is_leader() const { return role_ == Role::leader; }
  // May this node campaign? A voter of its latest configuration may; so may a node whose own
  // removal is not committed yet (Raft thesis §4.2.2): if the leader that appended the removal
  // is gone, the remaining voters of the old configuration may need this node's log and lead.
  bool promotable() const;
  bool healthy() const { return healthy_; }
  const std::optional<ChainView>& chain_view() const { return chain_view_; }
  std::uint64_t max_blocks_behind() const { return max_blocks_behind_; }
  // The chain height a quorum of voters holds (nullopt: no quorum view known). Leader: from its
  // own view and what its voters reported this term. Others: as the leader's latest heartbeat
  // said, for kChainQuorumValidTimeouts election timeouts after it came.
  std::optional<std::uint64_t> chain_quorum_height() const;
  // A quorum view is known and this node's height is unknown or more than max_blocks_behind
  // below it. Such a node does not campaign and, as leader, hands leadership on.
  bool chain_behind() const;
  const Membership& membership() const { return membership_history_.back().second; }
  // Leader: voters heard within an election timeout form a quorum. Others: a leader was heard
  // within an election timeout. A node without quorum makes no decision that needs one.
  bool has_quorum() const;
  std::vector<MemberStatus> members() const;
  const RaftLog& log() const { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  const RaftStats& stats() const { return stats_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  // The hard state as last acknowledged durable by the host (advance()).
  const HardState& persisted_hard_state() const { return persisted_hard_state_; }
  NodeId transfer_target() const { return transfer_target_; }
  std::uint64_t election_deadline_ms() const { return election_deadline_ms_; }
  // The earliest local time at which tick() can change anything (a heartbeat, a CheckQuorum
  // step-down, an election, the end of a transfer). A host that skips idle time, such as the
  // simulator, sleeps until then; ticking earlier is harmless.
  std::uint64_t next_deadline_ms() const;

 private:
  enum class CampaignKind { pre_election, election, transfer };

  void init(const RaftConfig& config, std::uint64_t now_ms);
  void set_now(std::uint64_t now_ms);
  void reset_election_timer();
  bool in_lease() const;

  // Leases on, not leading: could a leader still hold a lease that counts on this node?
  bool lease_guard() const;
  void send_timeout_now(NodeId to);

  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset_term(Term term);
  void set_leader(NodeId leader);
  // The failure detector heard from `id` now (a response, or a message from the leader).
  void heard_from(NodeId id, std::optional<std::uint64_t> rtt_ms);
  void campaign(CampaignKind kind);
  void poll(NodeId from, MessageType type, bool granted);

  bool step_term(const Message& m);  // false: the message is done with
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void handle_snapshot(const Message& m);

  void tick_election();
  void tick_leader();
  // When the voters heard from recently stop forming a quorum, if nothing more is heard.
  std::uint64_t quorum_expiry_ms() const;

  void send(Message m);
  bool send_append(NodeId to, bool send_if_empty);
  bool send_snapshot(NodeId to);
  Membership membership_at(Index index) const;
  void send_heartbeat(NodeId to, std::optional<std::uint64_t> chain_quorum_height);
  void broadcast_append();
  void broadcast_heartbeat();
  void append_entries(std::vector<Entry> entries);
  bool maybe_commit();
  void abort_transfer();
  // Point the progress tracker at the current membership (new members start at the log's end).
  void reset_tracker();
  // Recompute the membership from the log from `from` on (after appends or truncations).
  void refresh_membership(Index from);
  void maybe_step_down_if_removed();
  // Leader, unhealthy or behind the chain: hand leadership to the best voter that is neither.
  void maybe_transfer_for_gating();
  // Would `id`'s reported view make it behind a quorum holding `quorum_height`?
  bool member_chain_behind(NodeId id, std::optional<std::uint64_t> quorum_height) const;
  // A (pre)vote request from a candidate this voter's own chain view says is behind.
  bool refuses_for_chain(const Message& m) const;
  bool accepts_from(const Message& m);

  // Configuration.
  NodeId id_ = kNoNode;
  std::uint64_t cluster_id_ = 0;
  std::uint64_t heartbeat_interval_ms_ = 0;
  std::uint64_t election_timeout_ms_ = 0;
  std::uint64_t election_jitter_ms_ = 0;  // Invariant: > 0
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  bool leases_ = false;
  std::uint64_t lease_duration_ms_ = 0;
  std::size_t max_append_bytes_ = 0;
  std::size_t max_apply_batch_ = 0;
  FaultHooks* hooks_ = nullptr;

  // Durable (with the log): term_, vote_, log_.committed().
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  RaftLog log_;

  // Membership by log index; [0] is the bootstrap configuration, or the one in effect at the
  // compaction point (from the snapshot, or kept when the log was compacted). Derived from the
  // log. Invariant: [0].first <= log_.snapshot_index() whenever the log is compacted.
  std::vector<std::pair<Index, Membership>> membership_history_;
  // The latest snapshot (recorded by the host, installed or restored). Invariant: its index >=
  // log_.snapshot_index(), so every compacted entry is covered by it.
  std::optional<Snapshot> snapshot_;
  std::optional<Snapshot> pending_install_;  // installed, not yet handed out in a Ready
  bool healthy_ = true;
  // The failure detector: a leader's view of each member, a follower's of its leader (cleared
  // when leadership changes: what one leader saw says nothing of the next term's paths).
  LivenessConfig liveness_config_;
  std::map<NodeId, PeerLiveness> liveness_;
  std::optional<ChainView> chain_view_;  // as the host last set it
  std::uint64_t max_blocks_behind_ = 0;

  // Volatile.
  Role role_ = Role::follower;  // never Role::learner: that is reported by role()
  NodeId leader_ = kNoNode;
  ProgressTracker tracker_;
  Prng rng_;
  RaftStats stats_;
  std::uint64_t now_ms_ = 0;
  std::uint64_t election_deadline_ms_ = 0;     // followers and candidates
  std::uint64_t last_leader_contact_ms_ = 0;   // stickiness: when the leader was last heard
  bool heard_from_leader_ = false;
  std::uint64_t heartbeat_due_ms_ = 0;         // leader
  std::uint64_t heartbeat_round_ = 0;          // leader, context of heartbeats
  NodeId transfer_target_ = kNoNode;           // leader, transfer in progress
  std::uint64_t transfer_deadline_ms_ = 0;
  // Leader: (round, send time) of recent heartbeat rounds, increasing; at most
  // kMaxRememberedRounds.
  std::deque<std::pair<std::uint64_t, std::uint64_t>> round_sent_ms_;
  bool lease_revoked_ = false;                 // leader: timeout_now sent this term
  // Leases: the last time a leader of the current term was heard (0: none since start or
  // since leader_unreachable), and the end of the hold after start.
  std::uint64_t lease_contact_ms_ = 0;
  bool lease_contact_ = false;
  std::uint64_t vote_hold_until_ms_ = 0;
  Index leader_commit_ = 0;                    // follower: as last heard this term
  // Not leading: the chain quorum height from the latest heartbeat, and when it came.
  std::optional<std::uint64_t> heard_chain_quorum_;
  std::uint64_t heard_chain_quorum_ms_ = 0;
  std::vector<NodeId> regressed_followers_;

  // Pending outputs.
  std::vector<Message> outbox_;
  HardState persisted_hard_state_;
  bool ready_outstanding_ = false;
};

}  // namespace anya::engine

// The node's promises to its clients, decided in pure code: what a client is told about its
// write, when and from what state a read is answered, whether the lease holds and with which
// fencing token, when a follower campaigns early because its leader's process is gone, which
// learner is promoted, and to whom leadership is handed. Production (transport/node) and the
// simulator (sim/) both drive a NodeCore, so every seed exercises exactly these decisions.
//
// A NodeCore owns the Host (engine/host) and is its state machine: the replicated KV store
// (engine/kv). Requests carry the caller's ticket and are answered by ClientReply values that
// the caller collects with take_replies() after any call, the way Raft hands out a Ready.
//
// The rules:
//   Writes   are acknowledged when the entry proposed at (index, term) applies with that term;
//            another term there means another leader's entry won and the write did not happen.
//            A write not applied within write_timeout_ms has an unknown outcome (busy).
//   Reads    linearizable (default, ReadIndex): the leader fixes a read index (its commit index,
//            once an entry of its term has committed), sends a heartbeat round after the request
//            arrived, and answers once a quorum of voters answered that round and it has applied
//            up to the read index. A leader transferring leadership, deposed, or unable to
//            confirm within read_timeout_ms refuses. lease: answered from the leader's state at
//            once while its lease holds (Raft::lease_until_ms), otherwise as linearizable.
//            serializable: from this node's state, whatever its role, marked stale_possible.
//   Lease    valid only while Raft's lease rule holds on this node's clock; the fencing token is
//            the leader's term, unique to one leadership and increasing across them.
//   Failover a follower told its leader's process is gone (peer_gone) stops honouring that
//            leader and campaigns after rank * failover_step_ms (rank: its place among the other
//            voters by id, so two followers do not split the vote), again every
//            failover_retry_ms while no leader is known, up to kMaxFailoverAttempts.
//   Members  a node added as a voter joins as a learner and is promoted once caught up.
//   Transfer without a target: the most caught-up healthy, reachable voter that is not behind
//            the Bitcoin chain (Raft::chain_behind).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/host/host.hpp"
#include "engine/kv/kv.hpp"

namespace anya::engine {

struct NodeOptions {
  std::uint64_t write_timeout_ms = 10'000;
  std::uint64_t read_timeout_ms = 5'000;
  std::size_t max_pending_writes = 65'536;  // proposed, waiting to apply
  std::size_t max_pending_reads = 65'536;
  std::size_t max_write_batch = 1024;       // entries per proposal
  // Fast failover pacing (see the header); 0 disables fast failover.
  std::uint64_t failover_step_ms = 25;
  std::uint64_t failover_retry_ms = 100;
  KvLimits kv_limits;
};

inline constexpr int kMaxFailoverAttempts = 3;

using Ticket = std::uint64_t;

struct ClientReply {
  Ticket ticket = 0;
  Status status;                  // ok, or why not (the message is for the client)
  NodeId leader = kNoNode;        // not_leader: where to go instead, if known
  // Write: the index the write took effect at (its revision). A conflict reports the key's
  // current revision here. Read: the applied index the answer reflects.
  Index revision = 0;
  std::optional<KeyValue> value;  // read, ok: the key (not_found when absent)
  bool stale_possible = false;    // a serializable read: may miss acknowledged writes
  // A write in a client session that had been applied before: its first outcome, unchanged.
  bool replayed = false;
};

struct LeaseStatus {
  NodeId holder = kNoNode;         // the leader this node knows (itself if it leads)
  std::uint64_t fencing_token = 0;  // the holder's term; 0 when no holder is known
  bool valid = false;              // this node leads and its lease holds now
  std::uint64_t valid_until_ms = 0;  // on this node's clock; 0 unless valid
  std::uint64_t remaining_ms = 0;
};

// Things worth a log line or a counter, reported once each.
struct NodeEvent {
  enum class Kind : std::uint8_t {
    follower_lost_entries,  // node: a follower that lost acknowledged entries, back to probing
    fast_failover,          // node: the gone leader; this node campaigns early
    promoted,               // node: a learner proposed for promotion to voter
  };
  Kind kind;
  NodeId node = kNoNode;
};

// Told about each applied normal entry (after the KV store applied it) and each state restored
// from a snapshot. The simulator checks replicas against each other through this.
class ApplyObserver {
 public:
  virtual ~ApplyObserver() = default;
  virtual void on_applied(const Entry& entry, const KvResult& result, const KvStore& kv) = 0;
  virtual void on_restored(const KvStore& kv, bool from_leader) = 0;
};

class NodeCore final : private StateMachinePort {
 public:
  static Result<std::unique_ptr<NodeCore>> open(const RaftConfig& raft, NodeOptions options,
                                                StoragePort& storage, NetworkPort& network,
                                                ClockPort& clock, ConfigOptions config = {},
                                                ApplyObserver* observer = nullptr);
  ~NodeCore() override;
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  // Inputs. Each settles whatever requests it decided; replies wait in take_replies().
  Status tick();
  Status receive(const Message& message);
  // Evidence that `peer`'s process is gone (its connection closed and a new one was refused),
  // not merely unreachable: the one input that lets a follower vote before the lease ends.
  Status peer_gone(NodeId peer);

  // Client requests. Writes and linearizable reads queue until flush(), so that concurrent
  // requests share one proposal and one heartbeat round.
  void submit_write(Ticket ticket, Command command);
  void submit_read(Ticket ticket, std::string key, ReadMode mode);
  Status flush();
  // Membership change: answered once the change applies. A voter joins as a learner first.
  void submit_member_add(Ticket ticket, NodeId id, std::string address, bool learner);
  void submit_member_remove(Ticket ticket, NodeId id);
  // Leader only: hand leadership to `to`, or to the best voter (see the header). Returns the
  // target.
  Result<NodeId> transfer_leadership(std::optional<NodeId> to);
  LeaseStatus lease();

  std::vector<ClientReply> take_replies();
  std::vector<NodeEvent> take_events();

  // Observation.
  Host& host() { return *host_; }
  const Host& host() const { return *host_; }
  const Raft& raft() const { return host_->raft(); }
  const KvStore& kv() const { return kv_; }
  // Member of a quorum and caught up: applied everything the leader has committed, as last
  // heard from it (a follower that lost entries is behind until the leader refills it). False
  // once the host failed.
  bool ready() const;
  // The earliest time on this node's clock at which tick() has something to decide.
  std::uint64_t next_deadline_ms() const;
  std::size_t pending_writes() const { return waiters_.size() + queued_writes_.size(); }
  std::size_t pending_reads() const { return reads_.size(); }

 private:
  struct Waiter {            // a proposed entry whose client waits for it to apply
    Ticket ticket = 0;
    Term term = 0;
    std::uint64_t deadline_ms = 0;
    bool kv = true;          // a KV command (its result is captured at apply)
    NodeId promote = kNoNode;  // a learner added as a future voter: promote once caught up
  };
  struct QueuedWrite {
    Ticket ticket = 0;
    std::string command;
  };
  struct PendingRead {
    Ticket ticket = 0;
    std::string key;
    Term term = 0;             // the leadership it was accepted in
    std::uint64_t round = 0;   // heartbeat round to be confirmed; 0: not sent yet
    Index read_index = 0;      // 0: not fixed yet (no entry of this term committed)
    std::uint64_t deadline_ms = 0;
  };

  NodeCore(NodeOptions options, ApplyObserver* observer, ClockPort& clock);

  // StateMachinePort: the KV store.
  void apply(const Entry& entry) override;
  std::string snapshot() override;
  Status restore(std::string_view data) override;
  Status check_snapshot(std::string_view data) override;

  std::uint64_t now() { return clock_.now_ms(); }
  // After every call into the host: answer what can be answered.
  Status settle(Status status);
  void settle_writes();
  void settle_reads();
  void expire(std::uint64_t now_ms);
  void try_promotions();
  void drive_failover(std::uint64_t now_ms);
  void reply_error(Ticket ticket, Status status);
  void reply_not_leader(Ticket ticket, std::string why = {});
  void serve_read(Ticket ticket, const std::string& key, bool stale_possible);
  // Proposes `change` with a waiter answering `ticket` once it applies; `promote`: a learner
  // to promote once caught up, after it does.
  void submit_conf_change(Ticket ticket, const ConfChange& change, NodeId promote);
  // A new member's id is in range and unused, and its address is not another member's.
  Status check_new_member(NodeId id, const std::string& address) const;
  std::string transfer_message() const;
  // Register waiters for `count` entries about to be proposed at the end of the log.
  void expect(const std::vector<Ticket>& tickets, bool kv, NodeId promote = kNoNode);
  void unexpect(Index first, std::size_t count);

  NodeOptions options_;
  ApplyObserver* observer_;
  ClockPort& clock_;
  std::unique_ptr<Host> host_;
  KvStore kv_;

  std::vector<QueuedWrite> queued_writes_;
  std::map<Index, Waiter> waiters_;        // by the index the entry was proposed at
  std::map<Index, KvResult> results_;      // captured at apply, for waiters only
  std::vector<PendingRead> reads_;         // in arrival order
  std::set<NodeId> pending_promotions_;    // learners to promote once caught up
  std::vector<ClientReply> replies_;
  std::vector<NodeEvent> events_;

  // Fast failover: the gone leader, the next campaign time, attempts made.
  NodeId failover_from_ = kNoNode;
  std::uint64_t failover_due_ms_ = 0;
  int failover_attempts_ = 0;
};

}  // namespace anya::engine

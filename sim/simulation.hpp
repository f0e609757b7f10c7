// One simulated run: a cluster of real engine hosts in a seeded virtual world.
//
// One thread, one event queue ordered by (virtual time, sequence number), one PRNG. Idle time is
// skipped: each node sleeps until its engine's next deadline. The run has two phases: a safety
// phase with faults (network, processes, disks, clocks, scripted scenario steps), then a liveness
// phase that heals everything and requires a leader and a new commitment on every live node
// within a bound. Checkers run after every event; the first violation ends the run and is
// reported with the seed, the event number, the nodes and what was seen.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/fault_hooks.hpp"
#include "engine/base/prng.hpp"
#include "engine/host/host.hpp"
#include "engine/invariants/invariants.hpp"
#include "engine/node/node_core.hpp"
#include "sim/clock.hpp"
#include "sim/disk.hpp"
#include "sim/linearizability.hpp"
#include "sim/network.hpp"
#include "sim/options.hpp"
#include "sim/records_checker.hpp"
#include "sim/records_workload.hpp"
#include "sim/timeline.hpp"

namespace anya::sim {

struct RunStats {
  std::uint64_t events = 0;
  std::uint64_t sim_time_us = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_dropped = 0;
  std::uint64_t crashes = 0;
  std::uint64_t restarts = 0;
  std::uint64_t pauses = 0;
  std::uint64_t partitions = 0;
  std::uint64_t clock_jumps = 0;
  std::uint64_t torn_records = 0;
  std::uint64_t disks_corrupted = 0;  // detected by checksum; the node stayed down
  std::uint64_t storage_failures = 0; // fail-stops from a failed sync
  std::uint64_t membership_changes = 0;  // proposed and accepted by a leader
  std::uint64_t config_writes = 0;       // transactions begun by a leader
  std::uint64_t config_activated = 0;    // highest configuration version activated anywhere
  std::uint64_t config_aborted = 0;      // distinct versions aborted
  // For each committed transaction: virtual ms from begin to active on every member.
  std::vector<std::uint64_t> config_converge_ms;
  // Forced crashes of a leader with its own PREPARE (or COMMIT) proposed and not yet committed:
  // proof that config-crash-prepare and config-crash-commit did what they say.
  std::uint64_t config_crashes_in_prepare = 0;
  std::uint64_t config_crashes_in_commit = 0;
  // Compare-and-set races resolved, and how each writer ended: won (its document became the
  // active one) or refused with a conflict naming the winner's version.
  std::uint64_t config_races = 0;
  std::uint64_t config_race_wins = 0;
  std::uint64_t config_race_conflicts = 0;
  // Windows with a minority of voters up (crash_voter_majority), and how many learners were
  // live at their start: none of them may help anything commit.
  std::uint64_t quorum_outages = 0;
  std::uint64_t outage_live_learners = 0;  // summed over the outages
  // At the end: learners the final leader reported reachable, caught up and with the health
  // they report (many-learners).
  std::uint64_t learners_reported = 0;
  std::uint64_t proposals = 0;
  std::uint64_t acked = 0;
  std::uint64_t leader_changes = 0;
  engine::Term max_term = 0;
  engine::Index max_commit = 0;
  std::uint64_t liveness_recovery_ms = 0;  // heal -> leader and new commit everywhere
  std::uint64_t snapshots_taken = 0;      // by hosts, every snapshot_entries applied entries
  std::uint64_t snapshots_installed = 0;  // from a leader, by followers
  std::uint64_t snapshots_restored = 0;   // on restart, from the disk
  // The KV clients (sim/workload.cpp): operations completed with a known outcome, with an
  // unknown one (timed out, or the node died), refused with a definite "did not happen"; reads
  // answered; lease reads among them; and the linearizability search's work.
  std::uint64_t kv_ops = 0;
  std::uint64_t kv_unknown = 0;
  std::uint64_t kv_refused = 0;
  std::uint64_t kv_reads = 0;
  std::uint64_t kv_lease_reads = 0;
  std::uint64_t kv_calls_while_paused = 0;  // requests that waited at a paused node
  std::uint64_t linearizability_steps = 0;
  bool linearizability_inconclusive = false;
  // Leases and fencing: instants checked with a lease held, leadership transfers begun, early
  // campaigns on a gone leader, and requests a simulated resource refused for carrying an older
  // fencing token than one it had accepted (a deposed leader acting late).
  std::uint64_t lease_checks = 0;
  std::uint64_t transfers = 0;
  std::uint64_t fast_failovers = 0;
  std::uint64_t fence_refused = 0;
  // Chain views (SimOptions::chain_block_ms): blocks mined, backend stalls and blind probes
  // begun, and leaderships that ended while their leader was behind the chain (ground truth).
  std::uint64_t chain_blocks = 0;
  std::uint64_t chain_stalls = 0;
  std::uint64_t chain_blinds = 0;
  std::uint64_t chain_handoffs = 0;
  std::uint64_t chain_behind_max_ms = 0;  // the longest any behind node kept leading
  // Client sessions, the UTXO clients and the records checker (sim/records_checker.hpp).
  RecordStats records;
};

struct RunResult {
  bool ok = true;
  std::string violation;  // the first one: invariant, event, time, nodes, what was seen
  std::uint64_t hash = 0; // rolling hash of every event: equal runs have equal hashes
  RunStats stats;
};

class Simulation {
 public:
  explicit Simulation(SimOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  RunResult run();
  // Record a timeline while running (call before run()).
  void record_timeline() { timeline_ = std::make_unique<Timeline>(); }
  const Timeline* timeline() const { return timeline_.get(); }
  const SimOptions& options() const { return options_; }

 private:
  struct Node;
  enum class EventKind : std::uint8_t {
    deliver, wakeup, restart, resume, fault, heal, propose, start_liveness, check_liveness,
    script, unflap, crash, membership, config, config_crash, config_race,
    client, client_timeout, peer_gone,
    chain_block, chain_seen, chain_restore, chain_check,
    utxo_client, utxo_timeout,
  };
  enum class FaultKind : std::uint8_t {
    crash, pause, partition, clog, clock_jump, transfer, chain_stall, count
  };
  struct Event {
    EventKind kind;
    engine::NodeId node = 0;
    std::uint64_t param = 0;  // fault kind, wakeup generation, script step, ...
    engine::Message message;
  };

  void schedule(std::uint64_t at_us, Event event);
  void dispatch(Event& event);
  void hash_event(std::uint64_t at_us, const Event& event);

  // Nodes. Ids are 1..max_id(), contiguous; nodes added later join with no configuration.
  engine::NodeId max_id() const { return static_cast<engine::NodeId>(nodes_.size()); }
  engine::NodeId add_node();
  void change_membership();
  void write_config();
  void check_config(engine::NodeId id);
  void grow_learners();
  // Forced crashes in one phase of a configuration transaction (ScriptAction::arm_config_crash).
  void arm_prepare_crash(engine::NodeId leader, std::uint64_t version);
  void arm_commit_crash(engine::NodeId leader);
  void schedule_config_crash(engine::NodeId leader, engine::Index index,
                             engine::ConfigRecordKind kind, std::uint64_t version);
  void config_crash();
  bool uncommitted_config_record(engine::NodeId id, engine::Index index,
                                 engine::ConfigRecordKind kind, std::uint64_t version) const;
  // Compare-and-set races (config_race_every_ms): param kRaceStart begins one, else a client.
  void config_race(std::uint64_t param);
  void race_attempt(std::size_t client);
  void race_conflict(std::size_t client, engine::NodeId leader, const Status& status);
  void race_finish();
  void race_note_activation(engine::NodeId id, std::uint64_t version, const std::string& doc);
  void crash_voter_majority(std::size_t step_index);
  void check_outage(engine::NodeId id);
  engine::Index majority_held_index(const std::set<engine::NodeId>& voters) const;
  bool learners_reported_ok(engine::NodeId leader);
  void check_scenario_proofs();
  // Every membership change the simulator asks of a leader goes through here (it checks the
  // change waited for an entry of the leader's term to commit).
  Result<engine::Index> conf_change(engine::NodeId leader, const engine::ConfChange& change);
  bool can_lose_for_good(engine::NodeId id) const;
  void start_node(engine::NodeId id);
  void crash_node(engine::NodeId id, std::uint32_t torn_ppm, const char* why);
  void after_node_event(engine::NodeId id);
  void schedule_wakeup(engine::NodeId id);
  bool up(engine::NodeId id) const;
  bool paused(engine::NodeId id) const;
  engine::NodeId believed_leader() const;
  engine::NodeId callable_leader() const;
  void send_from(engine::NodeId from, const engine::Message& m);
  void on_apply(engine::NodeId id, const engine::Entry& e);
  // The state machine's digest after applying index `index` must be the same on every node.
  void check_digest(engine::NodeId id, engine::Index index, std::uint64_t digest,
                    const char* how);
  // Client replies waiting at node `id`: route each to its client or proposal.
  void drain_replies(engine::NodeId id);
  void on_proposal_reply(engine::NodeId id, const engine::ClientReply& reply,
                         const std::string& data);

  // The KV clients (sim/workload.cpp).
  struct KvClient {
    // Requests begun: identifies the current one (a session open before a write is one more).
    std::uint64_t seq = 0;
    bool busy = false;
    std::size_t op = 0;             // its current operation's place in history_
    engine::NodeId target = 1;      // where it sends next (it follows leader hints)
    std::map<std::string, engine::Index> seen_revision;  // per key, for its CAS and deletes
    // Its client session: opened before its first write (and after one expired); a write takes
    // the next seq and keeps it through every retry (sim/records_workload.hpp); reads take none
    // and are not retried. Invariant: session.opening only while busy with a write.
    SessionState session;
    std::uint32_t attempt = 0;      // of its current request, 1 = the first
    bool in_flight = false;         // an attempt awaits its reply or its timeout
    bool maybe_applied = false;     // an attempt of its current write ended unknown
  };
  struct Call {                     // a request that reached a node
    std::uint32_t client = 0;
    std::uint64_t seq = 0;
    engine::Ticket ticket = 0;
    std::uint32_t attempt = 0;      // the client's attempt it is
    bool utxo = false;              // from a UTXO client (utxo_clients_), else a KV client
  };
  void client_step(std::uint32_t client);
  void client_attempt(std::uint32_t client);
  void client_reply(engine::NodeId id, const Call& call, const engine::ClientReply& reply);
  void client_timeout(std::uint64_t param);
  // A write's attempt failed: try again after `delay_ms`, or give up after the last attempt.
  void client_retry(std::uint32_t client, std::uint64_t delay_ms);
  void client_done(std::uint32_t client, std::uint64_t next_in_ms);
  void submit_call(engine::NodeId id, const Call& call);
  // The reply to KV client `client`'s session open.
  void client_opened(engine::NodeId id, std::uint32_t client, const engine::ClientReply& reply);
  // KV client `client`'s current write, in its session (now_ms 0: the node stamps it).
  engine::Command kv_write_command(std::uint32_t client) const;

  // The UTXO clients and the records checker's hooks (sim/records_workload.cpp).
  void start_utxo_clients();
  void utxo_step(std::uint32_t client);
  void utxo_begin(std::uint32_t client);
  void utxo_attempt(std::uint32_t client);
  void submit_utxo_call(engine::NodeId id, const Call& call);
  void utxo_reply(engine::NodeId id, const Call& call, const engine::ClientReply& reply);
  void utxo_opened(engine::NodeId id, std::uint32_t client, const engine::ClientReply& reply);
  void utxo_timeout(std::uint64_t param);
  void utxo_retry(std::uint32_t client, std::uint64_t delay_ms);
  void utxo_done(std::uint32_t client, std::uint64_t next_in_ms);
  // How long a session client waits before retrying after a not_leader reply.
  std::uint64_t not_leader_retry_ms(const engine::ClientReply& reply) const;
  void records_applied(engine::NodeId id, const engine::Entry& e, const engine::KvResult& result,
                       const engine::KvStore& kv);
  void records_restored(engine::NodeId id, const engine::KvStore& kv);
  // A client was told `request` (a session write, or a session open) succeeded at `revision`.
  void records_acknowledged(engine::NodeId id, const engine::Command& request,
                            engine::Index revision);
  void report_records(engine::NodeId id);
  void finish_records();
  void check_history();
  bool lease_reads_allowed() const;
  // Leases and fencing, after every node event (see RunStats).
  void check_leases();
  // A leader cut off from a quorum must stop acting within its bound: `what` (a read it
  // answered, a lease it holds) is a violation if node `id` has heard from no quorum of its
  // voters for longer than an election timeout on the slowest clock allowed.
  void check_not_cut_off(engine::NodeId id, const char* what);
  bool clock_jumped_recently() const;
  // A follower's commit index never passes what it has verified to match its leader.
  void check_follower_commit(engine::NodeId id);

  // Chain views (sim/chain.cpp): a simulated Bitcoin backend beside every node.
  bool chain_on() const { return options_.chain_block_ms > 0; }
  void chain_block();
  // Node `id`'s backend saw a block at `height` (its probe reports it, unless stalled).
  void chain_seen(engine::NodeId id, std::uint64_t height);
  // What node `id`'s probe reports now (nullopt while blind).
  std::optional<engine::ChainView> chain_view_of(engine::NodeId id) const;
  // Hands the node its current view, as its probe would (a paused process gets it on resume).
  void push_chain_view(engine::NodeId id);
  void chain_stall(engine::NodeId id, std::uint64_t ms);
  void chain_blind(engine::NodeId id, std::uint64_t ms);
  // A stall or a blind probe ends (param: 0 stall, 1 blind): the view converges again.
  void chain_restore(engine::NodeId id, std::uint64_t what);
  // Ground truth: is `id` behind the height a quorum of `voters` holds, by the backends' views?
  bool chain_truth_behind(engine::NodeId id, const std::set<engine::NodeId>& voters) const;
  std::optional<std::uint64_t> chain_truth_quorum(const std::set<engine::NodeId>& voters) const;
  // After any view changes: since when each node has been behind.
  void update_chain_truth();
  // After every node event: no behind node wins an election; no behind leader stays long.
  void check_chain(engine::NodeId id);
  // Views converged a while ago: some node must lead again.
  void chain_check();
  std::string chain_describe(const std::set<engine::NodeId>& voters) const;

  // Faults and phases.
  void schedule_fault(FaultKind kind, bool first);
  void inject(FaultKind kind);
  void run_script_step(const ScriptStep& step);
  void start_liveness();
  void check_liveness();
  void propose();

  // Checking.
  void observe(engine::NodeId id);
  // The invariant checker's part of observe() alone (also from inside an event, see
  // SimDisk::before_compact).
  void checker_observe(engine::NodeId id);
  void violation(const std::string& what, engine::NodeId node);

  SimOptions options_;
  Prng rng_;
  // The event queue: a binary min-heap of (time, sequence, slot), the events themselves in a
  // slab of reusable slots, so scheduling allocates nothing in the steady state.
  struct QueueKey {
    std::uint64_t at_us;
    std::uint64_t seq;
    std::uint32_t slot;
    bool operator>(const QueueKey& o) const {
      return at_us != o.at_us ? at_us > o.at_us : seq > o.seq;
    }
  };
  std::vector<QueueKey> heap_;
  std::vector<Event> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t now_us_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  bool faults_on_ = true;
  bool liveness_phase_ = false;
  bool done_ = false;
  std::uint64_t liveness_started_us_ = 0;
  engine::Index liveness_target_ = 0;  // a proposal made after healing, acknowledged
  std::uint64_t partition_started_us_ = 0;

  NetworkModel network_;
  std::map<engine::NodeId, std::unique_ptr<Node>> nodes_;
  engine::InvariantChecker checker_;
  engine::NodeId client_target_ = 1;
  std::uint64_t client_counter_ = 0;
  // Requests in flight at each node, by ticket: a proposal (its data, unique) or a KV client's
  // call. A crash drops that node's; their clients time out.
  engine::Ticket next_ticket_ = 1;
  std::map<engine::NodeId, std::map<engine::Ticket, std::string>> proposals_;
  std::map<engine::NodeId, std::map<engine::Ticket, Call>> calls_;
  std::map<engine::Index, std::string> acked_;  // index -> data, acknowledged to the client
  // KV clients: their state, the history they produced, and requests waiting at paused nodes.
  std::vector<KvClient> clients_;
  std::vector<KvOp> history_;
  std::vector<bool> history_dropped_;  // refused for sure, or a read never answered
  std::map<engine::NodeId, std::vector<std::pair<Call, KvOp>>> inbox_;
  // The UTXO clients, and the checker of sessions and reservations they and the KV clients feed.
  std::vector<UtxoClient> utxo_clients_;
  RecordsChecker records_;
  // Leases: when a clock last jumped (a jump breaks the drift bound, so lease overlaps within
  // the following window are excused), and the fencing resource's highest accepted token.
  std::optional<std::uint64_t> last_clock_jump_us_;
  std::uint64_t fence_token_ = 0;
  engine::Term first_leader_term_ = 0;  // the term the first leader was elected in
  // (receiver, sender) -> when the receiver last got any message from the sender.
  std::map<std::pair<engine::NodeId, engine::NodeId>, std::uint64_t> last_heard_us_;
  // State machine agreement: the digest of the applied state after each index that changed it
  // (normal entries), as first seen on any node. Every node, whether it applied the entries or
  // restored a snapshot, must hold the same digest there.
  std::map<engine::Index, std::uint64_t> digest_at_;
  std::unique_ptr<Timeline> timeline_;
  RunResult result_;
  // Configuration 2PC checking: what each version was, which were aborted, per-node high marks.
  std::map<std::uint64_t, std::uint64_t> config_doc_hash_;  // version -> document hash
  std::set<std::uint64_t> config_aborted_;
  std::set<std::uint64_t> config_activated_;
  std::map<std::uint64_t, std::uint64_t> config_begun_us_;         // version -> begin time
  std::map<std::uint64_t, std::set<engine::NodeId>> config_active_on_;  // version -> nodes
  std::uint64_t commit_crash_considered_ = 0;  // last decided version a crash was drawn for

  // ScriptAction::arm_config_crash: the phase armed (0 none, 1 PREPARE, 2 COMMIT), the down
  // time, and how many arms were set (each must end in one crash in its phase).
  std::uint64_t config_crash_armed_ = 0;
  std::uint64_t config_crash_down_ms_ = 0;
  std::uint64_t config_crash_arms_[3] = {0, 0, 0};  // by phase
  // The forced crash scheduled (EventKind::config_crash): it happens only if, when it comes,
  // `node` still holds this record at `index`, uncommitted; otherwise the phase is re-armed.
  struct PendingConfigCrash {
    engine::NodeId node = engine::kNoNode;
    engine::Index index = 0;
    engine::ConfigRecordKind kind = engine::ConfigRecordKind::prepare;
    std::uint64_t version = 0;
  };
  std::optional<PendingConfigCrash> pending_config_crash_;

  // Chain views: the best block's height (every backend that is not stalled sees it after a lag).
  std::uint64_t chain_tip_ = kChainGenesisHeight;
  static constexpr std::uint64_t kChainGenesisHeight = 800'000;

  // The compare-and-set race in progress, if any.
  struct RaceClient {
    std::string document;        // unique to this race and client
    std::uint64_t won_version = 0;  // the version its document became active as
    bool conflict = false;       // refused with a conflict naming the winner's version
    bool done() const { return won_version != 0 || conflict; }
  };
  struct Race {
    std::uint64_t number = 0;
    std::uint64_t expected_version = 0;  // both clients write with if_version = this
    RaceClient clients[2];
  };
  std::optional<Race> race_;
  std::uint64_t races_begun_ = 0;

  // crash_voter_majority: while fewer than a majority of each voter set in `outage_configs_`
  // (every configuration some node held when the outage began) is up, no node's commit index
  // may pass `outage_commit_mark_`: the highest commit any node had reached, or the highest
  // index a majority of one of those voter sets already held, whichever is higher.
  bool outage_active_ = false;
  std::set<std::set<engine::NodeId>> outage_configs_;
  engine::Index outage_commit_mark_ = 0;
  std::uint64_t outage_steps_ = 0;  // crash_voter_majority steps in the script
};

}  // namespace anya::sim

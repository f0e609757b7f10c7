// Everything a simulation run is made of. A run is a pure function of its SimOptions, and
// SimOptions are a pure function of (seed, scenario): that is what makes a seed a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anya::sim {

// The most nodes a run may hold, bootstrap and joined ones together (node ids 1..this): the
// engine's limit on voters plus learners (engine/raft/membership.hpp kMaxMembers).
inline constexpr std::uint32_t kMaxSimNodes = 64;

// One direction of one link. Times in microseconds of virtual time.
struct LinkProfile {
  std::uint64_t latency_min_us = 200;
  std::uint64_t latency_max_us = 2000;
  std::uint32_t loss_ppm = 0;         // parts per million of messages dropped
  std::uint32_t duplicate_ppm = 0;    // delivered twice
  std::uint32_t reorder_ppm = 0;      // overtake earlier messages (otherwise FIFO per link)
  std::uint32_t capacity = 1024;      // messages in flight on the link; more are dropped
};

// Mean interval between injected faults of each kind (0: never), and their sizes.
struct FaultProfile {
  std::uint64_t crash_every_ms = 0;
  std::uint64_t down_min_ms = 50, down_max_ms = 3000;     // how long a crashed node stays down
  std::uint64_t pause_every_ms = 0;
  std::uint64_t pause_min_ms = 100, pause_max_ms = 3000;  // a stalled process (GC, frozen VM)
  std::uint64_t partition_every_ms = 0;
  std::uint64_t partition_min_ms = 100, partition_max_ms = 5000;
  std::uint64_t clog_every_ms = 0;                        // one link delays everything
  std::uint64_t clog_min_ms = 50, clog_max_ms = 2000;
  std::uint64_t clock_jump_every_ms = 0;                  // a node's clock leaps forward
  std::uint64_t clock_jump_max_ms = 2000;
  std::uint64_t transfer_every_ms = 0;   // the leader is asked to hand leadership on
  std::uint32_t torn_write_ppm = 0;    // on crash, part of the unsynced tail reaches the disk
  std::uint32_t bit_flip_ppm = 0;      // on restart, a durable bit is flipped (detected by CRC)
  std::uint32_t crash_in_sync_ppm = 0; // a sync fails mid-way and the process dies
  std::uint32_t fault_hook_ppm = 0;    // how often each engine fault hook fires
  // A freshly elected leader crashes within a few network latencies: leaders that replicated
  // to only some followers are where Raft's subtle cases (Figure 8) live.
  std::uint32_t crash_new_leader_ppm = 0;
};

struct ClockProfile {
  std::uint64_t max_offset_ms = 0;     // each node's clock starts anywhere in [0, max]
  std::uint32_t max_drift_ppm = 0;     // and runs fast or slow by up to this much
};

// A scripted fault for named scenarios, at a fixed virtual time in the safety phase.
enum class ScriptAction {
  crash_leader,        // crash the current leader (param: ms until restart)
  crash_leader_torn,   // the same, tearing its unsynced tail
  isolate_leader,      // cut the leader off from everyone (param: ms until heal)
  partition,           // param: PartitionKind as an integer; healed after param2 ms
  pause_leader,        // param: ms of stall
  clock_jump_all,      // every node's clock leaps forward by param ms (one after another)
  restart_node,        // param: node id; crash it, restart after param2 ms
  flap_link,           // param: node a, param2: node b; cut both ways for 100 ms
  remove_leader,       // the leader proposes its own removal
  // Arm a crash of the leader in one phase of its next configuration transaction (param: 1
  // right after it proposes the PREPARE, 2 right after it proposes the COMMIT; param2: ms until
  // restart). It stays armed until it fires, so every arm is one crash in that phase.
  arm_config_crash,
  // Crash the leader and as many other voters as it takes to leave a minority of the voters up
  // (param: ms until they restart). Nothing may commit until a voter majority is back, however
  // many learners are live. Retried every 100 ms while there is no leader.
  crash_voter_majority,
  // Cut one follower (a live non-leader, drawn) off from everyone (param: ms until heal),
  // while the leader goes on committing and compacting past it.
  isolate_follower,
  // Chain views (SimOptions::chain_block_ms > 0): the leader's Bitcoin backend stops seeing new
  // blocks for param ms while the others' go on, then catches up with them.
  chain_stall_leader,
  // The same for one follower (a live non-leader, drawn).
  chain_stall_follower,
  // One follower's chain probe fails for param ms: its view is unknown, then back.
  chain_blind_follower,
};

struct ScriptStep {
  std::uint64_t at_ms = 0;
  ScriptAction action = ScriptAction::crash_leader;
  std::uint64_t param = 0;
  std::uint64_t param2 = 0;
};

struct SimOptions {
  std::uint64_t seed = 1;
  std::string scenario = "swarm";
  std::uint32_t nodes = 3;             // the bootstrap voters, ids 1..nodes
  std::uint32_t max_nodes = 3;         // membership changes may add nodes up to this id
  std::uint64_t membership_every_ms = 0;  // mean interval between membership changes (0: none)
  std::uint64_t config_every_ms = 0;   // mean interval between configuration writes (0: none)
  std::uint32_t config_reject_ppm = 0; // a write names a member whose validator rejects it
  // Mean interval between compare-and-set races (0: none): two clients write different
  // documents expecting the same version at the same time; exactly one may win, and the other
  // must be refused with a conflict naming the winner's version. One race at a time. Only
  // meaningful when nothing else writes the configuration (config_every_ms 0).
  std::uint64_t config_race_every_ms = 0;
  // Learners that join one at a time (ids nodes+1..nodes+learners) and are never promoted, and
  // no other membership change happens. Learners with an even id report themselves unhealthy.
  std::uint32_t learners = 0;
  std::uint64_t heartbeat_ms = 50;
  std::uint64_t election_timeout_ms = 300;
  LinkProfile link;
  FaultProfile faults;
  ClockProfile clocks;
  // Chain views: every node runs beside a simulated Bitcoin backend. 0: none at all (no node
  // ever has a chain view, exactly as before chain gating existed). Otherwise the chain grows a
  // block every chain_block_ms, each backend seeing it after a lag drawn from [0,
  // chain_lag_max_ms] unless stalled; chain_stall_every_ms (0: never) is the mean interval
  // between random stalls of a backend (the leader's half the time), each lasting
  // [chain_stall_min_ms, chain_stall_max_ms].
  std::uint64_t chain_block_ms = 0;
  std::uint64_t chain_lag_max_ms = 0;
  std::uint64_t max_blocks_behind = 2;  // RaftConfig::max_blocks_behind of every node
  std::uint64_t chain_stall_every_ms = 0;
  std::uint64_t chain_stall_min_ms = 200, chain_stall_max_ms = 3000;
  // A leader behind the chain by more than max_blocks_behind (the simulator's ground truth)
  // must stop leading within this many ms (0: not checked). Only meaningful without faults
  // that can keep it from hearing the voters ahead of it (partitions, pauses, clogs).
  std::uint64_t chain_handoff_bound_ms = 0;
  std::uint64_t safety_ms = 20'000;    // faults on
  std::uint64_t liveness_ms = 15'000;  // all healed: a leader and progress are required within
  std::uint64_t propose_every_ms = 20; // client proposals, to whoever it thinks leads
  // Every node snapshots its state every this many applied entries (0: never) and compacts its
  // log to snapshot_keep_entries below the snapshot (RaftConfig fields of the same names). Keep
  // at least 1 when snapshotting: the checker hashes entries as it sees them, and a one-node
  // leader could append, commit and compact an entry within a single event.
  std::uint64_t snapshot_entries = 0;
  std::uint64_t snapshot_keep_entries = 0;
  // The run fails unless at least this many snapshots were installed from a leader.
  std::uint64_t min_snapshots_installed = 0;
  bool faults_on = true;               // false: a clean run (some swarm seeds)
  // KV clients (put, get, compare-and-set, delete on kv_keys keys, through the same NodeCore
  // path production uses), checked for linearizability at the end of the run.
  std::uint32_t kv_clients = 3;
  std::uint32_t kv_keys = 3;
  std::uint64_t kv_timeout_ms = 1000;  // a client gives up and counts the outcome unknown
  // UTXO clients (sim/records_workload.cpp; 0: none): wallets reserving, renewing, releasing
  // and spending utxo_outpoints shared outpoints (a fresh set every utxo_generation_ms) in
  // client sessions, with reservations of 20 ms to utxo_ttl_max_ms, checked against a model
  // of the reservation rules (sim/records_checker.hpp).
  std::uint32_t utxo_clients = 0;
  std::uint32_t utxo_outpoints = 4;
  std::uint64_t utxo_generation_ms = 3000;
  std::uint64_t utxo_ttl_max_ms = 1500;
  // The clock-rate bound the engine's leases assume (RaftConfig::max_clock_drift_ppm). Clocks
  // drifting more than this (clocks.max_drift_ppm) must make the lease checker fire.
  std::uint32_t lease_drift_bound_ppm = 50'000;
  std::vector<ScriptStep> script;      // named scenarios: scripted faults

  std::string describe() const;
};

// Swarm testing: the seed draws the cluster size (1-7), timings and every fault probability;
// about one seed in eight runs with no faults at all.
SimOptions swarm_options(std::uint64_t seed);

}  // namespace anya::sim

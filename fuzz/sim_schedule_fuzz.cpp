// libFuzzer target for the simulator: the fuzzer's bytes choose the fault schedule of a small
// cluster (3 or 5 voters, plus up to two learners or four joining nodes) that runs the real
// engine with every checker the simulator has on: the invariant checker after every event
// (election safety, log matching, leader completeness, commit and persisted-state rules), state
// machine digests, acknowledged writes kept, the configuration 2PC checks, compare-and-set race
// outcomes, no commit during a quorum outage, and the liveness phase. A finding prints the
// violation and the decoded schedule, then aborts. A run is a pure function of the input (the
// simulator's seed is four of its bytes). SIM_SCHEDULE_PRINT=1 prints every input's schedule
// and outcome; SIM_SCHEDULE_TIMELINE=FILE.html draws the run (both output only).
//
// What is a finding: every violation the run reports, safety and liveness alike, except those
// starting "scenario:". Liveness counts because every option is clamped to the ranges the swarm
// and the named scenarios use, where the liveness phase (everything healed and restarted)
// promises a leader and a new commit on every live member within liveness_ms; the combinations
// outside what the simulator supports are ruled out in decode(): bit flips with a scripted
// remove_leader (a node down for good plus a removal can leave no live voter majority; only
// change_membership guards against that) and compare-and-set races with other configuration
// writes (a race assumes it is the only writer). "scenario:" violations only say
// that a scripted situation never came about (a config crash armed with no write to crash, a
// learner with no time to join); they are checked last, after everything else passed.
//
// Input format. Values are read in order, one byte each (the seed four, little-endian); missing
// bytes read as 0, and 0 is the quiet choice, so the empty input is a fault-free 3-node
// cluster. A byte maps linearly onto [lo, hi] (0 -> lo, 255 -> hi); "0 off" fields map
// 1..255 onto [lo, hi].
//    0-3  seed                             23  + partition span ms 0..4500
//    4    voters: even 3, odd 5            24  clog every ms (0 off) 200..5000
//    5    heartbeat_ms 10..100             25  clog_max_ms 50..2000
//    6    election = heartbeat x 3..10     26  clock jump every ms (0 off) 300..5000
//    7    latency_min_us 50..2000          27  clock_jump_max_ms 1..2000
//    8    + latency spread us 0..20000     28  torn_write_ppm 0..1000000
//    9    link capacity 8..1024            29  bit_flip_ppm 0..100000
//    10   propose_every_ms 5..100          30  crash_in_sync_ppm 0..5000
//    11   safety_ms 1000..4000             31  fault_hook_ppm 0..400000
//    12   loss_ppm 0..200000               32  crash_new_leader_ppm 0..700000
//    13   duplicate_ppm 0..50000           33  clock max_offset_ms 0..100000
//    14   reorder_ppm 0..200000            34  clock max_drift_ppm 0..1000
//    15   crash every ms (0 off) 100..3000 35  membership change every ms (0 off) 60..3000
//    16   down_min_ms 20..500              36  membership shape: bits 0-1 learners (3 reads 0);
//    17   + down span ms 0..2500                with none, voters join, are promoted and removed
//    18   pause every ms (0 off) 300..5000      up to (bits 2-7 % 5) more ids, 9 at most
//    19   pause_min_ms 50..500             37  config write every ms (0 off) 50..2000
//    20   + pause span ms 0..2500          38  config_reject_ppm 0..300000
//    21   partition every ms (0 off)       39  compare-and-set race every ms (0 off) 100..3000
//         200..5000                        40  snapshot every entries (0 off) 5..120
//    22   partition_min_ms 50..500         41  snapshot_keep_entries 1..30
//    42.. script steps (ScriptStep), 4 bytes each, at most kMaxScriptSteps: action (b % 12, in
//         ScriptAction order), time (at_ms = b * safety_ms / 256), then two parameter bytes.
//         Durations are b * 10 + 10 ms. crash_leader, crash_leader_torn, isolate_leader,
//         pause_leader, isolate_follower, crash_voter_majority, clock_jump_all: one duration;
//         partition: kind (b % 5, PartitionKind order), heal duration; restart_node: node
//         (1 + b % max_nodes), down duration; flap_link: two distinct nodes; remove_leader:
//         nothing; arm_config_crash: phase (1 + b % 2: PREPARE, COMMIT), down duration.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "sim/network.hpp"
#include "sim/options.hpp"
#include "sim/simulation.hpp"

namespace {

using namespace anya::sim;

// One run must stay within a few tens of milliseconds under ASan: the safety phase is a few
// virtual seconds (the swarm's is 5-20 s), and the script holds at most this many steps.
constexpr std::uint64_t kMinSafetyMs = 1000;
constexpr std::uint64_t kMaxSafetyMs = 4000;
constexpr std::size_t kMaxScriptSteps = 24;
constexpr std::uint32_t kMaxJoinNodes = 9;  // as the swarm: membership grows to 9 ids at most
constexpr std::uint64_t kScriptActions = 12;
static_assert(static_cast<std::uint64_t>(ScriptAction::isolate_follower) + 1 == kScriptActions,
              "a new ScriptAction needs decoding here");
// The chain actions after them are not decoded: this target runs without chain views
// (SimOptions::chain_block_ms 0), where they do nothing. The chain-divergence scenario and the
// swarm's chain seeds exercise them.
static_assert(static_cast<std::uint64_t>(ScriptAction::chain_blind_follower) ==
              kScriptActions + 2);

// Reads the input front to back; past the end every byte is 0.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= static_cast<std::uint32_t>(byte()) << (8 * i);
    return v;
  }
  // 0 -> lo, 255 -> hi, linear between.
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) {
    ANYA_ASSERT(lo <= hi);
    return lo + static_cast<std::uint64_t>(byte()) * (hi - lo) / 255;
  }
  // 0 -> 0 (off); 1..255 -> lo..hi.
  std::uint64_t off_or(std::uint64_t lo, std::uint64_t hi) {
    ANYA_ASSERT(0 < lo && lo <= hi);
    const std::uint8_t b = byte();
    return b == 0 ? 0 : lo + static_cast<std::uint64_t>(b - 1) * (hi - lo) / 254;
  }
  std::uint32_t ppm(std::uint32_t hi) { return static_cast<std::uint32_t>(range(0, hi)); }
  bool exhausted() const { return at_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

std::uint64_t step_ms(std::uint8_t b) { return 10 + 10 * static_cast<std::uint64_t>(b); }

void decode_cluster(ByteReader& in, SimOptions& o) {
  o.seed = in.u32();
  o.scenario = "fuzz";
  o.nodes = in.byte() % 2 == 0 ? 3 : 5;
  o.max_nodes = o.nodes;
  o.heartbeat_ms = in.range(10, 100);
  o.election_timeout_ms = o.heartbeat_ms * in.range(3, 10);
  o.link.latency_min_us = in.range(50, 2000);
  o.link.latency_max_us = o.link.latency_min_us + in.range(0, 20'000);
  o.link.capacity = static_cast<std::uint32_t>(in.range(8, 1024));
  o.propose_every_ms = in.range(5, 100);
  o.safety_ms = in.range(kMinSafetyMs, kMaxSafetyMs);
  o.link.loss_ppm = in.ppm(200'000);
  o.link.duplicate_ppm = in.ppm(50'000);
  o.link.reorder_ppm = in.ppm(200'000);
}

void decode_faults(ByteReader& in, SimOptions& o) {
  FaultProfile& f = o.faults;
  f.crash_every_ms = in.off_or(100, 3000);
  f.down_min_ms = in.range(20, 500);
  f.down_max_ms = f.down_min_ms + in.range(0, 2500);
  f.pause_every_ms = in.off_or(300, 5000);
  f.pause_min_ms = in.range(50, 500);
  f.pause_max_ms = f.pause_min_ms + in.range(0, 2500);
  f.partition_every_ms = in.off_or(200, 5000);
  f.partition_min_ms = in.range(50, 500);
  f.partition_max_ms = f.partition_min_ms + in.range(0, 4500);
  f.clog_every_ms = in.off_or(200, 5000);
  f.clog_min_ms = 50;
  f.clog_max_ms = in.range(50, 2000);
  f.clock_jump_every_ms = in.off_or(300, 5000);
  f.clock_jump_max_ms = in.range(1, 2000);
  f.torn_write_ppm = in.ppm(1'000'000);
  f.bit_flip_ppm = in.ppm(100'000);
  f.crash_in_sync_ppm = in.ppm(5000);
  f.fault_hook_ppm = in.ppm(400'000);
  f.crash_new_leader_ppm = in.ppm(700'000);
  o.clocks.max_offset_ms = in.range(0, 100'000);
  o.clocks.max_drift_ppm = static_cast<std::uint32_t>(in.range(0, 1000));
}

void decode_activity(ByteReader& in, SimOptions& o) {
  o.membership_every_ms = in.off_or(60, 3000);
  const std::uint8_t members = in.byte();
  if (o.membership_every_ms > 0) {
    o.learners = static_cast<std::uint32_t>(members & 3) % 3;
    const std::uint32_t extra = static_cast<std::uint32_t>(members >> 2) % 5;
    o.max_nodes = o.learners > 0 ? o.nodes + o.learners
                                 : std::min(kMaxJoinNodes, o.nodes + extra);
  }
  o.config_every_ms = in.off_or(50, 2000);
  o.config_reject_ppm = in.ppm(300'000);
  const std::uint64_t race_every_ms = in.off_or(100, 3000);
  if (o.config_every_ms == 0) o.config_race_every_ms = race_every_ms;
  o.snapshot_entries = in.off_or(5, 120);
  const std::uint64_t keep = in.range(1, 30);
  if (o.snapshot_entries > 0) o.snapshot_keep_entries = keep;
}

ScriptStep decode_step(ByteReader& in, const SimOptions& o) {
  ScriptStep s;
  s.action = static_cast<ScriptAction>(in.byte() % kScriptActions);
  s.at_ms = static_cast<std::uint64_t>(in.byte()) * o.safety_ms / 256;
  const std::uint8_t p = in.byte();
  const std::uint8_t p2 = in.byte();
  const auto node = [&](std::uint64_t b) { return 1 + b % o.max_nodes; };
  switch (s.action) {
    case ScriptAction::partition:
      s.param = p % static_cast<std::uint64_t>(PartitionKind::count);
      s.param2 = step_ms(p2);
      break;
    case ScriptAction::restart_node:
      s.param = node(p);
      s.param2 = step_ms(p2);
      break;
    case ScriptAction::flap_link:
      s.param = node(p);
      s.param2 = node(s.param + p2 % (o.max_nodes - 1));  // never s.param itself
      break;
    case ScriptAction::arm_config_crash:
      s.param = 1 + p % 2;
      s.param2 = step_ms(p2);
      break;
    case ScriptAction::remove_leader: break;
    default: s.param = step_ms(p); break;
  }
  return s;
}

SimOptions decode(const std::uint8_t* data, std::size_t size) {
  ByteReader in(data, size);
  SimOptions o;
  o.faults_on = true;
  decode_cluster(in, o);
  decode_faults(in, o);
  decode_activity(in, o);
  bool removes_leader = false;
  while (!in.exhausted() && o.script.size() < kMaxScriptSteps) {
    o.script.push_back(decode_step(in, o));
    removes_leader |= o.script.back().action == ScriptAction::remove_leader;
  }
  // A node down for good and a scripted removal could leave no live voter majority.
  if (removes_leader) o.faults.bit_flip_ppm = 0;
  return o;
}

const char* action_name(ScriptAction a) {
  switch (a) {
    case ScriptAction::crash_leader: return "crash_leader";
    case ScriptAction::crash_leader_torn: return "crash_leader_torn";
    case ScriptAction::isolate_leader: return "isolate_leader";
    case ScriptAction::partition: return "partition";
    case ScriptAction::pause_leader: return "pause_leader";
    case ScriptAction::clock_jump_all: return "clock_jump_all";
    case ScriptAction::restart_node: return "restart_node";
    case ScriptAction::flap_link: return "flap_link";
    case ScriptAction::remove_leader: return "remove_leader";
    case ScriptAction::arm_config_crash: return "arm_config_crash";
    case ScriptAction::crash_voter_majority: return "crash_voter_majority";
    case ScriptAction::isolate_follower: return "isolate_follower";
    case ScriptAction::chain_stall_leader: return "chain_stall_leader";
    case ScriptAction::chain_stall_follower: return "chain_stall_follower";
    case ScriptAction::chain_blind_follower: return "chain_blind_follower";
  }
  return "?";
}

std::string describe_step(const ScriptStep& step) {
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string s = "t=" + n(step.at_ms) + "ms " + action_name(step.action);
  switch (step.action) {
    case ScriptAction::partition:
      return s + " " + partition_kind_name(static_cast<PartitionKind>(step.param)) +
             ", healed after " + n(step.param2) + "ms";
    case ScriptAction::restart_node:
      return s + " node " + n(step.param) + ", down " + n(step.param2) + "ms";
    case ScriptAction::flap_link: return s + " " + n(step.param) + "-" + n(step.param2);
    case ScriptAction::remove_leader: return s;
    case ScriptAction::arm_config_crash:
      return s + (step.param == 1 ? " PREPARE" : " COMMIT") + ", down " + n(step.param2) + "ms";
    default: return s + " " + n(step.param) + "ms";
  }
}

// Everything describe() leaves out, so that a reproducer reads as the schedule it is.
std::string describe_all(const SimOptions& o) {
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  const FaultProfile& f = o.faults;
  std::string s = "seed=" + n(o.seed) + " " + o.describe() + "\n  capacity=" +
                  n(o.link.capacity) + " propose/" + n(o.propose_every_ms) + "ms safety=" +
                  n(o.safety_ms) + "ms liveness=" + n(o.liveness_ms) + "ms max_nodes=" +
                  n(o.max_nodes) + " reject=" + n(o.config_reject_ppm) + "ppm\n  down " +
                  n(f.down_min_ms) + "-" + n(f.down_max_ms) + "ms pause " + n(f.pause_min_ms) +
                  "-" + n(f.pause_max_ms) + "ms partition " + n(f.partition_min_ms) + "-" +
                  n(f.partition_max_ms) + "ms clog " + n(f.clog_min_ms) + "-" +
                  n(f.clog_max_ms) + "ms jump<=" + n(f.clock_jump_max_ms) + "ms offset<=" +
                  n(o.clocks.max_offset_ms) + "ms\n  torn=" + n(f.torn_write_ppm) +
                  "ppm bitflip=" + n(f.bit_flip_ppm) + "ppm sync-crash=" +
                  n(f.crash_in_sync_ppm) + "ppm hooks=" + n(f.fault_hook_ppm) +
                  "ppm crash-new-leader=" + n(f.crash_new_leader_ppm) + "ppm\n  script (" +
                  n(o.script.size()) + " steps):";
  for (const ScriptStep& step : o.script) s += "\n    " + describe_step(step);
  return s;
}

void write_timeline(const Simulation& sim, const char* path) {
  std::FILE* out = std::fopen(path, "w");
  if (out == nullptr) {
    std::fprintf(stderr, "sim_schedule: cannot write the timeline to %s\n", path);
    return;
  }
  const std::string html =
      sim.timeline()->render_html("sim_schedule seed " + std::to_string(sim.options().seed),
                                  sim.options().max_nodes);
  std::fwrite(html.data(), 1, html.size(), out);
  std::fclose(out);
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

// What an input decodes to and how its run went: enough to see which paths a seed reaches.
void print_run(const SimOptions& options, const RunResult& result) {
  const RunStats& st = result.stats;
  std::fprintf(stderr, "schedule: %s\nresult: %s events=%llu sim=%llums crashes=%llu "
               "partitions=%llu leader_changes=%llu commit=%llu acked=%llu configs=%llu "
               "races=%llu members=%llu snapshots=%llu/%llu recovery=%llums\n",
               describe_all(options).c_str(), result.ok ? "ok" : result.violation.c_str(),
               ull(st.events), ull(st.sim_time_us / 1000), ull(st.crashes),
               ull(st.partitions), ull(st.leader_changes), ull(st.max_commit), ull(st.acked),
               ull(st.config_activated), ull(st.config_races), ull(st.membership_changes),
               ull(st.snapshots_taken), ull(st.snapshots_installed),
               ull(st.liveness_recovery_ms));
}

bool is_finding(const RunResult& r) {
  if (r.ok) return false;
  const std::string_view proof = "scenario:";
  return std::string_view(r.violation).substr(0, proof.size()) != proof;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const SimOptions options = decode(data, size);
  Simulation sim(options);
  const char* timeline_path = std::getenv("SIM_SCHEDULE_TIMELINE");
  if (timeline_path != nullptr) sim.record_timeline();
  const RunResult result = sim.run();
  if (timeline_path != nullptr) write_timeline(sim, timeline_path);
  if (std::getenv("SIM_SCHEDULE_PRINT") != nullptr) print_run(options, result);
  if (is_finding(result)) {
    std::fprintf(stderr, "sim_schedule: VIOLATION: %s\nschedule: %s\n", result.violation.c_str(),
                 describe_all(options).c_str());
    std::abort();
  }
  return 0;
}

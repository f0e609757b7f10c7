#include "sim/options.hpp"

#include <algorithm>

#include "engine/base/prng.hpp"

namespace anya::sim {

std::string SimOptions::describe() const {
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string s = "scenario=" + scenario + " nodes=" + n(nodes) + " heartbeat=" + n(heartbeat_ms) +
                  "ms election=" + n(election_timeout_ms) + "ms latency=" +
                  n(link.latency_min_us) + "-" + n(link.latency_max_us) + "us";
  if (membership_every_ms > 0) {
    s += " members<=" + n(max_nodes) + " change/" + n(membership_every_ms) + "ms";
  }
  if (learners > 0) s += " learners=" + n(learners);
  if (config_every_ms > 0) s += " config/" + n(config_every_ms) + "ms";
  if (config_race_every_ms > 0) s += " cas-race/" + n(config_race_every_ms) + "ms";
  if (snapshot_entries > 0) {
    s += " snapshot/" + n(snapshot_entries) + " keep=" + n(snapshot_keep_entries);
  }
  s += " kv-clients=" + n(kv_clients);
  if (utxo_clients > 0) {
    s += " utxo-clients=" + n(utxo_clients) + " outpoints=" + n(utxo_outpoints) + "/" +
         n(utxo_generation_ms) + "ms ttl<=" + n(utxo_ttl_max_ms) + "ms";
  }
  if (chain_block_ms > 0) {
    s += " chain: block/" + n(chain_block_ms) + "ms lag<=" + n(chain_lag_max_ms) +
         "ms max-behind=" + n(max_blocks_behind) + " stall/" + n(chain_stall_every_ms) + "ms";
  }
  if (!faults_on) return s + " faults=off";
  s += " loss=" + n(link.loss_ppm) + "ppm dup=" + n(link.duplicate_ppm) +
       "ppm reorder=" + n(link.reorder_ppm) + "ppm";
  s += " crash/" + n(faults.crash_every_ms) + "ms pause/" + n(faults.pause_every_ms) +
       "ms partition/" + n(faults.partition_every_ms) + "ms clog/" + n(faults.clog_every_ms) +
       "ms jump/" + n(faults.clock_jump_every_ms) + "ms transfer/" + n(faults.transfer_every_ms) +
       "ms drift<=" + n(clocks.max_drift_ppm) + "ppm";
  return s;
}

namespace {
// A fault kind is off in about a third of seeds, else its mean interval is drawn in [lo, hi].
std::uint64_t maybe_every(Prng& rng, std::uint64_t lo, std::uint64_t hi) {
  return rng.chance(1, 3) ? 0 : rng.between(lo, hi);
}
}  // namespace

SimOptions swarm_options(std::uint64_t seed) {
  // The options get their own stream, apart from the run's, so that adding an option later does
  // not shift every other choice of the run.
  Prng rng(seed ^ 0x5eed5eed5eed5eedULL);
  SimOptions o;
  o.seed = seed;
  o.scenario = "swarm";
  o.nodes = static_cast<std::uint32_t>(rng.between(1, 7));
  o.max_nodes = o.nodes;
  o.heartbeat_ms = rng.between(10, 100);
  o.election_timeout_ms = o.heartbeat_ms * rng.between(3, 10);
  o.link.latency_min_us = rng.between(50, 2000);
  o.link.latency_max_us = o.link.latency_min_us + rng.between(0, 20'000);
  o.link.capacity = static_cast<std::uint32_t>(rng.between(8, 1024));
  o.propose_every_ms = rng.between(5, 100);
  o.safety_ms = rng.between(5'000, 20'000);
  {
    // Snapshots from a stream of their own, so the draws above and below stay as they were.
    Prng snap(seed ^ 0x54a95407ULL);
    if (snap.chance(1, 2)) {
      // Small intervals in most of these seeds: compaction and installs happen all the time.
      o.snapshot_entries = snap.chance(3, 4) ? snap.between(5, 50) : snap.between(100, 500);
      // At least one: the checker must see each entry in some log before it is compacted
      // (a one-node leader appends, commits and could compact an entry in one event).
      o.snapshot_keep_entries = snap.chance(1, 3) ? 1 : snap.between(1, 30);
    }
  }
  {
    // Chain views from a stream of their own too, in about one seed in four: the other seeds
    // run exactly as they did before chain views existed.
    Prng chain(seed ^ 0xc4a1b10cULL);
    if (chain.chance(1, 4)) {
      o.chain_block_ms = chain.between(20, 1000);
      o.chain_lag_max_ms = chain.between(0, 2 * o.chain_block_ms);
      o.max_blocks_behind = chain.between(0, 3);
      o.chain_stall_every_ms = chain.chance(1, 4) ? 0 : chain.between(300, 5000);
      o.chain_stall_max_ms = chain.between(200, 5000);
    }
  }
  {
    // UTXO clients from a stream of their own as well, in half the seeds.
    Prng utxo(seed ^ 0x07c0de5eULL);
    if (utxo.chance(1, 2)) {
      o.utxo_clients = static_cast<std::uint32_t>(utxo.between(2, 6));
      o.utxo_outpoints = static_cast<std::uint32_t>(utxo.between(1, 4));  // 1: all contend
      o.utxo_generation_ms = utxo.between(500, 5000);
      o.utxo_ttl_max_ms = utxo.between(20, 3000);
    }
  }
  o.faults_on = !rng.chance(1, 8);
  if (!o.faults_on) return o;
  o.link.loss_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(0, 200'000));
  o.link.duplicate_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(0, 50'000));
  o.link.reorder_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(0, 200'000));
  o.faults.crash_every_ms = maybe_every(rng, 200, 5000);
  o.faults.pause_every_ms = maybe_every(rng, 500, 8000);
  o.faults.partition_every_ms = maybe_every(rng, 300, 5000);
  o.faults.clog_every_ms = maybe_every(rng, 300, 5000);
  o.faults.clock_jump_every_ms = maybe_every(rng, 500, 8000);
  o.faults.torn_write_ppm = rng.chance(1, 2) ? 0 : 500'000;
  o.faults.bit_flip_ppm = rng.chance(1, 4) ? 100'000 : 0;
  o.faults.crash_in_sync_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(100, 5000));
  o.faults.fault_hook_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(1000, 50'000));
  o.faults.crash_new_leader_ppm = rng.chance(1, 2) ? 0 : static_cast<std::uint32_t>(rng.between(0, 500'000));
  o.clocks.max_offset_ms = rng.between(0, 100'000);
  if (rng.chance(1, 2)) {
    o.max_nodes = std::min<std::uint32_t>(9, o.nodes + static_cast<std::uint32_t>(rng.between(0, 3)));
    o.membership_every_ms = rng.between(300, 3000);
  }
  if (rng.chance(2, 3)) {
    o.config_every_ms = rng.between(50, 2000);
    o.config_reject_ppm = static_cast<std::uint32_t>(rng.between(0, 300'000));
  }
  o.clocks.max_drift_ppm = static_cast<std::uint32_t>(rng.between(0, 1000));
  // Drawn last, so the draws above (and the cluster each seed makes) stay as they were.
  o.faults.transfer_every_ms = maybe_every(rng, 300, 5000);
  o.kv_clients = static_cast<std::uint32_t>(rng.between(1, 5));
  return o;
}

}  // namespace anya::sim

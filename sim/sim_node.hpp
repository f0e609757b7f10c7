// One simulated node: the ports it gives its NodeCore (network, clock, fault hooks, the
// configuration validator, the disk) and what the simulator remembers about it between events.
// Private to sim/: simulation.cpp and workload.cpp share it.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "engine/node/node_core.hpp"
#include "sim/simulation.hpp"

namespace anya::sim {

using engine::Entry;
using engine::Index;
using engine::Message;
using engine::NodeId;
using engine::Role;
using engine::Term;

// The ports of one simulated node, and what the simulator tracks about it.
struct Simulation::Node : engine::NetworkPort, engine::ApplyObserver, engine::ClockPort,
                          FaultHooks, engine::ConfigValidator {
  Node(Simulation& sim, NodeId id) : sim(sim), id(id) {
    disk.before_compact = [this] {
      if (host) this->sim.checker_observe(this->id);
    };
  }

  void send(const Message& m) override { sim.send_from(id, m); }
  // The state machine is the real KV store inside NodeCore; replicas are compared by its
  // digest after every index that changed it, and after every snapshot restored.
  void on_applied(const Entry& e, const engine::KvResult& result,
                  const engine::KvStore& kv) override {
    sim.check_digest(id, e.index, kv.digest(), "applied");
    sim.records_applied(id, e, result, kv);  // sessions and reservations, against a model
  }
  void on_restored(const engine::KvStore& kv, bool from_leader) override {
    if (from_leader) {
      sim.result_.stats.snapshots_installed++;
    } else {
      sim.result_.stats.snapshots_restored++;
    }
    if (kv.revision() > 0) {
      sim.check_digest(id, kv.revision(), kv.digest(), "restored a snapshot at");
    }
    sim.records_restored(id, kv);
  }
  std::uint64_t now_ms() override {
    last_local_ms = std::max(last_local_ms, clock.local_ms(sim.now_us_));
    return last_local_ms;
  }
  // Deterministic: a document naming this node in its "reject" list is refused by it.
  Status validate(std::uint64_t version, std::string_view document) override {
    const std::string mark = "reject:" + std::to_string(id) + ";";
    if (document.find(mark) != std::string_view::npos) {
      return {Errc::invalid_argument, "node " + std::to_string(id) + " rejects version " +
                                          std::to_string(version) + " (scripted)"};
    }
    return {};
  }
  bool fire(FaultSite site) override {
    if (!sim.faults_on_) return false;
    std::uint32_t ppm = sim.options_.faults.fault_hook_ppm;
    // A failing disk stops the node: keep it far rarer than the cheap hooks.
    if (site == FaultSite::storage_fails) ppm /= 100;
    return sim.rng_.chance(ppm, 1'000'000);
  }

  Simulation& sim;
  NodeId id;
  SimDisk disk;
  SimClock clock;
  std::uint64_t last_local_ms = 0;
  std::unique_ptr<engine::NodeCore> core;  // null while down
  engine::Host* host = nullptr;            // core's, null while down
  bool dead = false;                   // its disk failed its checksums: stays down
  std::uint64_t paused_until_us = 0;
  std::uint64_t wakeup_generation = 0;
  std::uint64_t wakeup_at_us = 0;
  bool wakeup_pending = false;
  Role last_role = Role::follower;
  Term last_term = 0;
  Index last_commit = 0;
  Index last_index = 0;  // the end of its log, as last observed
  NodeId last_leader = engine::kNoNode;
  std::set<NodeId> last_voters;  // its latest configuration, as last observed
  std::uint64_t last_config_version = 0;  // active configuration version, this process
  std::uint64_t last_staged_version = 0;  // staged (prepared) version at the last observation
  // Chain views: the height this node's backend has seen and its probe reports (up to date
  // for a crashed node too: only the process is down), whether the probe fails, and until when
  // the backend is stalled. Heights only grow.
  std::uint64_t chain_height = 0;
  bool chain_blind = false;
  std::uint64_t chain_stalled_until_us = 0;
  // Ground truth, kept by update_chain_truth(): since when it has been behind (none: it is not).
  std::optional<std::uint64_t> chain_behind_since_us;
  // Its latest real election: the term, and whether it was behind (ground truth) when it sent
  // the vote requests. And when its current leadership began.
  Term campaign_term = 0;
  bool campaign_behind = false;
  std::uint64_t leading_since_us = 0;
};


}  // namespace anya::sim

// A deterministic in-memory cluster of real Hosts over the memory ports: zero-latency FIFO
// delivery, a shared manual clock, and simple faults (isolate, cut a link, crash, restart).
// For unit tests and benchmarks of the engine; the simulator (sim/) is the tool that models
// latency, loss, disks and clocks properly.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/host/host.hpp"
#include "engine/invariants/invariants.hpp"
#include "engine/testing/memory_ports.hpp"

namespace anya::engine::testing {

struct ClusterOptions {
  std::size_t voters = 3;
  std::size_t learners = 0;            // ids voters+1 .. voters+learners
  std::uint64_t seed = 1;
  std::uint64_t heartbeat_interval_ms = 50;
  std::uint64_t election_timeout_ms = 300;
  bool pre_vote = true;
  bool check_quorum = true;
  bool check_invariants = true;        // observe every node after every delivery round
  // Each node's configuration validator (null: accept everything).
  std::function<Status(NodeId, std::uint64_t, std::string_view)> validator;
  std::uint64_t config_deadline_ms = 2000;
  // RaftConfig::snapshot_entries and snapshot_keep_entries of every node (0: no snapshots).
  std::uint64_t snapshot_entries = 0;
  std::uint64_t snapshot_keep_entries = 256;
};

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& options);

  // Move time forward by `ms`, one millisecond at a time, ticking every live node and
  // delivering messages until the network is quiet after each tick.
  void run_for(std::uint64_t ms);
  // Run until some live node is leader and a quorum agrees on it; nullopt after max_ms.
  std::optional<NodeId> run_until_leader(std::uint64_t max_ms);
  // Run until `index` is applied on every live, connected node; false after max_ms.
  bool run_until_applied(Index index, std::uint64_t max_ms);
  // Deliver queued messages until none are left (bounded).
  void deliver_all();

  Result<Index> propose(NodeId on, std::string data);
  std::optional<NodeId> leader() const;  // the live leader of the highest term, if any

  // Faults.
  void isolate(NodeId id);           // drop every message to and from id
  void cut(NodeId a, NodeId b);      // drop messages between a and b, both ways
  void heal();                        // undo every isolate and cut
  // Freeze a node's process: no ticks, no messages in or out, while its clock keeps running
  // (as for SIGSTOP or a long GC pause). The host can still be called directly.
  void pause(NodeId id) { paused_.insert(id); }
  void resume(NodeId id) { paused_.erase(id); }
  void crash(NodeId id);             // stop; lose unsynced writes and queued messages
  void restart(NodeId id);           // start again from durable storage
  // Start a new, empty node that knows no configuration: it joins once the leader adds it.
  void add_node(NodeId id);

  Host& host(NodeId id);
  const Raft& raft(NodeId id) const;
  MemoryStorage& storage(NodeId id) { return *nodes_.at(id).storage; }
  const AppliedLog& applied(NodeId id) const { return nodes_.at(id).applied; }
  bool up(NodeId id) const { return nodes_.at(id).host != nullptr; }
  std::vector<NodeId> ids() const;
  std::uint64_t now_ms() const { return now_ms_; }
  const InvariantChecker& checker() const { return checker_; }
  std::uint64_t messages_delivered() const { return delivered_; }
  RaftConfig config_for(NodeId id) const;
  // Called for every message at the moment its host sends it (before any delivery).
  std::function<void(const Message&)> on_send;

 private:
  struct Validator : ConfigValidator {
    Status validate(std::uint64_t version, std::string_view document) override {
      return fn ? fn(id, version, document) : Status{};
    }
    NodeId id = kNoNode;
    std::function<Status(NodeId, std::uint64_t, std::string_view)> fn;
  };
  struct Node {
    Validator validator;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<CallbackNetwork> network;
    AppliedLog applied;
    ManualClock clock;
    std::unique_ptr<Host> host;  // null while crashed
  };

  bool link_up(NodeId from, NodeId to) const;
  void start(NodeId id);
  void observe_all();

  ClusterOptions options_;
  std::map<NodeId, Node> nodes_;
  std::deque<Message> queue_;
  std::set<NodeId> isolated_;
  std::set<NodeId> paused_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::uint64_t now_ms_ = 0;
  std::uint64_t delivered_ = 0;
  InvariantChecker checker_;
};

}  // namespace anya::engine::testing

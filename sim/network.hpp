// The simulator's network model: for each message, whether it arrives, when, and how often.
// Per directed link: a latency range, loss, duplication, reordering (otherwise FIFO, as over a
// TCP connection), a bounded number of messages in flight, and clogging (everything sent on the
// link waits until the clog clears). Partitions block directed links; they are built by the
// shapes the issue names: isolate one node, majority/minority, one-way, majorities ring, bridge.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/prng.hpp"
#include "engine/base/types.hpp"
#include "sim/options.hpp"

namespace anya::sim {

using engine::NodeId;

enum class PartitionKind { isolate_one, minority, one_way, majorities_ring, bridge, count };
const char* partition_kind_name(PartitionKind kind);

struct Partition {
  PartitionKind kind = PartitionKind::isolate_one;
  std::set<std::pair<NodeId, NodeId>> blocked;  // directed (from, to)
  std::string describe;
};

// Builds a partition of the given shape over nodes 1..n. If `prefer` is a node, it is the one
// singled out (isolated, one-way, the bridge, in the minority) half the time.
Partition make_partition(PartitionKind kind, std::uint32_t n, Prng& rng,
                         NodeId prefer = engine::kNoNode);

class NetworkModel {
 public:
  explicit NetworkModel(const LinkProfile& profile) : profile_(profile) {}

  // Delivery times (virtual µs) for a message sent now on from->to: empty if it is lost,
  // two if it is duplicated. The caller must call delivered(from, to) once per delivery.
  std::vector<std::uint64_t> route(NodeId from, NodeId to, std::uint64_t now_us, Prng& rng,
                                   bool faults_on);
  void delivered(NodeId from, NodeId to);

  void set_partition(Partition p) { partition_ = std::move(p); }
  void heal_partition() { partition_ = Partition{}; }
  bool partitioned() const { return !partition_.blocked.empty(); }
  const Partition& partition() const { return partition_; }
  bool blocked(NodeId from, NodeId to) const { return partition_.blocked.count({from, to}) != 0; }

  void clog(NodeId from, NodeId to, std::uint64_t until_us) {
    link(from, to).clogged_until_us = until_us;
  }
  void unclog_all();

  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t duplicated() const { return duplicated_; }

 private:
  struct Link {
    std::uint64_t last_delivery_us = 0;  // FIFO: nothing arrives before this
    std::uint64_t clogged_until_us = 0;
    std::uint32_t in_flight = 0;
  };

  // Node ids are 1..kMaxSimNodes; the table is indexed by id, so one row and column are spare.
  static constexpr NodeId kMaxNodes = kMaxSimNodes + 1;
  Link& link(NodeId from, NodeId to) {
    ANYA_ASSERT(from < kMaxNodes && to < kMaxNodes);
    return links_[from * kMaxNodes + to];
  }

  LinkProfile profile_;
  std::vector<Link> links_ = std::vector<Link>(kMaxNodes * kMaxNodes);  // [from][to]
  Partition partition_;
  std::uint64_t dropped_ = 0;
  std::uint64_t duplicated_ = 0;
};

}  // namespace anya::sim

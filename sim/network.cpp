#include "sim/network.hpp"

#include <algorithm>

namespace anya::sim {

const char* partition_kind_name(PartitionKind kind) {
  switch (kind) {
    case PartitionKind::isolate_one: return "isolate-one";
    case PartitionKind::minority: return "majority/minority";
    case PartitionKind::one_way: return "one-way";
    case PartitionKind::majorities_ring: return "majorities-ring";
    case PartitionKind::bridge: return "bridge";
    case PartitionKind::count: break;
  }
  return "unknown";
}

namespace {
void block_both(Partition& p, NodeId a, NodeId b) {
  p.blocked.insert({a, b});
  p.blocked.insert({b, a});
}

std::vector<NodeId> shuffled(std::uint32_t n, Prng& rng) {
  std::vector<NodeId> ids;
  for (NodeId id = 1; id <= n; id++) ids.push_back(id);
  for (std::size_t i = ids.size(); i > 1; i--) std::swap(ids[i - 1], ids[rng.below(i)]);
  return ids;
}

std::string list(const std::vector<NodeId>& ids) {
  std::string s;
  for (NodeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return "{" + s + "}";
}
}  // namespace

Partition make_partition(PartitionKind kind, std::uint32_t n, Prng& rng, NodeId prefer) {
  Partition p;
  p.kind = kind;
  if (n < 2) return p;
  std::vector<NodeId> ids = shuffled(n, rng);
  if (prefer != engine::kNoNode && rng.chance(1, 2)) {
    std::swap(ids[0], *std::find(ids.begin(), ids.end(), prefer));
  }
  switch (kind) {
    case PartitionKind::isolate_one: {
      for (NodeId other = 1; other <= n; other++) {
        if (other != ids[0]) block_both(p, ids[0], other);
      }
      p.describe = "isolate " + std::to_string(ids[0]);
      break;
    }
    case PartitionKind::minority: {
      const std::size_t small = rng.between(1, (n - 1) / 2 == 0 ? 1 : (n - 1) / 2);
      std::vector<NodeId> a(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(small));
      std::vector<NodeId> b(ids.begin() + static_cast<std::ptrdiff_t>(small), ids.end());
      for (NodeId x : a) {
        for (NodeId y : b) block_both(p, x, y);
      }
      p.describe = "split " + list(a) + " | " + list(b);
      break;
    }
    case PartitionKind::one_way: {
      // One node can send to nobody but still hears everyone (or the reverse).
      const bool deaf = rng.chance(1, 2);
      for (NodeId other = 1; other <= n; other++) {
        if (other == ids[0]) continue;
        p.blocked.insert(deaf ? std::make_pair(other, ids[0]) : std::make_pair(ids[0], other));
      }
      p.describe = std::string("one-way: ") + std::to_string(ids[0]) +
                   (deaf ? " hears nobody" : " reaches nobody");
      break;
    }
    case PartitionKind::majorities_ring: {
      // Nodes on a ring each reach the neighbours within distance d, chosen so that every node
      // sees a majority (2d + 1 > n / 2) yet no two nodes see the same majority.
      const std::size_t d = (n / 2 + 1) / 2;
      for (std::size_t i = 0; i < n; i++) {
        for (std::size_t j = i + 1; j < n; j++) {
          if (std::min(j - i, n - (j - i)) > d) block_both(p, ids[i], ids[j]);
        }
      }
      p.describe = "majorities ring " + list(ids);
      break;
    }
    case PartitionKind::bridge: {
      // Two halves that can talk only through one bridge node.
      const NodeId bridge = ids[0];
      const std::size_t half = 1 + (n - 1) / 2;
      std::vector<NodeId> a(ids.begin() + 1, ids.begin() + static_cast<std::ptrdiff_t>(half));
      std::vector<NodeId> b(ids.begin() + static_cast<std::ptrdiff_t>(half), ids.end());
      for (NodeId x : a) {
        for (NodeId y : b) block_both(p, x, y);
      }
      p.describe = "bridge " + std::to_string(bridge) + " between " + list(a) + " and " + list(b);
      break;
    }
    case PartitionKind::count: break;
  }
  return p;
}

std::vector<std::uint64_t> NetworkModel::route(NodeId from, NodeId to, std::uint64_t now_us,
                                               Prng& rng, bool faults_on) {
  ANYA_ASSERT(from != to);
  Link& link = this->link(from, to);
  std::vector<std::uint64_t> out;
  if (blocked(from, to) || link.in_flight >= profile_.capacity ||
      (faults_on && rng.chance(profile_.loss_ppm, 1'000'000))) {
    dropped_++;
    return out;
  }
  const int copies = faults_on && rng.chance(profile_.duplicate_ppm, 1'000'000) ? 2 : 1;
  duplicated_ += static_cast<std::uint64_t>(copies - 1);
  for (int c = 0; c < copies; c++) {
    std::uint64_t at = now_us + rng.between(profile_.latency_min_us, profile_.latency_max_us);
    if (link.clogged_until_us > now_us) {
      at = std::max(at, link.clogged_until_us + profile_.latency_min_us);  // waits out the clog
    }
    const bool reorder = faults_on && rng.chance(profile_.reorder_ppm, 1'000'000);
    if (reorder) {
      at += rng.between(0, 4 * profile_.latency_max_us);  // overtaken by later messages
    } else {
      at = std::max(at, link.last_delivery_us);  // FIFO, like one TCP connection
      link.last_delivery_us = at;
    }
    link.in_flight++;
    out.push_back(at);
  }
  return out;
}

void NetworkModel::delivered(NodeId from, NodeId to) {
  Link& link = this->link(from, to);
  ANYA_ASSERT(link.in_flight > 0);
  link.in_flight--;
}

void NetworkModel::unclog_all() {
  for (Link& link : links_) link.clogged_until_us = 0;
}

}  // namespace anya::sim

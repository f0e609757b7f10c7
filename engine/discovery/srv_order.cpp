#include "engine/discovery/srv_order.hpp"

#include <algorithm>
#include <map>

namespace anya::engine::discovery {

std::vector<std::size_t> rfc2782_order(const std::vector<SrvRank>& ranks, Prng& prng) {
  std::map<std::uint16_t, std::vector<std::size_t>> by_priority;
  for (std::size_t i = 0; i < ranks.size(); i++) by_priority[ranks[i].priority].push_back(i);
  std::vector<std::size_t> order;
  order.reserve(ranks.size());
  for (auto& [priority, group] : by_priority) {
    // RFC 2782: weight 0 records first, so that with the running sum they are chosen only
    // when the random number is 0 (or when nothing else is left).
    std::stable_partition(group.begin(), group.end(),
                          [&](std::size_t i) { return ranks[i].weight == 0; });
    while (!group.empty()) {
      std::uint64_t total = 0;
      for (std::size_t i : group) total += ranks[i].weight;
      const std::uint64_t pick = prng.between(0, total);
      std::uint64_t running = 0;
      std::size_t chosen = group.size() - 1;
      for (std::size_t k = 0; k < group.size(); k++) {
        running += ranks[group[k]].weight;
        if (running >= pick) {
          chosen = k;
          break;
        }
      }
      order.push_back(group[chosen]);
      group.erase(group.begin() + static_cast<std::ptrdiff_t>(chosen));
    }
  }
  ANYA_ASSERT(order.size() == ranks.size());
  return order;
}

}  // namespace anya::engine::discovery

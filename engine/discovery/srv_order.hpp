// The order RFC 2782 ("Usage rules") gives to SRV records: ascending priority, and within one
// priority a weighted random order (a record's chance to come next is its weight over the sum
// of the weights left; weight 0 records get a small chance, as the RFC asks). The random numbers
// come from the caller's generator, so a seed gives the same order.
//
// Every target of the SRV set is a peer (every member is a peer, not an alternative server), so
// the order does not filter anything: it orders the proposals, and with them the join seeds a
// joining node lists and the peers shown in status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/base/prng.hpp"

namespace anya::engine::discovery {

struct SrvRank {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
};

// A permutation of 0..ranks.size()-1.
std::vector<std::size_t> rfc2782_order(const std::vector<SrvRank>& ranks, Prng& prng);

}  // namespace anya::engine::discovery

// Quorum math against a brute-force model: for random configurations of 1 to 9 voters, joint
// ones included, the committed index and the vote outcome equal what a direct count gives.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "engine/quorum/quorum.hpp"

namespace anya::engine {
namespace {

std::set<NodeId> gen_voters(std::size_t min_size) {
  const auto size = *rc::gen::inRange<std::size_t>(min_size, 10);  // 0/1 .. 9 voters
  std::set<NodeId> voters;
  while (voters.size() < size) voters.insert(*rc::gen::inRange<NodeId>(1, 13));
  return voters;
}

// Model: the committed index is the largest k such that, in each non-empty half, a majority
// of voters acknowledged at least k.
Index model_committed(const std::vector<std::set<NodeId>>& halves,
                      const std::map<NodeId, Index>& acked) {
  std::set<Index> candidates{0};
  for (const auto& [id, index] : acked) candidates.insert(index);
  Index best = 0;
  for (Index k : candidates) {
    bool all = true;
    for (const auto& half : halves) {
      if (half.empty()) continue;
      std::size_t count = 0;
      for (NodeId v : half) {
        auto it = acked.find(v);
        if (it != acked.end() && it->second >= k) count++;
      }
      all = all && 2 * count > half.size();
    }
    if (all) best = std::max(best, k);
  }
  return best;
}

VoteResult model_vote(const std::set<NodeId>& half, const std::map<NodeId, bool>& votes) {
  if (half.empty()) return VoteResult::won;
  std::size_t yes = 0;
  std::size_t no = 0;
  for (NodeId v : half) {
    auto it = votes.find(v);
    if (it != votes.end()) (it->second ? yes : no)++;
  }
  const std::size_t could_be_yes = half.size() - no;
  if (2 * yes > half.size()) return VoteResult::won;
  if (2 * could_be_yes <= half.size()) return VoteResult::lost;
  return VoteResult::pending;
}

RC_GTEST_PROP(QuorumProps, CommittedIndexMatchesBruteForce, ()) {
  const std::set<NodeId> incoming = gen_voters(1);
  const bool joint = *rc::gen::arbitrary<bool>();
  const std::set<NodeId> outgoing = joint ? gen_voters(1) : std::set<NodeId>{};
  std::map<NodeId, Index> acked;
  for (NodeId id = 1; id <= 12; id++) {
    if (*rc::gen::inRange(0, 4) != 0) acked[id] = *rc::gen::inRange<Index>(0, 20);
  }
  JointConfig config{MajorityConfig(incoming), MajorityConfig(outgoing)};
  const Index fast = config.committed_index([&](NodeId id) -> std::optional<Index> {
    auto it = acked.find(id);
    if (it == acked.end()) return std::nullopt;
    return it->second;
  });
  RC_ASSERT(fast == model_committed({incoming, outgoing}, acked));
}

RC_GTEST_PROP(QuorumProps, VoteResultMatchesBruteForce, ()) {
  const std::set<NodeId> incoming = gen_voters(1);
  const bool joint = *rc::gen::arbitrary<bool>();
  const std::set<NodeId> outgoing = joint ? gen_voters(1) : std::set<NodeId>{};
  std::map<NodeId, bool> votes;
  for (NodeId id = 1; id <= 12; id++) {
    const int answer = *rc::gen::inRange(0, 3);
    if (answer != 0) votes[id] = answer == 1;
  }
  const VoteResult in = model_vote(incoming, votes);
  const VoteResult out = model_vote(outgoing, votes);
  VoteResult expected = VoteResult::pending;
  if (in == VoteResult::won && out == VoteResult::won) expected = VoteResult::won;
  if (in == VoteResult::lost || out == VoteResult::lost) expected = VoteResult::lost;
  JointConfig config{MajorityConfig(incoming), MajorityConfig(outgoing)};
  RC_ASSERT(config.vote_result(votes) == expected);
}

}  // namespace
}  // namespace anya::engine

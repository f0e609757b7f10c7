#include "engine/quorum/quorum.hpp"

#include <gtest/gtest.h>

namespace anya::engine {
namespace {

auto acked_from(std::map<NodeId, Index> acks) {
  return [acks = std::move(acks)](NodeId id) -> std::optional<Index> {
    auto it = acks.find(id);
    if (it == acks.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Majority, CommittedIndexIsTheMedianOfThree) {
  MajorityConfig c({1, 2, 3});
  EXPECT_EQ(c.committed_index(acked_from({{1, 5}, {2, 3}, {3, 9}})), 5u);
  EXPECT_EQ(c.committed_index(acked_from({{1, 5}})), 0u) << "unknown voters count as 0";
}

TEST(Majority, CommittedIndexOfFourNeedsThree) {
  MajorityConfig c({1, 2, 3, 4});
  EXPECT_EQ(c.committed_index(acked_from({{1, 10}, {2, 10}, {3, 4}, {4, 1}})), 4u);
}

TEST(Majority, EmptyConfigIsUnconstrained) {
  MajorityConfig c;
  EXPECT_EQ(c.committed_index(acked_from({})), kUnconstrainedIndex);
  EXPECT_EQ(c.vote_result({}), VoteResult::won);
}

TEST(Majority, VoteOutcomes) {
  MajorityConfig c({1, 2, 3});
  EXPECT_EQ(c.vote_result({{1, true}}), VoteResult::pending);
  EXPECT_EQ(c.vote_result({{1, true}, {2, true}}), VoteResult::won);
  EXPECT_EQ(c.vote_result({{1, true}, {2, false}}), VoteResult::pending);
  EXPECT_EQ(c.vote_result({{1, false}, {2, false}}), VoteResult::lost);
  EXPECT_EQ(c.vote_result({{7, true}, {8, true}}), VoteResult::pending) << "non-voters ignored";
}

TEST(Joint, CommitNeedsBothHalves) {
  JointConfig j(MajorityConfig({1, 2, 3}), MajorityConfig({3, 4, 5}));
  auto acked = acked_from({{1, 9}, {2, 9}, {3, 2}, {4, 7}, {5, 1}});
  EXPECT_EQ(j.committed_index(acked), 2u);
}

TEST(Joint, VoteLostIfEitherHalfLoses) {
  JointConfig j(MajorityConfig({1, 2, 3}), MajorityConfig({4, 5, 6}));
  EXPECT_EQ(j.vote_result({{1, true}, {2, true}, {4, false}, {5, false}}), VoteResult::lost);
  EXPECT_EQ(j.vote_result({{1, true}, {2, true}, {4, true}}), VoteResult::pending);
  EXPECT_EQ(j.vote_result({{1, true}, {2, true}, {4, true}, {5, true}}), VoteResult::won);
}

TEST(Joint, NonJointBehavesLikeIncoming) {
  JointConfig j(MajorityConfig({1, 2, 3}));
  EXPECT_FALSE(j.joint());
  EXPECT_EQ(j.committed_index(acked_from({{1, 4}, {2, 6}, {3, 1}})), 4u);
  EXPECT_EQ(j.describe(), "(1 2 3)");
}

}  // namespace
}  // namespace anya::engine

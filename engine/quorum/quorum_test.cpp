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

// ---- quorum_value: what a quorum holds, counting only known values (the chain view) ------------

TEST(QuorumValue, HighestValueAQuorumHolds) {
  MajorityConfig c({1, 2, 3});
  EXPECT_EQ(c.quorum_value(acked_from({{1, 100}, {2, 110}, {3, 120}})), 110u);
  EXPECT_EQ(c.quorum_value(acked_from({{1, 120}, {2, 120}, {3, 0}})), 120u);
  MajorityConfig five({1, 2, 3, 4, 5});
  EXPECT_EQ(five.quorum_value(acked_from({{1, 9}, {2, 1}, {3, 7}, {4, 3}, {5, 5}})), 5u);
}

TEST(QuorumValue, UnknownValuesHoldNothing) {
  MajorityConfig c({1, 2, 3});
  // Two known: both must hold it. committed_index would count the third as 0 and say 0 here
  // only by accident; quorum_value must say 100, the lower of the two known.
  EXPECT_EQ(c.quorum_value(acked_from({{1, 100}, {2, 150}})), 100u);
  EXPECT_EQ(c.quorum_value(acked_from({{1, 100}})), std::nullopt) << "one of three is no quorum";
  EXPECT_EQ(c.quorum_value(acked_from({})), std::nullopt);
  EXPECT_EQ(c.quorum_value(acked_from({{1, 0}, {2, 0}})), 0u) << "height 0 is a real value";
}

TEST(QuorumValue, EmptyAndJointConfigurations) {
  EXPECT_EQ(MajorityConfig().quorum_value(acked_from({})), kUnconstrainedIndex);
  EXPECT_EQ(JointConfig().quorum_value(acked_from({})), std::nullopt) << "no voters, no quorum";
  JointConfig j(MajorityConfig({1, 2, 3}), MajorityConfig({3, 4, 5}));
  EXPECT_EQ(j.quorum_value(acked_from({{1, 9}, {2, 9}, {3, 2}, {4, 7}, {5, 8}})), 7u);
  EXPECT_EQ(j.quorum_value(acked_from({{1, 9}, {2, 9}, {3, 2}, {4, 7}})), 2u);
  EXPECT_EQ(j.quorum_value(acked_from({{1, 9}, {2, 9}, {4, 7}})), std::nullopt)
      << "the outgoing half has only one known value";
  EXPECT_EQ(JointConfig(MajorityConfig({1, 2, 3})).quorum_value(acked_from({{2, 4}, {3, 6}})),
            4u);
}

TEST(QuorumValue, AgreesWithTheDefinitionOnEveryTinyCase) {
  // The definition, literally: the largest h such that a majority of voters report >= h.
  // Every assignment of {unknown, 0, 1, 2, 3} to 1 to 5 voters.
  for (std::size_t n = 1; n <= 5; n++) {
    std::set<NodeId> ids;
    for (NodeId id = 1; id <= n; id++) ids.insert(id);
    const MajorityConfig c(ids);
    std::size_t combinations = 1;
    for (std::size_t i = 0; i < n; i++) combinations *= 5;
    for (std::size_t code = 0; code < combinations; code++) {
      std::map<NodeId, Index> values;
      std::size_t rest = code;
      for (NodeId id = 1; id <= n; id++, rest /= 5) {
        if (rest % 5 != 0) values[id] = rest % 5 - 1;
      }
      std::optional<std::uint64_t> expected;
      for (std::uint64_t h = 0; h <= 3; h++) {
        std::size_t holding = 0;
        for (const auto& [id, v] : values) holding += v >= h;
        if (holding >= n / 2 + 1) expected = h;
      }
      EXPECT_EQ(c.quorum_value(acked_from(values)), expected) << "n " << n << " code " << code;
    }
  }
}

TEST(Joint, NonJointBehavesLikeIncoming) {
  JointConfig j(MajorityConfig({1, 2, 3}));
  EXPECT_FALSE(j.joint());
  EXPECT_EQ(j.committed_index(acked_from({{1, 4}, {2, 6}, {3, 1}})), 4u);
  EXPECT_EQ(j.describe(), "(1 2 3)");
}

}  // namespace
}  // namespace anya::engine

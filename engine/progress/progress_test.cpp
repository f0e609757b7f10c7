#include "engine/progress/progress.hpp"

#include <gtest/gtest.h>

namespace anya::engine {
namespace {

TEST(Inflights, BoundedWindowFreesUpToAck) {
  Inflights in(3);
  in.add(2);
  in.add(5);
  in.add(9);
  EXPECT_TRUE(in.full());
  in.free_le(5);
  EXPECT_EQ(in.count(), 1u);
  in.free_first();
  EXPECT_EQ(in.count(), 0u);
}

TEST(Progress, ProbePausesAfterOneSend) {
  Progress p(4);
  p.probe_sent = true;
  EXPECT_TRUE(p.is_paused());
  EXPECT_TRUE(p.maybe_update(3));
  EXPECT_FALSE(p.is_paused());
  EXPECT_EQ(p.next, 4u);
}

TEST(Progress, StaleRejectIsIgnored) {
  Progress p(4);
  p.match = 5;
  p.next = 6;
  p.become_replicate();
  EXPECT_FALSE(p.maybe_decrease_to(4, 0)) << "index below match was already acknowledged";
  EXPECT_TRUE(p.maybe_decrease_to(8, 0));
  EXPECT_EQ(p.next, 6u);
}

TEST(Progress, ProbeRejectUsesHintButNotBelowMatch) {
  Progress p(4);
  p.next = 10;
  EXPECT_FALSE(p.maybe_decrease_to(5, 2)) << "not the index we probed";
  EXPECT_TRUE(p.maybe_decrease_to(9, 3));
  EXPECT_EQ(p.next, 4u);
  p.match = 2;
  p.next = 4;
  EXPECT_TRUE(p.maybe_decrease_to(3, 0));
  EXPECT_EQ(p.next, 3u) << "never back below match + 1";
}

TEST(Tracker, CommittedFollowsJointQuorum) {
  ProgressTracker t(4);
  t.reset_config(JointConfig(MajorityConfig({1, 2, 3})), {4}, 1);
  t.at(1).maybe_update(7);
  t.at(2).maybe_update(5);
  t.at(4).maybe_update(9);  // a learner does not count
  EXPECT_EQ(t.committed(), 5u);
}

TEST(Tracker, QuorumActiveCountsSelfAndRecentVoters) {
  ProgressTracker t(4);
  t.reset_config(JointConfig(MajorityConfig({1, 2, 3})), {4}, 1);
  EXPECT_FALSE(t.quorum_active(1, 1000, 300)) << "nobody heard from yet";
  t.at(4).last_active_ms = 900;
  EXPECT_FALSE(t.quorum_active(1, 1000, 300)) << "learners do not make a quorum";
  t.at(3).last_active_ms = 700;
  EXPECT_FALSE(t.quorum_active(1, 1000, 300)) << "700 is a full window ago";
  t.at(3).last_active_ms = 701;
  EXPECT_TRUE(t.quorum_active(1, 1000, 300));
}

TEST(Tracker, FirstVoteOfEachVoterCounts) {
  ProgressTracker t(4);
  t.reset_config(JointConfig(MajorityConfig({1, 2, 3})), {}, 1);
  t.record_vote(1, true);
  t.record_vote(2, false);
  t.record_vote(2, true);
  EXPECT_EQ(t.tally(), VoteResult::pending);
  t.record_vote(3, true);
  EXPECT_EQ(t.tally(), VoteResult::won);
}

}  // namespace
}  // namespace anya::engine

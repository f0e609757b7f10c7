#include "engine/invariants/invariants.hpp"

#include <gtest/gtest.h>

namespace anya::engine {
namespace {

std::vector<Entry> log_of(std::initializer_list<Term> terms) {
  std::vector<Entry> out;
  Index i = 0;
  for (Term t : terms) {
    i++;
    out.push_back(Entry{t, i, EntryType::normal, std::to_string(i * 7919)});
  }
  return out;
}

NodeView view(NodeId id, Term term, Role role, Index commit, const std::vector<Entry>& log) {
  return NodeView{id, term, role, commit, 1, log};
}

TEST(Invariants, HealthyHistoryHasNoViolation) {
  auto a = log_of({1, 1, 2});
  auto b = log_of({1, 1});
  InvariantChecker c;
  c.observe(view(1, 2, Role::leader, 3, a));
  c.observe(view(2, 2, Role::follower, 2, b));
  EXPECT_TRUE(c.ok()) << c.report();
}

TEST(Invariants, TwoLeadersInOneTerm) {
  auto a = log_of({1});
  InvariantChecker c;
  c.observe(view(1, 3, Role::leader, 0, a));
  c.observe(view(2, 3, Role::leader, 0, a));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "election safety");
}

TEST(Invariants, SameIndexAndTermWithDifferentPrefix) {
  auto a = log_of({1, 2});
  auto b = log_of({1, 2});
  b[0].data = "different";
  InvariantChecker c;
  c.observe(view(1, 2, Role::follower, 0, a));
  c.observe(view(2, 2, Role::follower, 0, b));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "log matching");
}

TEST(Invariants, CommittedEntryChanges) {
  auto a = log_of({1, 1});
  auto b = log_of({1, 2});
  InvariantChecker c;
  c.observe(view(1, 2, Role::follower, 2, a));
  c.observe(view(2, 2, Role::follower, 2, b));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "state machine safety");
}

TEST(Invariants, LeaderMissingCommittedEntry) {
  auto a = log_of({1, 1});
  auto b = log_of({1});
  InvariantChecker c;
  c.observe(view(1, 1, Role::follower, 2, a));
  c.observe(view(2, 2, Role::leader, 1, b));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "leader completeness");
}

TEST(Invariants, LeaderAdvancingCommitToAnOldTermEntry) {
  auto a = log_of({1, 2, 3});
  InvariantChecker c;
  c.observe(view(1, 3, Role::leader, 1, a));
  c.observe(view(1, 3, Role::leader, 2, a));  // index 2 holds term 2, leader is in term 3
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "leader commit rule");
  InvariantChecker fine;
  fine.observe(view(1, 3, Role::leader, 1, a));
  fine.observe(view(1, 3, Role::leader, 3, a));  // jumps over index 2 to a term-3 entry
  EXPECT_TRUE(fine.ok()) << fine.report();
}

TEST(Invariants, DurableStateGoingBackAcrossRestart) {
  auto a = log_of({1, 1});
  InvariantChecker c;
  NodeView v = view(1, 3, Role::follower, 2, a);
  v.durable_term = 3;
  v.durable_commit = 2;
  c.observe(v);
  c.on_restart(1, 3, 2);
  EXPECT_TRUE(c.ok()) << c.report();
  c.on_restart(1, 2, 2);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "durable state survives restart");
}

TEST(Invariants, TermGoingBack) {
  auto a = log_of({});
  InvariantChecker c;
  c.observe(view(1, 4, Role::follower, 0, a));
  c.observe(view(1, 3, Role::follower, 0, a));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "monotonic term");
}

TEST(Invariants, RestartMayLowerCommitToDurableValue) {
  auto a = log_of({1, 1, 1});
  InvariantChecker c;
  c.observe(view(1, 1, Role::follower, 3, a));
  c.on_restart(1, 1, 2);
  c.observe(view(1, 1, Role::follower, 2, a));
  EXPECT_TRUE(c.ok()) << c.report();
  c.observe(view(1, 1, Role::follower, 1, a));
  EXPECT_FALSE(c.ok()) << "below the durable commit is a violation";
}

// A node whose log was replaced by a snapshot at index 5 of term 2, from a peer nobody observes,
// followed by entries 6 and 7.
NodeView after_unseen_snapshot(const std::vector<Entry>& tail, Index commit) {
  NodeView v{1, 3, Role::follower, commit, 6, tail};
  v.snapshot_term = 2;
  return v;
}

TEST(Invariants, AnUnseenSnapshotBaseIsAViolationUnlessVouchedFor) {
  std::vector<Entry> tail = {Entry{3, 6, EntryType::normal, "f"},
                             Entry{3, 7, EntryType::normal, "g"}};
  InvariantChecker strict;
  strict.observe(after_unseen_snapshot(tail, 6));
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.violations()[0].invariant, "snapshot safety");

  InvariantChecker vouched;
  vouched.vouch_for_snapshot(5, 2);
  vouched.observe(after_unseen_snapshot(tail, 6));
  EXPECT_TRUE(vouched.ok()) << vouched.report();
  EXPECT_EQ(vouched.highest_committed(), 6u);
  // The checks go on from the base: a committed entry may still never change.
  tail[0].term = 4;  // another entry at committed index 6 (and 7 after it)
  tail[1].term = 4;
  vouched.observe(after_unseen_snapshot(tail, 7));
  ASSERT_FALSE(vouched.ok());
  EXPECT_EQ(vouched.violations()[0].invariant, "state machine safety");
}

TEST(Invariants, VouchingNeverOverridesHistoryAlreadySeen) {
  InvariantChecker c;
  c.observe(view(1, 2, Role::follower, 5, log_of({1, 1, 1, 1, 1})));  // 5 committed, term 1
  c.vouch_for_snapshot(5, 2);  // a snapshot claiming index 5 is of term 2: not taken
  NodeView other{2, 3, Role::follower, 5, 6, {}};
  other.snapshot_term = 2;
  c.observe(other);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.violations()[0].invariant, "snapshot safety");
}

}  // namespace
}  // namespace anya::engine

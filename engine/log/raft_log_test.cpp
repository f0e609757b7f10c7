#include "engine/log/raft_log.hpp"

#include <gtest/gtest.h>

namespace anya::engine {
namespace {

std::vector<Entry> make(std::initializer_list<std::pair<Index, Term>> it) {
  std::vector<Entry> out;
  for (auto [index, term] : it) out.push_back(Entry{term, index, EntryType::normal, "x"});
  return out;
}

RaftLog log_of(std::initializer_list<std::pair<Index, Term>> it, Index committed = 0) {
  RaftLog log;
  log.restore(make(it), committed);
  return log;
}

TEST(RaftLog, EmptyLogHasIndexZeroTermZero) {
  RaftLog log;
  EXPECT_EQ(log.last_index(), 0u);
  EXPECT_EQ(log.last_term(), 0u);
  EXPECT_EQ(log.term_at(0), Term{0});
  EXPECT_FALSE(log.term_at(1).has_value());
}

TEST(RaftLog, UpToDateComparesLastTermThenLength) {
  RaftLog log = log_of({{1, 1}, {2, 2}, {3, 2}});
  EXPECT_TRUE(log.is_up_to_date(1, 3)) << "higher last term wins even if shorter";
  EXPECT_TRUE(log.is_up_to_date(3, 2));
  EXPECT_FALSE(log.is_up_to_date(2, 2)) << "same term, shorter log";
  EXPECT_FALSE(log.is_up_to_date(9, 1));
}

TEST(RaftLog, AppendRejectedWithoutMatchingPrev) {
  RaftLog log = log_of({{1, 1}, {2, 1}});
  EXPECT_FALSE(log.maybe_append(2, 2, 0, make({{3, 2}})).has_value());
  EXPECT_FALSE(log.maybe_append(5, 1, 0, {}).has_value());
  EXPECT_EQ(log.last_index(), 2u);
}

TEST(RaftLog, ConflictTruncatesTailAndUnstablesIt) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 1}}, 1);
  ASSERT_EQ(log.stable_index(), 3u);
  auto last = log.maybe_append(1, 1, 1, make({{2, 2}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log.last_index(), 2u);
  EXPECT_EQ(log.term_at(2), Term{2});
  EXPECT_EQ(log.stable_index(), 1u);
  ASSERT_EQ(log.unstable_entries().size(), 1u);
  EXPECT_EQ(log.unstable_entries()[0].index, 2u);
}

TEST(RaftLog, DuplicateAppendDoesNotTruncateLaterEntries) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 1}});
  auto last = log.maybe_append(0, 0, 0, make({{1, 1}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 1u);
  EXPECT_EQ(log.last_index(), 3u) << "a stale append must not cut off matching entries";
}

TEST(RaftLog, CommitIsBoundedByLastNewEntry) {
  RaftLog log = log_of({{1, 1}});
  ASSERT_TRUE(log.maybe_append(1, 1, 10, make({{2, 1}})).has_value());
  EXPECT_EQ(log.committed(), 2u);
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 4}});
  EXPECT_EQ(log.find_conflict_by_term(5, 3), 4u);
  EXPECT_EQ(log.find_conflict_by_term(5, 1), 2u);
  EXPECT_EQ(log.find_conflict_by_term(9, 4), 5u);
  EXPECT_EQ(log.find_conflict_by_term(5, 0), 0u);
}

TEST(RaftLog, OnlyStableCommittedEntriesAreHandedOutForApply) {
  RaftLog log;
  log.append(make({{1, 1}, {2, 1}}));
  log.commit_to(2);
  EXPECT_FALSE(log.has_next_committed()) << "nothing durable yet";
  log.stable_to(1, 1);
  auto next = log.next_committed_entries(100);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].index, 1u);
  log.applied_to(1);
  log.stable_to(2, 1);
  EXPECT_EQ(log.next_committed_entries(100).size(), 1u);
}

TEST(RaftLog, StableToIgnoresOverwrittenEntries) {
  RaftLog log;
  log.append(make({{1, 1}, {2, 1}}));
  ASSERT_TRUE(log.maybe_append(1, 1, 0, make({{2, 3}})).has_value());
  log.stable_to(2, 1);  // acknowledgment of the old entry 2
  EXPECT_EQ(log.stable_index(), 0u);
  log.stable_to(2, 3);
  EXPECT_EQ(log.stable_index(), 2u);
}

TEST(RaftLog, MaybeCommitNeedsMatchingTerm) {
  RaftLog log = log_of({{1, 1}, {2, 2}});
  EXPECT_FALSE(log.maybe_commit(1, 2));
  EXPECT_TRUE(log.maybe_commit(2, 2));
  EXPECT_EQ(log.committed(), 2u);
}

TEST(RaftLog, SliceRespectsByteAndCountLimitsButReturnsAtLeastOne) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 1}});
  EXPECT_EQ(log.slice(1, 4, 0, 100).size(), 1u);
  EXPECT_EQ(log.slice(1, 4, 2, 100).size(), 2u);
  EXPECT_EQ(log.slice(1, 4, 100, 2).size(), 2u);
  EXPECT_EQ(log.slice(2, 2, 100, 100).size(), 0u);
}

// ---- compaction and snapshots ----

TEST(RaftLogCompaction, CompactDropsEntriesAndKeepsTheLastTerm) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 2}, {4, 2}});
  log.commit_to(4);
  log.applied_to(3);
  log.compact(2);
  EXPECT_EQ(log.first_index(), 3u);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_EQ(log.term_at(2), std::optional<Term>(1));  // the compaction point still answers
  EXPECT_EQ(log.term_at(1), std::nullopt);            // below it: gone
  EXPECT_EQ(log.term_at(3), std::optional<Term>(2));
  EXPECT_EQ(log.entries().size(), 2u);
  EXPECT_TRUE(log.match_term(2, 1));
  EXPECT_FALSE(log.match_term(1, 1));
  log.compact(3);
  EXPECT_EQ(log.snapshot_index(), 3u);
  EXPECT_EQ(log.snapshot_term(), 2u);
  log.check_invariants_full();
}

TEST(RaftLogCompaction, CompactEverythingLeavesAnEmptyLogThatStillMatches) {
  RaftLog log = log_of({{1, 1}, {2, 3}});
  log.commit_to(2);
  log.applied_to(2);
  log.compact(2);
  EXPECT_TRUE(log.entries().empty());
  EXPECT_EQ(log.last_index(), 2u);
  EXPECT_EQ(log.last_term(), 3u);
  // An append right after the compaction point is matched against the remembered term.
  EXPECT_TRUE(log.maybe_append(2, 3, 3, make({{3, 3}})).has_value());
  EXPECT_FALSE(log.maybe_append(1, 1, 3, make({{2, 3}})).has_value()) << "below: unknown";
  EXPECT_EQ(log.last_index(), 3u);
}

TEST(RaftLogCompaction, RestoreFromASnapshotAndTheEntriesAfterIt) {
  RaftLog log;
  log.restore(10, 4, make({{11, 4}, {12, 5}}), 11);
  EXPECT_EQ(log.first_index(), 11u);
  EXPECT_EQ(log.applied(), 10u);
  EXPECT_EQ(log.committed(), 11u);
  EXPECT_EQ(log.stable_index(), 12u);
  EXPECT_EQ(log.term_at(10), std::optional<Term>(4));
  auto next = log.next_committed_entries(100);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].index, 11u);
}

TEST(RaftLogCompaction, RestoreSnapshotDropsAnUnmatchedLog) {
  RaftLog log = log_of({{1, 1}, {2, 1}, {3, 2}});
  log.commit_to(1);
  log.restore_snapshot(5, 3);
  EXPECT_TRUE(log.entries().empty());
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_EQ(log.last_term(), 3u);
  EXPECT_EQ(log.committed(), 5u);
  EXPECT_EQ(log.applied(), 5u);
  EXPECT_EQ(log.stable_index(), 5u);
  EXPECT_FALSE(log.has_unstable());
  EXPECT_TRUE(log.maybe_append(5, 3, 6, make({{6, 3}})).has_value());
  EXPECT_EQ(log.committed(), 6u);
}

}  // namespace
}  // namespace anya::engine

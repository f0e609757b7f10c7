// Snapshots and log compaction: the leader sends its snapshot to a follower that needs
// compacted entries, the follower installs it (or ignores a stale one), a node restarts from
// one; and end to end on the in-memory cluster, with the invariant checker on.
#include <gtest/gtest.h>

#include "engine/raft/raft_fixture.hpp"
#include "engine/testing/cluster.hpp"

namespace anya::engine {
namespace {

using test::Node;
using test::config;
using test::msg;
using test::of_type;

// A leader of {1,2,3} whose log up to its applied index is folded into a snapshot "state" and
// compacted away entirely. Returns the snapshot index.
Index leader_with_compacted_log(Node& n, int proposals) {
  test::elect(n);
  for (int i = 0; i < proposals; i++) {
    EXPECT_TRUE(n.raft.propose("w" + std::to_string(i), n.now_ms).is_ok());
  }
  n.drain();
  Message ok = msg(MessageType::append_response, 2, 1, n.raft.term());
  ok.index = n.raft.log().last_index();
  n.step(ok);  // node 2 has everything: a majority, so it all commits and applies
  const Index applied = n.raft.log().applied();
  EXPECT_EQ(applied, n.raft.log().last_index());
  n.raft.record_snapshot(applied, "state");
  n.raft.compact(applied);
  EXPECT_EQ(n.raft.log().first_index(), applied + 1);
  return applied;
}

// Node 3 says its log matches nothing: the leader backs off below its compaction point.
std::vector<Message> reject_from_3(Node& n, Index rejected) {
  Message no = msg(MessageType::append_response, 3, 1, n.raft.term());
  no.reject = true;
  no.index = rejected;
  no.reject_hint = 0;
  return n.step(no);
}

TEST(Snapshot, LeaderSendsItsSnapshotToAFollowerThatNeedsCompactedEntries) {
  Node n(config(1, {1, 2, 3}));
  const Index s = leader_with_compacted_log(n, 5);
  const Index probe_at = n.raft.tracker().at(3).next - 1;
  auto sent = of_type(reject_from_3(n, probe_at), MessageType::snapshot);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, 3u);
  EXPECT_EQ(sent[0].index, s);
  EXPECT_EQ(sent[0].log_term, *n.raft.log().term_at(s));
  Result<Snapshot> body = decode_snapshot_envelope(sent[0].payload);
  ASSERT_TRUE(body.is_ok()) << body.status().to_string();
  EXPECT_EQ(body->data, "state");
  EXPECT_EQ(body->meta.membership.voters, (std::set<NodeId>{1, 2, 3}));
  EXPECT_EQ(n.raft.tracker().at(3).state, ProgressState::snapshot);
  EXPECT_EQ(n.raft.stats().snapshots_sent, 1u);

  // Paused: a new proposal sends nothing to node 3 until it answers.
  ASSERT_TRUE(n.raft.propose("more", n.now_ms).is_ok());
  for (const Message& m : n.drain()) EXPECT_NE(m.to, 3u) << message_type_name(m.type);

  // Installed: node 3 is fed from the log again, from just after the snapshot.
  Message done = msg(MessageType::append_response, 3, 1, n.raft.term());
  done.index = s;
  auto appends = of_type(n.step(done), MessageType::append);
  ASSERT_EQ(appends.size(), 1u);
  EXPECT_EQ(appends[0].index, s);
  EXPECT_EQ(appends[0].entries.front().index, s + 1);
  EXPECT_EQ(n.raft.tracker().at(3).state, ProgressState::replicate);
}

TEST(Snapshot, AnUnansweredSnapshotIsSentAgainAfterAnElectionTimeout) {
  Node n(config(1, {1, 2, 3}));
  leader_with_compacted_log(n, 3);
  ASSERT_EQ(of_type(reject_from_3(n, n.raft.tracker().at(3).next - 1), MessageType::snapshot)
                .size(), 1u);
  Message hb = msg(MessageType::heartbeat_response, 3, 1, n.raft.term());
  EXPECT_TRUE(of_type(n.step(hb), MessageType::snapshot).empty()) << "still waiting";
  n.advance_ms(100);  // the election timeout of the fixture's config
  EXPECT_EQ(of_type(n.step(hb), MessageType::snapshot).size(), 1u);
  EXPECT_EQ(n.raft.stats().snapshots_sent, 2u);
}

TEST(Snapshot, ASnapshotOverTheFrameLimitIsRefusedAndCounted) {
  Node n(config(1, {1, 2, 3}));
  test::elect(n);
  Message ok = msg(MessageType::append_response, 2, 1, n.raft.term());
  ok.index = n.raft.log().last_index();
  n.step(ok);
  const Index applied = n.raft.log().applied();
  n.raft.record_snapshot(applied, std::string(Limits::max_snapshot_payload_bytes, 'x'));
  n.raft.compact(applied);
  auto sent = reject_from_3(n, n.raft.tracker().at(3).next - 1);
  EXPECT_TRUE(of_type(sent, MessageType::snapshot).empty());
  EXPECT_EQ(n.raft.stats().snapshots_too_large, 1u);
  EXPECT_EQ(n.raft.tracker().at(3).state, ProgressState::probe);
}

Message snapshot_message(Index index, Term log_term, Term term, std::set<NodeId> voters) {
  Message m = msg(MessageType::snapshot, 1, 2, term);
  m.index = index;
  m.log_term = log_term;
  Membership members;
  members.voters = std::move(voters);
  m.payload = encode_snapshot_envelope(members, "leader state");
  return m;
}

TEST(Snapshot, AFollowerInstallsANewerSnapshotAndDropsItsUnmatchedLog) {
  Node n(config(2, {1, 2, 3}),
         RestoredState{{1, kNoNode, 1}, test::entries_with_terms({1, 1, 1}), {}});
  n.raft.step(snapshot_message(10, 2, 3, {1, 2, 3, 4}), n.now_ms);
  ASSERT_TRUE(n.raft.has_ready());
  Ready rd = n.raft.ready();
  ASSERT_TRUE(rd.snapshot.has_value());
  EXPECT_EQ(rd.snapshot->meta.index, 10u);
  EXPECT_EQ(rd.snapshot->meta.term, 2u);
  EXPECT_EQ(rd.snapshot->data, "leader state");
  EXPECT_TRUE(rd.entries.empty());
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->commit, 10u);
  auto replies = of_type(rd.messages, MessageType::append_response);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].reject);
  EXPECT_EQ(replies[0].index, 10u);
  EXPECT_TRUE(rd.committed_entries.empty()) << "the snapshot holds them";
  n.raft.advance(rd);
  const RaftLog& log = n.raft.log();
  EXPECT_EQ(log.first_index(), 11u);
  EXPECT_EQ(log.last_index(), 10u);
  EXPECT_EQ(log.applied(), 10u);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(n.raft.membership().voters, (std::set<NodeId>{1, 2, 3, 4}));
  EXPECT_EQ(n.raft.stats().snapshots_installed, 1u);
  EXPECT_EQ(n.raft.snapshot()->meta.index, 10u);
  // The log continues after the snapshot.
  Message app = msg(MessageType::append, 1, 2, 3);
  app.index = 10;
  app.log_term = 2;
  app.commit = 11;
  app.entries = {Entry{3, 11, EntryType::normal, "next"}};
  auto acks = of_type(n.step(app), MessageType::append_response);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].index, 11u);
  ASSERT_EQ(n.applied.size(), 1u);
  EXPECT_EQ(n.applied[0].index, 11u);
}

TEST(Snapshot, AFollowerIgnoresASnapshotAtOrBelowItsCommitIndex) {
  Node n(config(2, {1, 2, 3}),
         RestoredState{{1, kNoNode, 3}, test::entries_with_terms({1, 1, 1}), {}});
  n.drain();
  auto sent = n.step(snapshot_message(2, 1, 1, {1, 2, 3}));
  EXPECT_EQ(n.raft.stats().snapshots_stale, 1u);
  EXPECT_EQ(n.raft.stats().snapshots_installed, 0u);
  EXPECT_EQ(n.raft.log().last_index(), 3u) << "the log is untouched";
  auto replies = of_type(sent, MessageType::append_response);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].index, 3u) << "tells the leader how far it is";
}

TEST(Snapshot, AFollowerWhoseLogHoldsTheSnapshotOnlyCommits) {
  Node n(config(2, {1, 2, 3}),
         RestoredState{{1, kNoNode, 0}, test::entries_with_terms({1, 1, 1, 1}), {}});
  n.drain();
  auto sent = n.step(snapshot_message(3, 1, 1, {1, 2, 3}));
  EXPECT_EQ(n.raft.stats().snapshots_installed, 0u);
  EXPECT_EQ(n.raft.log().committed(), 3u);
  EXPECT_EQ(n.raft.log().last_index(), 4u) << "the entries after it stay";
  EXPECT_EQ(n.applied.size(), 3u) << "applied from its own log";
  ASSERT_EQ(of_type(sent, MessageType::append_response).size(), 1u);
  EXPECT_EQ(of_type(sent, MessageType::append_response)[0].index, 3u);
}

TEST(Snapshot, AMalformedSnapshotIsRefusedAndCounted) {
  Node n(config(2, {1, 2, 3}));
  Message m = snapshot_message(5, 1, 1, {1, 2, 3});
  m.payload = "\xff\xff";
  auto sent = n.step(m);
  EXPECT_EQ(n.raft.stats().invalid_messages, 1u);
  EXPECT_EQ(n.raft.log().last_index(), 0u);
  EXPECT_TRUE(of_type(sent, MessageType::append_response).empty());
}

TEST(Snapshot, ASnapshotWhoseMembershipHasNoVoterIsRefused) {
  Node n(config(2, {1, 2, 3}));
  auto sent = n.step(snapshot_message(5, 1, 1, {}));
  EXPECT_EQ(n.raft.stats().invalid_messages, 1u);
  EXPECT_EQ(n.raft.stats().snapshots_installed, 0u);
  EXPECT_EQ(n.raft.membership().voters, (std::set<NodeId>{1, 2, 3}));
  EXPECT_TRUE(of_type(sent, MessageType::append_response).empty());
}

TEST(Snapshot, RestartFromASnapshotAndTheEntriesAfterIt) {
  RestoredState restored;
  restored.hard_state = HardState{2, kNoNode, 6};
  Membership members;
  members.voters = {1, 2, 3, 5};
  restored.snapshot = Snapshot{SnapshotMeta{5, 2, members}, "state"};
  // An entry at or below the snapshot may remain in storage: it is ignored.
  restored.entries = {Entry{2, 5, EntryType::normal, "old"}, Entry{2, 6, EntryType::normal, "a"},
                      Entry{2, 7, EntryType::normal, "b"}};
  Node n(config(1, {1, 2, 3}), restored);
  EXPECT_EQ(n.raft.log().first_index(), 6u);
  EXPECT_EQ(n.raft.log().last_index(), 7u);
  EXPECT_EQ(n.raft.log().applied(), 5u);
  EXPECT_EQ(n.raft.log().term_at(5), std::optional<Term>(2));
  EXPECT_EQ(n.raft.membership().voters, (std::set<NodeId>{1, 2, 3, 5})) << "not the bootstrap";
  n.drain();
  ASSERT_EQ(n.applied.size(), 1u);
  EXPECT_EQ(n.applied[0].index, 6u);
}

TEST(Snapshot, CompactionKeepsTheMembershipInEffectAtTheSnapshot) {
  Node n(config(1, {1, 2, 3}));
  test::elect(n);
  Message ok = msg(MessageType::append_response, 2, 1, n.raft.term());
  ok.index = n.raft.log().last_index();
  n.step(ok);
  ASSERT_TRUE(n.raft.propose_conf_change({ConfChangeOp::add_learner, 4, "h4:1"}, n.now_ms)
                  .is_ok());
  n.drain();
  ok.index = n.raft.log().last_index();
  n.step(ok);
  const Index change = n.raft.log().applied();
  ASSERT_TRUE(n.raft.propose("x", n.now_ms).is_ok());
  n.drain();
  ok.index = n.raft.log().last_index();
  n.step(ok);
  const Snapshot& s = n.raft.record_snapshot(n.raft.log().applied(), "st");
  EXPECT_EQ(s.meta.membership.learners, (std::set<NodeId>{4}));
  n.raft.compact(change + 1);
  EXPECT_EQ(n.raft.membership().learners, (std::set<NodeId>{4}));
  EXPECT_TRUE(n.raft.promotable());
}

// End to end: a follower cut off while the others snapshot and compact far past it catches up
// through a snapshot, holds the same state, and a restart restores it from its own.
TEST(SnapshotCluster, AnIsolatedFollowerCatchesUpFromASnapshot) {
  testing::ClusterOptions o;
  o.voters = 3;
  o.snapshot_entries = 10;
  o.snapshot_keep_entries = 2;
  testing::Cluster c(o);
  const std::optional<NodeId> leader = c.run_until_leader(5000);
  ASSERT_TRUE(leader.has_value());
  NodeId lagging = kNoNode;
  for (NodeId id : c.ids()) {
    if (id != *leader) lagging = id;
  }
  c.isolate(lagging);
  Index last = 0;
  for (int i = 0; i < 60; i++) {
    Result<Index> at = c.propose(*leader, "k" + std::to_string(i));
    ASSERT_TRUE(at.is_ok()) << at.status().to_string();
    last = *at;
    c.run_for(2);
  }
  ASSERT_GT(c.raft(*leader).log().first_index(), 1u) << "the leader compacted";
  c.heal();
  ASSERT_TRUE(c.run_until_applied(last, 5000));
  EXPECT_GE(c.raft(lagging).stats().snapshots_installed, 1u);
  EXPECT_EQ(c.applied(lagging).applied(), c.applied(*leader).applied());
  EXPECT_GE(c.host(lagging).snapshots_restored(), 1u);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();

  // Restart from the snapshot and the tail: the same state again.
  const std::vector<Entry> before = c.applied(lagging).applied();
  c.crash(lagging);
  c.restart(lagging);
  c.run_for(200);
  EXPECT_EQ(c.applied(lagging).applied(), before);
  EXPECT_TRUE(c.storage(lagging).durable().snapshot.has_value());
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

}  // namespace
}  // namespace anya::engine

// Beyond the paper: PreVote, CheckQuorum, leader stickiness, leadership transfer, learners and
// crash recovery, mostly on the deterministic in-memory cluster with the invariant checker on.
#include <gtest/gtest.h>

#include "engine/raft/raft_fixture.hpp"
#include "engine/testing/cluster.hpp"

namespace anya::engine {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

ClusterOptions opts(std::size_t voters, std::uint64_t seed = 1) {
  ClusterOptions o;
  o.voters = voters;
  o.seed = seed;
  return o;
}

NodeId other_than(const Cluster& c, std::initializer_list<NodeId> not_these) {
  for (NodeId id : c.ids()) {
    if (std::find(not_these.begin(), not_these.end(), id) == not_these.end()) return id;
  }
  return kNoNode;
}

TEST(Cluster, ElectsOneLeaderAndCommits) {
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    Cluster c(opts(3, seed));
    auto leader = c.run_until_leader(2000);
    ASSERT_TRUE(leader.has_value()) << "seed " << seed;
    auto index = c.propose(*leader, "hello");
    ASSERT_TRUE(index.is_ok());
    ASSERT_TRUE(c.run_until_applied(*index, 1000)) << "seed " << seed;
    for (NodeId id : c.ids()) EXPECT_EQ(c.applied(id).applied().back().data, "hello");
    EXPECT_TRUE(c.checker().ok()) << c.checker().report();
  }
}

TEST(Cluster, SingleVoterElectsItselfAndCommits) {
  Cluster c(opts(1));
  auto leader = c.run_until_leader(1000);
  ASSERT_EQ(leader, NodeId{1});
  auto index = c.propose(1, "solo");
  ASSERT_TRUE(index.is_ok());
  EXPECT_TRUE(c.run_until_applied(*index, 10));
}

// ---- the failure detector ------------------------------------------------------------------

const MemberStatus& member(const std::vector<MemberStatus>& members, NodeId id) {
  for (const MemberStatus& m : members) {
    if (m.id == id) return m;
  }
  ADD_FAILURE() << "no member " << id;
  return members.front();
}

TEST(Liveness, TheLeaderSeesASilentMemberSuspectThenDownAndBackOnlyOnAnswers) {
  Cluster c(opts(5));
  const NodeId leader = *c.run_until_leader(2000);
  const NodeId lone = other_than(c, {leader});
  c.run_for(200);
  for (const MemberStatus& m : c.raft(leader).members()) {
    EXPECT_EQ(m.liveness, Liveness::reachable) << "member " << m.id;
    if (m.id != leader) {
      EXPECT_TRUE(m.rtt_ms.has_value()) << "member " << m.id;
    }
  }
  c.isolate(lone);
  c.run_for(350);  // past one election timeout (300 ms) of silence
  EXPECT_EQ(member(c.raft(leader).members(), lone).liveness, Liveness::suspect);
  c.run_for(700);  // past three
  EXPECT_EQ(member(c.raft(leader).members(), lone).liveness, Liveness::down);
  EXPECT_EQ(c.leader(), leader) << "four of five still follow";
  c.heal();
  c.run_for(300);  // several heartbeats answered in a row
  EXPECT_EQ(member(c.raft(leader).members(), lone).liveness, Liveness::reachable);
  EXPECT_EQ(member(c.raft(leader).members(), lone).liveness_transitions, 3u);
  // A follower judges only its leader; the others it cannot see, so it does not claim to.
  const std::vector<MemberStatus> seen = c.raft(lone).members();
  EXPECT_EQ(member(seen, leader).liveness, Liveness::reachable);
  for (const MemberStatus& m : seen) {
    if (m.id != leader && m.id != lone) {
      EXPECT_EQ(m.liveness, Liveness::unknown) << m.id;
    }
  }
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

// ---- PreVote -------------------------------------------------------------------------------

TEST(PreVote, IsolatedNodeDoesNotInflateItsTerm) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId lone = other_than(c, {leader});
  const Term before = c.raft(lone).term();
  c.isolate(lone);
  c.run_for(5000);
  EXPECT_EQ(c.raft(lone).term(), before) << "pre-votes fail, so the real term never moves";
  EXPECT_GT(c.raft(lone).stats().pre_votes_started, 5u);
  EXPECT_EQ(c.raft(lone).stats().elections_started, 0u);
}

TEST(PreVote, RejoiningNodeDoesNotDisruptTheLeader) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  const Term term = c.raft(leader).term();
  NodeId lone = other_than(c, {leader});
  c.isolate(lone);
  c.run_for(3000);
  c.heal();
  c.run_for(2000);
  EXPECT_EQ(c.leader(), leader);
  EXPECT_EQ(c.raft(leader).term(), term);
  EXPECT_EQ(c.raft(lone).leader(), leader) << "the minority side is brought back";
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(PreVote, PreCandidateForgetsItsLeader) {
  test::Node n(test::config(1, {1, 2, 3}, /*pre_vote=*/true, /*check_quorum=*/true));
  n.step(test::msg(MessageType::heartbeat, 2, 1, 3));
  ASSERT_EQ(n.raft.leader(), 2u);
  n.fire_election_timer();
  EXPECT_EQ(n.raft.role(), Role::pre_candidate);
  EXPECT_EQ(n.raft.leader(), kNoNode);
  EXPECT_EQ(n.raft.term(), 3u) << "a pre-candidate keeps its term";
  // Having forgotten the leader, it now grants a pre-vote instead of citing stickiness.
  Message pv = test::msg(MessageType::pre_vote, 3, 1, 4);
  auto r = n.step(pv);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].reject);
}

TEST(PreVote, GrantedPreVoteDoesNotChangeVoterState) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  auto r = n.step(test::msg(MessageType::pre_vote, 2, 1, 5));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].reject);
  EXPECT_EQ(r[0].term, 5u);
  EXPECT_EQ(n.raft.term(), 0u);
  EXPECT_EQ(n.raft.vote(), kNoNode);
}

// ---- CheckQuorum and stickiness ------------------------------------------------------------

TEST(CheckQuorum, LeaderWithoutQuorumStepsDownWithinOneElectionTimeout) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.isolate(leader);
  std::uint64_t waited = 0;
  while (c.raft(leader).is_leader() && waited < 1000) {
    c.run_for(1);
    waited++;
  }
  EXPECT_FALSE(c.raft(leader).is_leader());
  EXPECT_LE(waited, 300u + 1) << "one election timeout (300 ms)";
  EXPECT_EQ(c.raft(leader).stats().steps_down_check_quorum, 1u);
}

TEST(CheckQuorum, MajorityElectsNewLeaderAfterLeaderIsolated) {
  Cluster c(opts(5));
  NodeId old = *c.run_until_leader(2000);
  c.isolate(old);
  c.run_for(1);
  auto fresh = c.run_until_leader(3000);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_NE(*fresh, old);
  auto index = c.propose(*fresh, "after");
  ASSERT_TRUE(index.is_ok());
  EXPECT_TRUE(c.run_until_applied(*index, 1000));
  c.heal();
  c.run_for(1000);
  EXPECT_EQ(c.raft(old).leader(), *fresh);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Stickiness, FollowerHearingLeaderIgnoresHigherTermVote) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 2, 1, 3));
  auto r = n.step(test::msg(MessageType::vote, 3, 1, 9));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(n.raft.term(), 3u) << "in lease: the disruptive term is not adopted";
  EXPECT_EQ(n.raft.stats().votes_ignored_in_lease, 1u);
  n.advance_ms(100);  // a full election timeout without the leader: lease over
  r = n.step(test::msg(MessageType::vote, 3, 1, 9));
  EXPECT_EQ(n.raft.term(), 9u);
}

TEST(Stickiness, LeaderUnreachableEndsTheLeaseAtOnce) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 2, 1, 3));
  n.raft.leader_unreachable(n.now_ms);
  EXPECT_EQ(n.raft.term(), 3u) << "forgetting the lease changes no durable state";
  EXPECT_EQ(n.raft.role(), Role::follower);
  auto r = n.step(test::msg(MessageType::vote, 3, 1, 4));
  EXPECT_EQ(n.raft.stats().votes_ignored_in_lease, 0u);
  EXPECT_EQ(n.raft.term(), 4u) << "the vote is considered without waiting an election timeout";
  // A later heartbeat from a live leader restores stickiness.
  n.step(test::msg(MessageType::heartbeat, 2, 1, 4));
  n.step(test::msg(MessageType::vote, 3, 1, 9));
  EXPECT_EQ(n.raft.stats().votes_ignored_in_lease, 1u);
}

TEST(Stickiness, TransferVoteIsNotIgnored) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 2, 1, 3));
  Message v = test::msg(MessageType::vote, 3, 1, 4);
  v.transfer = true;
  auto r = n.step(v);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].reject);
}

TEST(Stickiness, StaleLeaderLearnsNewTermFromAppendResponse) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 2, 1, 5));
  auto r = n.step(test::msg(MessageType::heartbeat, 3, 1, 4));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, MessageType::append_response);
  EXPECT_EQ(r[0].term, 5u);
}

// ---- Leadership transfer -------------------------------------------------------------------

TEST(Transfer, CaughtUpTargetBecomesLeader) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId target = other_than(c, {leader});
  c.run_for(200);
  ASSERT_TRUE(c.host(leader).transfer_leadership(target).is_ok());
  c.deliver_all();
  c.run_for(50);
  EXPECT_EQ(c.leader(), target);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Transfer, LaggingTargetIsCaughtUpFirst) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId target = other_than(c, {leader});
  c.isolate(target);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.propose(leader, "x").is_ok());
  c.run_for(100);
  c.heal();
  ASSERT_TRUE(c.host(leader).transfer_leadership(target).is_ok());
  c.run_for(200);
  EXPECT_EQ(c.leader(), target);
  EXPECT_GE(c.raft(target).log().last_index(), 6u);
}

TEST(Transfer, ProposalsAreRefusedWhileTransferring) {
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  ASSERT_TRUE(n.raft.transfer_leadership(2, n.now_ms).is_ok());
  auto r = n.raft.propose("x", n.now_ms);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::busy);
}

TEST(Transfer, AbortsAfterAnElectionTimeout) {
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  ASSERT_TRUE(n.raft.transfer_leadership(2, n.now_ms).is_ok());
  n.advance_ms(101);
  EXPECT_EQ(n.raft.transfer_target(), kNoNode);
  EXPECT_TRUE(n.raft.propose("x", n.now_ms).is_ok());
}

TEST(Transfer, RejectsNonVoterAndSelf) {
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  EXPECT_EQ(n.raft.transfer_leadership(1, n.now_ms).code(), Errc::invalid_argument);
  EXPECT_EQ(n.raft.transfer_leadership(9, n.now_ms).code(), Errc::invalid_argument);
}

TEST(Transfer, TimeoutNowSkipsPreVote) {
  test::Node n(test::config(2, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 1, 2, 3));
  auto sent = n.step(test::msg(MessageType::timeout_now, 1, 2, 3));
  EXPECT_EQ(n.raft.role(), Role::candidate);
  EXPECT_EQ(n.raft.term(), 4u);
  auto votes = test::of_type(sent, MessageType::vote);
  ASSERT_EQ(votes.size(), 2u);
  EXPECT_TRUE(votes[0].transfer);
}

// ---- Learners ------------------------------------------------------------------------------

TEST(Learner, ReceivesTheLogButNeverCountsOrCampaigns) {
  ClusterOptions o = opts(3);
  o.learners = 1;  // node 4
  Cluster c(o);
  NodeId leader = *c.run_until_leader(2000);
  auto index = c.propose(leader, "to-learner");
  ASSERT_TRUE(index.is_ok());
  ASSERT_TRUE(c.run_until_applied(*index, 1000));
  EXPECT_EQ(c.applied(4).applied().back().data, "to-learner");
  EXPECT_EQ(c.raft(4).role(), Role::learner);
  // Isolate two voters: leader + learner is not a quorum, so nothing new commits.
  NodeId v1 = other_than(c, {leader, 4});
  NodeId v2 = other_than(c, {leader, 4, v1});
  c.isolate(v1);
  c.isolate(v2);
  auto stuck = c.propose(leader, "no-quorum");
  ASSERT_TRUE(stuck.is_ok());
  c.run_for(100);
  EXPECT_LT(c.raft(leader).log().committed(), *stuck);
  // And the learner never starts an election, whatever happens.
  c.run_for(3000);
  EXPECT_EQ(c.raft(4).stats().pre_votes_started + c.raft(4).stats().elections_started, 0u);
}

// ---- Crash and restart ---------------------------------------------------------------------

TEST(Recovery, CommittedEntriesSurviveLeaderCrash) {
  Cluster c(opts(3, 7));
  NodeId leader = *c.run_until_leader(2000);
  Index last = 0;
  for (int i = 0; i < 10; i++) last = *c.propose(leader, "v" + std::to_string(i));
  ASSERT_TRUE(c.run_until_applied(last, 1000));
  c.crash(leader);
  auto fresh = c.run_until_leader(3000);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_NE(*fresh, leader);
  EXPECT_GE(c.raft(*fresh).log().committed(), last);
  c.restart(leader);
  auto index = c.propose(*fresh, "after-restart");
  ASSERT_TRUE(index.is_ok());
  ASSERT_TRUE(c.run_until_applied(*index, 2000));
  std::size_t commands = 0;  // application entries: the no-ops of each term are not applied
  for (Index i = 1; i <= *index; i++) {
    commands += c.raft(*fresh).log().at(i).type == EntryType::normal;
  }
  EXPECT_EQ(c.applied(leader).applied().size(), commands) << "restarted node re-applies all";
  EXPECT_EQ(commands, 11u);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Recovery, RepeatedCrashesKeepInvariants) {
  Cluster c(opts(5, 11));
  Prng rng(99);
  for (int round = 0; round < 30; round++) {
    auto leader = c.run_until_leader(5000);
    ASSERT_TRUE(leader.has_value()) << "round " << round;
    (void)c.propose(*leader, "r" + std::to_string(round));
    c.run_for(rng.between(0, 200));
    NodeId victim = rng.between(1, 5);
    if (c.up(victim)) {
      c.crash(victim);
      c.run_for(rng.between(0, 400));
      c.restart(victim);
    }
  }
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
  EXPECT_GT(c.checker().highest_committed(), 20u);
}

}  // namespace
}  // namespace anya::engine

namespace anya::engine {
namespace {

// ---- Bad input from peers: refused, counted, and nothing durable changes ---------------------

TEST(RemoteInput, ImpossibleTermIsRefused) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::timeout_now, 2, 1, UINT64_MAX));
  n.step(test::msg(MessageType::heartbeat_response, 2, 1, Limits::max_term + 1));
  EXPECT_EQ(n.raft.term(), 0u);
  EXPECT_EQ(n.persisted.term, 0u);
  EXPECT_EQ(n.raft.stats().invalid_messages, 2u);
  n.fire_election_timer();  // and it can still campaign normally
  EXPECT_EQ(n.raft.role(), Role::pre_candidate);
}

TEST(RemoteInput, ImpossibleIndexesAreRefused) {
  test::Node n(test::config(1, {1, 2, 3}));
  Message snapshot = test::msg(MessageType::snapshot, 2, 1, 1);
  snapshot.index = UINT64_MAX;  // appending after it would wrap the index
  snapshot.log_term = 1;
  Membership members;
  members.voters = {1, 2, 3};
  snapshot.payload = encode_snapshot_envelope(members, "");
  Message commit = test::msg(MessageType::heartbeat, 2, 1, 1);
  commit.commit = Limits::max_index + 1;
  Message wraps = test::msg(MessageType::append, 2, 1, 1);
  wraps.index = Limits::max_index;  // its entry would be at max_index + 1
  wraps.entries = {Entry{1, Limits::max_index + 1, EntryType::normal, "x"}};
  Message hint = test::msg(MessageType::append_response, 2, 1, 1);
  hint.reject = true;
  hint.reject_hint = Limits::max_index + 1;
  for (const Message& m : {snapshot, commit, wraps, hint}) EXPECT_TRUE(n.step(m).empty());
  EXPECT_EQ(n.raft.stats().invalid_messages, 4u);
  EXPECT_EQ(n.raft.term(), 0u) << "not even the term of a refused message is taken";
  EXPECT_EQ(n.raft.log().last_index(), 0u);
  EXPECT_EQ(n.raft.log().committed(), 0u);
}

TEST(RemoteInput, AnEntryOfTermZeroIsRefused) {
  // Leader of term 1 with entries 1..3 of term 1 (no-op, a, b), then a peer claiming term 4
  // sends entries 1..2 of term 0 and 3 of term 1: taking them would hold (3, term 1) again
  // after a different log prefix.
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  ASSERT_TRUE(n.raft.is_leader());
  ASSERT_EQ(n.raft.term(), 1u);
  ASSERT_TRUE(n.raft.propose("a", n.now_ms).is_ok());
  ASSERT_TRUE(n.raft.propose("b", n.now_ms).is_ok());
  const std::vector<Entry> before(n.raft.log().entries().begin(), n.raft.log().entries().end());
  ASSERT_EQ(before.size(), 3u);
  Message app = test::msg(MessageType::append, 3, 1, 4);
  app.entries = {Entry{0, 1, EntryType::normal, "x"}, Entry{0, 2, EntryType::normal, "y"},
                 Entry{1, 3, EntryType::normal, "z"}};
  n.step(app);
  EXPECT_EQ(n.raft.stats().invalid_messages, 1u);
  const std::vector<Entry> after(n.raft.log().entries().begin(), n.raft.log().entries().end());
  EXPECT_EQ(after, before);
}

TEST(RemoteInput, EntryTermAboveMessageTermIsRefused) {
  test::Node n(test::config(1, {1, 2, 3}));
  Message app = test::msg(MessageType::append, 2, 1, 1);
  app.entries = {Entry{9, 1, EntryType::normal, "x"}};
  EXPECT_TRUE(n.step(app).empty());
  EXPECT_EQ(n.raft.log().last_index(), 0u);
  EXPECT_EQ(n.raft.stats().invalid_messages, 1u);
}

TEST(RemoteInput, DecreasingEntryTermsAreRefused) {
  test::Node n(test::config(1, {1, 2, 3}));
  Message app = test::msg(MessageType::append, 2, 1, 5);
  app.entries = {Entry{5, 1, EntryType::normal, "a"}, Entry{3, 2, EntryType::normal, "b"}};
  EXPECT_TRUE(n.step(app).empty());
  EXPECT_EQ(n.raft.log().last_index(), 0u);
  app.entries = {Entry{4, 1, EntryType::normal, "a"}};
  app.index = 0;
  auto ok = test::of_type(n.step(app), MessageType::append_response);
  ASSERT_EQ(ok.size(), 1u) << "a well-formed append from the same leader still works";
  EXPECT_FALSE(ok[0].reject);
}

TEST(RemoteInput, TimeoutNowFromANonLeaderIsIgnored) {
  test::Node n(test::config(2, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::heartbeat, 1, 2, 3));
  n.step(test::msg(MessageType::timeout_now, 3, 2, 3));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.term(), 3u);
  EXPECT_EQ(n.raft.leader(), 1u);
}

TEST(Config, NodesWithTheSameSeedDrawDifferentTimeouts) {
  RaftConfig a = test::config(1, {1, 2, 3});
  RaftConfig b = test::config(2, {1, 2, 3});
  a.random_seed = b.random_seed = 42;
  Raft ra(a, RestoredState{}, 0);
  Raft rb(b, RestoredState{}, 0);
  EXPECT_NE(ra.election_deadline_ms(), rb.election_deadline_ms());
}

TEST(Config, ValidateNamesTheBadField) {
  RaftConfig c = test::config(1, {1, 2, 3});
  c.max_append_bytes = Limits::max_frame_bytes;
  Status s = c.validate();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("max_append_bytes"), std::string::npos);
  c = test::config(1, {1, 2, 3});
  c.election_timeout_ms = c.heartbeat_interval_ms;
  EXPECT_NE(c.validate().message().find("election_timeout_ms"), std::string::npos);
  c = test::config(1, {1, 2, 3});
  c.learners = {3};
  EXPECT_NE(c.validate().message().find("learners"), std::string::npos);
}

}  // namespace
}  // namespace anya::engine

namespace anya::engine {
namespace {

TEST(ProposeBatch, OneAppendPerFollowerCarriesTheWholeBatch) {
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  const Index before = n.raft.log().last_index();
  // Move both followers to replicate state so appends carry entries optimistically.
  for (NodeId f : {2, 3}) {
    Message ok = test::msg(MessageType::append_response, f, 1, n.raft.term());
    ok.index = before;
    n.step(ok);
  }
  Result<Index> first = n.raft.propose_batch({"a", "b", "c"}, n.now_ms);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(*first, before + 1);
  auto sent = test::of_type(n.drain(), MessageType::append);
  ASSERT_EQ(sent.size(), 2u) << "one append per follower";
  for (const Message& m : sent) {
    ASSERT_EQ(m.entries.size(), 3u);
    EXPECT_EQ(m.entries[0].index, before + 1);
    EXPECT_EQ(m.entries[2].data, "c");
  }
  EXPECT_EQ(n.raft.log().last_index(), before + 3);
}

TEST(ProposeBatch, AllOrNothing) {
  test::Node n(test::config(1, {1, 2, 3}));
  test::elect(n);
  const Index before = n.raft.log().last_index();
  std::vector<std::string> batch = {"ok", std::string(Limits::max_entry_data_bytes + 1, 'x')};
  Result<Index> r = n.raft.propose_batch(std::move(batch), n.now_ms);
  EXPECT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  EXPECT_EQ(n.raft.log().last_index(), before) << "nothing of a refused batch is appended";
}

}  // namespace
}  // namespace anya::engine

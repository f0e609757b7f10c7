// Membership changes, split-brain handling and health-gated leadership.
#include "engine/raft/membership.hpp"

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

// Propose on the leader, retrying while it answers busy (one change at a time, or the leader
// has not committed in its term yet), then wait until every live node applied it.
Result<Index> change(Cluster& c, const ConfChange& ch) {
  for (int attempt = 0; attempt < 200; attempt++) {
    auto leader = c.run_until_leader(3000);
    if (!leader) return Status(Errc::not_leader, "no leader");
    Result<Index> index = c.host(*leader).propose_conf_change(ch);
    c.deliver_all();
    if (index) {
      // Wait for the leader to commit it. (A removed node never learns of its removal: the
      // leader stops replicating to it as soon as the change is appended.)
      for (int waited = 0; waited < 2000 && c.raft(*leader).log().committed() < *index; waited++) {
        c.run_for(1);
      }
      if (c.raft(*leader).log().committed() < *index) return Status(Errc::busy, "not committed");
      return index;
    }
    if (index.status().code() != Errc::busy && index.status().code() != Errc::not_leader) {
      return index;
    }
    c.run_for(10);
  }
  return Status(Errc::busy, "gave up");
}

TEST(ConfChangeCodec, RoundTripAndRejects) {
  ConfChangeRecord c;
  c.change.op = ConfChangeOp::add_learner;
  c.change.node = 7;
  c.change.address = "10.0.0.7:7800";
  c.result.voters = {1, 2, 3};
  c.result.learners = {7};
  c.result.addresses = {{1, "a:1"}, {7, "10.0.0.7:7800"}};
  auto back = decode_conf_change(encode_conf_change(c));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, c);
  std::string bytes = encode_conf_change(c);
  for (std::size_t cut = 0; cut < bytes.size(); cut++) {
    EXPECT_FALSE(decode_conf_change(bytes.substr(0, cut)).is_ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(decode_conf_change(bytes + "x").is_ok()) << "trailing bytes";
  std::string bad_op = bytes;
  bad_op[0] = 9;
  auto r = decode_conf_change(bad_op);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("unknown op 9"), std::string::npos);
  EXPECT_NE(r.status().message().find("byte offset"), std::string::npos);
  ConfChangeRecord zero = c;
  zero.change.node = 0;
  EXPECT_FALSE(decode_conf_change(encode_conf_change(zero)).is_ok());
}

TEST(ConfChangeCodec, InconsistentRecordIsSkippedEverywhere) {
  // A record whose result does not follow from the change is ignored and counted.
  test::Node n(test::config(2, {1, 2, 3}));
  ConfChangeRecord lie;
  lie.change.op = ConfChangeOp::add_learner;
  lie.change.node = 9;
  lie.change.address = "h:9";
  lie.result.voters = {9};
  Message app = test::msg(MessageType::append, 1, 2, 1);
  app.entries = {Entry{1, 1, EntryType::config_change, encode_conf_change(lie)}};
  n.step(app);
  EXPECT_EQ(n.raft.membership().voters, (std::set<NodeId>{1, 2, 3}));
  EXPECT_EQ(n.raft.stats().invalid_conf_changes, 1u);
}

TEST(MembershipCheck, NamesWhatIsWrong) {
  Membership m{{1, 2, 3}, {4}, {}};
  EXPECT_NE(m.check({ConfChangeOp::add_learner, 2, "x:1"}).message().find("already a member"),
            std::string::npos);
  EXPECT_NE(m.check({ConfChangeOp::add_learner, 9, ""}).message().find("address"),
            std::string::npos);
  EXPECT_NE(m.check({ConfChangeOp::promote, 3, ""}).message().find("not a learner"),
            std::string::npos);
  EXPECT_NE(m.check({ConfChangeOp::remove, 8, ""}).message().find("not a member"),
            std::string::npos);
  Membership one{{1}, {}, {}};
  EXPECT_NE(one.check({ConfChangeOp::remove, 1, ""}).message().find("last voter"),
            std::string::npos);
  EXPECT_TRUE(m.check({ConfChangeOp::promote, 4, ""}).is_ok());
}

TEST(Membership, JoinAsLearnerCatchUpThenPromote) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  for (int i = 0; i < 30; i++) ASSERT_TRUE(c.propose(leader, "before-join").is_ok());
  c.add_node(4);
  auto added = change(c, {ConfChangeOp::add_learner, 4, "127.0.0.1:7804"});
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  ASSERT_TRUE(c.run_until_applied(*added, 2000));
  EXPECT_EQ(c.raft(4).role(), Role::learner);
  EXPECT_EQ(c.applied(4).applied().size(), 30u) << "the learner caught up on the whole log";
  auto promoted = change(c, {ConfChangeOp::promote, 4, ""});
  ASSERT_TRUE(promoted.is_ok()) << promoted.status().to_string();
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.raft(id).membership().voters, (std::set<NodeId>{1, 2, 3, 4})) << "node " << id;
  }
  EXPECT_EQ(c.raft(4).membership().addresses.at(4), "127.0.0.1:7804");
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Membership, PromoteRefusedUntilTheLearnerCatchesUp) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.add_node(4);
  c.isolate(4);  // it cannot catch up
  ASSERT_TRUE(change(c, {ConfChangeOp::add_learner, 4, "h:4"}).is_ok());
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.propose(leader, "x").is_ok());
  c.run_for(100);
  auto r = c.host(*c.leader()).propose_conf_change({ConfChangeOp::promote, 4, ""});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::busy);
  EXPECT_NE(r.status().message().find("catching up"), std::string::npos);
}

TEST(Membership, OneChangeAtATime) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  c.isolate(2);
  c.isolate(3);  // nothing can commit now
  ASSERT_TRUE(c.host(leader).propose_conf_change({ConfChangeOp::add_learner, 4, "h:4"}).is_ok());
  auto second = c.host(leader).propose_conf_change({ConfChangeOp::add_learner, 5, "h:5"});
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Errc::busy);
  EXPECT_NE(second.status().message().find("one change at a time"), std::string::npos);
}

TEST(Membership, RemovedFollowerCannotDisrupt) {
  Cluster c(opts(4));
  NodeId leader = *c.run_until_leader(2000);
  NodeId victim = leader == 4 ? 3 : 4;
  ASSERT_TRUE(change(c, {ConfChangeOp::remove, victim, ""}).is_ok());
  c.run_for(200);
  NodeId now_leader = *c.run_until_leader(2000);
  const Term term = c.raft(now_leader).term();
  // The removed node keeps its old log and timers; whatever it sends is ignored.
  c.run_for(5000);
  EXPECT_EQ(c.raft(now_leader).term(), term) << "a removed node must not disrupt";
  EXPECT_EQ(c.leader(), now_leader);
  EXPECT_FALSE(c.raft(now_leader).membership().contains(victim));
  // It never heard of its removal, so it keeps campaigning; the members ignore it.
  EXPECT_GT(c.raft(victim).stats().pre_votes_started, 0u);
  std::uint64_t ignored = 0;
  for (NodeId id : c.ids()) {
    if (id != victim) ignored += c.raft(id).stats().non_member_messages;
  }
  EXPECT_GT(ignored, 0u);
}

TEST(Membership, RemovedLeaderStepsDownOnceTheChangeCommits) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  const std::uint64_t campaigns_before = c.raft(leader).stats().pre_votes_started;
  auto r = c.host(leader).propose_conf_change({ConfChangeOp::remove, leader, ""});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  c.deliver_all();
  c.run_for(50);
  EXPECT_FALSE(c.raft(leader).is_leader());
  auto fresh = c.run_until_leader(3000);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_NE(*fresh, leader);
  auto index = c.propose(*fresh, "after");
  ASSERT_TRUE(index.is_ok());
  c.run_for(100);
  EXPECT_GE(c.raft(*fresh).log().committed(), *index) << "two voters commit on their own";
  c.run_for(3000);
  EXPECT_EQ(c.raft(leader).stats().pre_votes_started, campaigns_before)
      << "no longer a voter: never campaigns again";
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Membership, LeaderLosingLeadershipBeforeItsRemovalCommitsStillLetsTheClusterRecover) {
  // Two voters; the leader removes itself but the entry reaches nobody before it loses
  // leadership. The survivor (old configuration: needs both votes) must not wait forever:
  // the removed node may still campaign until its removal commits. (Found by the simulator:
  // swarm seeds 112, 654, 987.)
  Cluster c(opts(2));
  NodeId leader = *c.run_until_leader(2000);
  NodeId other = leader == 1 ? 2 : 1;
  c.run_for(200);
  c.isolate(other);
  auto r = c.host(leader).propose_conf_change({ConfChangeOp::remove, leader, ""});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  c.run_for(1000);
  EXPECT_FALSE(c.raft(leader).is_leader()) << "no quorum in its new configuration";
  c.heal();
  c.run_for(5000);
  EXPECT_EQ(c.raft(other).membership().voters, std::set<NodeId>{other});
  EXPECT_TRUE(c.raft(other).is_leader());
  EXPECT_GE(c.raft(other).log().committed(), *r);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

// "3 to 7 voters and many more members": 7 voters and 40 learners. The learners receive the
// log, report their health, never campaign, and never make a quorum: with 4 of the 7 voters
// down, 3 voters and 40 learners acknowledge a leader's entry and it still does not commit,
// and the leader steps down (CheckQuorum counts voters only).
TEST(Membership, SevenVotersAndFortyLearners) {
  ClusterOptions o = opts(7);
  o.learners = 40;
  Cluster c(o);
  ASSERT_EQ(c.ids().size(), 47u);
  NodeId leader = *c.run_until_leader(3000);
  ASSERT_LE(leader, 7u) << "only a voter leads";
  auto first = c.propose(leader, "to everyone");
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_TRUE(c.run_until_applied(*first, 2000)) << "every learner applies the log";
  ASSERT_TRUE(c.host(8).set_healthy(false).is_ok());
  c.run_for(200);  // the leader learns a learner's health from its responses
  std::size_t learners = 0;
  for (const MemberStatus& m : c.raft(leader).members()) {
    EXPECT_EQ(m.voter, m.id <= 7) << "node " << m.id;
    if (m.voter) continue;
    learners++;
    EXPECT_TRUE(m.reachable) << "learner " << m.id;
    EXPECT_EQ(m.match, c.raft(leader).log().last_index()) << "learner " << m.id;
    EXPECT_EQ(m.healthy, m.id != 8) << "learner " << m.id;
  }
  EXPECT_EQ(learners, 40u);
  for (NodeId l = 8; l <= 47; l++) {
    EXPECT_EQ(c.raft(l).role(), Role::learner) << "learner " << l;
    EXPECT_EQ(c.raft(l).stats().pre_votes_started + c.raft(l).stats().elections_started, 0u);
  }

  // Four voters down, the leader not among them: it keeps 2 voters and 40 learners.
  std::vector<NodeId> down;
  for (NodeId v = 1; v <= 7 && down.size() < 4; v++) {
    if (v != leader) down.push_back(v);
  }
  for (NodeId v : down) c.crash(v);
  const Index committed = c.raft(leader).log().committed();
  auto orphan = c.propose(leader, "no quorum for this");
  ASSERT_TRUE(orphan.is_ok()) << orphan.status().to_string();
  c.run_for(100);
  for (NodeId l = 8; l <= 47; l++) {
    EXPECT_EQ(c.raft(l).log().last_index(), *orphan) << "learner " << l << " has the entry";
  }
  c.run_for(1500);
  for (NodeId id : c.ids()) {
    if (!c.up(id)) continue;
    EXPECT_EQ(c.raft(id).log().committed(), committed) << "node " << id << " committed it";
    EXPECT_FALSE(c.raft(id).is_leader()) << "node " << id;
  }
  EXPECT_FALSE(c.raft(leader).has_quorum());

  // The voters come back: a leader again, and the log reaches every learner.
  for (NodeId v : down) c.restart(v);
  NodeId again = *c.run_until_leader(5000);
  ASSERT_LE(again, 7u);
  auto later = c.propose(again, "after the outage");
  ASSERT_TRUE(later.is_ok()) << later.status().to_string();
  ASSERT_TRUE(c.run_until_applied(*later, 3000));
  for (NodeId l = 8; l <= 47; l++) EXPECT_GE(c.raft(l).log().applied(), *later);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Membership, MessagesFromNonMembersAndOtherClustersAreCounted) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.step(test::msg(MessageType::pre_vote, 9, 1, 5));
  EXPECT_EQ(n.raft.stats().non_member_messages, 1u);
  RaftConfig c = test::config(2, {1, 2, 3});
  c.cluster_id = 77;
  test::Node m(c);
  Message other = test::msg(MessageType::heartbeat, 1, 2, 4);
  other.cluster_id = 78;
  EXPECT_TRUE(m.step(other).empty());
  EXPECT_EQ(m.raft.term(), 0u);
  EXPECT_EQ(m.raft.stats().foreign_cluster_messages, 1u);
  other.cluster_id = 77;
  EXPECT_FALSE(m.step(other).empty());
  EXPECT_EQ(m.raft.term(), 4u);
}

// ---- Split brain -----------------------------------------------------------------------------

TEST(SplitBrain, MinorityReportsNoQuorumAndMajorityKeepsWorking) {
  Cluster c(opts(5));
  NodeId leader = *c.run_until_leader(2000);
  std::vector<NodeId> others;
  for (NodeId id : c.ids()) {
    if (id != leader) others.push_back(id);
  }
  // The leader and one follower on the minority side.
  NodeId buddy = others[0];
  for (NodeId a : {leader, buddy}) {
    for (NodeId b : {others[1], others[2], others[3]}) c.cut(a, b);
  }
  c.run_for(700);
  EXPECT_FALSE(c.raft(leader).is_leader()) << "no quorum: stepped down";
  EXPECT_FALSE(c.raft(leader).has_quorum());
  EXPECT_FALSE(c.raft(buddy).has_quorum());
  auto fresh = c.run_until_leader(3000);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_TRUE(c.raft(*fresh).has_quorum());
  EXPECT_FALSE(c.propose(leader, "minority").is_ok()) << "the minority decides nothing";
  c.heal();
  c.run_for(1000);
  EXPECT_EQ(c.raft(leader).leader(), *fresh) << "the minority rejoins without operator action";
  EXPECT_EQ(c.raft(leader).term(), c.raft(*fresh).term());
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

// ---- Health-gated leadership -----------------------------------------------------------------

TEST(Health, UnhealthyNodeNeverCampaigns) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.raft.set_healthy(false, n.now_ms);
  n.advance_ms(5000);
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.stats().pre_votes_started, 0u);
  n.step(test::msg(MessageType::heartbeat, 2, 1, 1));
  n.step(test::msg(MessageType::timeout_now, 2, 1, 1));
  EXPECT_EQ(n.raft.role(), Role::follower) << "not even when asked to take over";
}

TEST(Health, UnhealthyLeaderHandsOverToAHealthyCaughtUpVoter) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId sick = leader == 1 ? 2 : 1;
  ASSERT_TRUE(c.host(sick).set_healthy(false).is_ok());
  c.run_for(200);  // the leader learns follower health from responses
  ASSERT_TRUE(c.host(leader).set_healthy(false).is_ok());
  c.run_for(500);
  auto now_leader = c.leader();
  ASSERT_TRUE(now_leader.has_value());
  EXPECT_NE(*now_leader, leader);
  EXPECT_NE(*now_leader, sick) << "the unhealthy follower is not chosen";
  EXPECT_EQ(c.raft(leader).stats().health_transfers, 1u);
  bool found = false;
  for (const MemberStatus& m : c.raft(*now_leader).members()) {
    if (m.id == sick) {
      found = true;
      EXPECT_FALSE(m.healthy);
      EXPECT_TRUE(m.reachable);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Health, MembersReportReachabilityAndMatch) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId lost = leader == 3 ? 2 : 3;
  auto index = c.propose(leader, "x");
  ASSERT_TRUE(c.run_until_applied(*index, 1000));
  c.isolate(lost);
  for (int i = 0; i < 3; i++) (void)c.propose(leader, "y");
  c.run_for(350);
  for (const MemberStatus& m : c.raft(leader).members()) {
    EXPECT_TRUE(m.voter);
    if (m.id == lost) {
      EXPECT_FALSE(m.reachable);
      EXPECT_GE(*m.last_contact_age_ms, 300u);
      EXPECT_LT(m.match, c.raft(leader).log().last_index());
    } else {
      EXPECT_TRUE(m.reachable);
      EXPECT_EQ(m.match, c.raft(leader).log().last_index());
    }
  }
}

}  // namespace
}  // namespace anya::engine

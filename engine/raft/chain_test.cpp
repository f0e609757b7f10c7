// Chain-gated leadership: each node's view of its Bitcoin backend (height, tip) travels in its
// responses and vote requests; the leader computes the height a quorum of voters holds and sends
// it in heartbeats; a node more than max_blocks_behind below it (or with no view) is behind: it
// never campaigns, no voter ahead of it votes for it, it is never a transfer target, and as
// leader it hands leadership to a voter that is not behind.
#include <gtest/gtest.h>

#include <map>

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

ChainView at_height(std::uint64_t height) {
  ChainView v;
  v.height = height;
  v.tip[0] = static_cast<std::uint8_t>(height);  // a tip that differs with the height
  return v;
}

void set_views(Cluster& c, const std::map<NodeId, std::optional<std::uint64_t>>& heights) {
  for (const auto& [id, height] : heights) {
    if (!c.up(id)) continue;
    std::optional<ChainView> view;
    if (height) view = at_height(*height);
    ASSERT_TRUE(c.host(id).set_chain_view(view).is_ok());
  }
}

// The literal definition, for comparing with what the engine computed: the highest h such that
// a majority of `voters` report a height >= h; nullopt if fewer than a majority report one.
std::optional<std::uint64_t> truth_quorum_height(
    const std::map<NodeId, std::optional<std::uint64_t>>& heights) {
  std::optional<std::uint64_t> best;
  for (const auto& [id, h] : heights) {
    if (!h) continue;
    std::size_t holding = 0;
    for (const auto& [other, oh] : heights) holding += oh && *oh >= *h;
    if (holding >= heights.size() / 2 + 1 && (!best || *h > *best)) best = *h;
  }
  return best;
}

const MemberStatus* member(const std::vector<MemberStatus>& members, NodeId id) {
  for (const MemberStatus& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

// ---- the quorum height ------------------------------------------------------------------------

TEST(ChainQuorum, LeaderComputesTheHeightAQuorumHoldsAndFollowersLearnIt) {
  Cluster c(opts(5));
  const NodeId leader = *c.run_until_leader(2000);
  // The leader highest (so it keeps leading), the followers below: a quorum (3 of 5) holds 110.
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  const std::uint64_t follower_heights[] = {110, 90, 120, 100};
  std::size_t next = 0;
  for (NodeId id : c.ids()) heights[id] = id == leader ? 130 : follower_heights[next++];
  set_views(c, heights);
  c.run_for(200);  // the leader hears every view, then heartbeats carry the quorum height
  EXPECT_EQ(c.raft(leader).chain_quorum_height(), std::optional<std::uint64_t>(110));
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.raft(id).chain_quorum_height(), std::optional<std::uint64_t>(110)) << id;
    // 108 is the floor with max_blocks_behind 2: 90 and 100 are behind, the rest are not.
    EXPECT_EQ(c.raft(id).chain_behind(), *heights[id] < 108) << id;
  }
}

TEST(ChainQuorum, TheLeadersOwnViewCounts) {
  Cluster c(opts(3));
  const NodeId leader = *c.run_until_leader(2000);
  const NodeId ahead = leader == 1 ? 2 : 1;
  const NodeId low = 6 - leader - ahead;
  // Leader and one follower at 110: the quorum holds 110 and the follower at 100 is behind. Were
  // the leader's own view left out, the two followers alone would say 100 and nobody would be.
  set_views(c, {{leader, 110}, {ahead, 110}, {low, 100}});
  c.run_for(200);
  EXPECT_EQ(c.raft(leader).chain_quorum_height(), std::optional<std::uint64_t>(110));
  EXPECT_TRUE(c.raft(low).chain_behind());
  EXPECT_FALSE(c.raft(leader).chain_behind());
  const MemberStatus* m = member(c.raft(leader).members(), low);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->chain_behind);
  ASSERT_TRUE(m->chain_view.has_value());
  EXPECT_EQ(m->chain_view->height, 100u);
  EXPECT_EQ(m->chain_view->tip, at_height(100).tip) << "the tip travels with the height";
}

TEST(ChainQuorum, FewerThanAQuorumOfViewsMeansNoQuorumViewAndNobodyBehind) {
  Cluster c(opts(5));
  const NodeId leader = *c.run_until_leader(2000);
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  for (NodeId id : c.ids()) heights[id] = std::nullopt;
  heights[leader] = 500;
  heights[leader == 1 ? 2 : 1] = 500;  // two views of five: no quorum
  set_views(c, heights);
  c.run_for(200);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.raft(id).chain_quorum_height(), std::nullopt) << id;
    EXPECT_FALSE(c.raft(id).chain_behind()) << "no quorum view: nobody is behind";
  }
  EXPECT_EQ(c.leader(), leader) << "nothing changed for the leader";
}

TEST(ChainQuorum, NoViewsAtAllLeavesEverythingAsItWas) {
  Cluster c(opts(3));
  const NodeId leader = *c.run_until_leader(2000);
  c.run_for(1000);
  EXPECT_EQ(c.leader(), leader);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.raft(id).chain_quorum_height(), std::nullopt);
    EXPECT_FALSE(c.raft(id).chain_behind());
    EXPECT_EQ(c.raft(id).stats().chain_transfers, 0u);
    EXPECT_EQ(c.raft(id).stats().chain_votes_refused, 0u);
  }
}

TEST(ChainQuorum, LearnersViewsDoNotCount) {
  ClusterOptions o = opts(3);
  o.learners = 2;  // ids 4 and 5
  Cluster c(o);
  const NodeId leader = *c.run_until_leader(2000);
  // Only one voter has a view; two learners far ahead do not make a quorum of voters.
  set_views(c, {{leader, 100}, {4, 900}, {5, 900}});
  c.run_for(200);
  EXPECT_EQ(c.raft(leader).chain_quorum_height(), std::nullopt);
}

TEST(ChainQuorum, MatchesTheDefinitionForRandomViews) {
  for (std::uint64_t seed = 1; seed <= 30; seed++) {
    Cluster c(opts(5, seed));
    const NodeId leader = *c.run_until_leader(2000);
    Prng rng(seed);
    std::map<NodeId, std::optional<std::uint64_t>> heights;
    for (NodeId id : c.ids()) {
      if (!rng.chance(1, 4)) heights[id] = 100 + rng.below(8);
      else heights[id] = std::nullopt;
    }
    set_views(c, heights);
    c.run_for(200);
    if (c.leader() != leader) continue;  // it was behind and handed over: checked elsewhere
    EXPECT_EQ(c.raft(leader).chain_quorum_height(), truth_quorum_height(heights)) << seed;
  }
}

// ---- a behind node never campaigns ------------------------------------------------------------

// A follower told by its leader that a quorum holds `quorum_height`.
test::Node follower_hearing(std::uint64_t quorum_height) {
  test::Node n(test::config(1, {1, 2, 3}, /*pre_vote=*/true, /*check_quorum=*/true));
  Message hb = test::msg(MessageType::heartbeat, 2, 1, 1);
  hb.chain_quorum_height = quorum_height;
  n.step(hb);
  EXPECT_EQ(n.raft.chain_quorum_height(), std::optional<std::uint64_t>(quorum_height));
  return n;
}

TEST(ChainCampaign, ABehindNodeNeverCampaigns) {
  for (const std::optional<std::uint64_t> own : {std::optional<std::uint64_t>(107),
                                                 std::optional<std::uint64_t>()}) {
    test::Node n = follower_hearing(110);
    n.raft.set_chain_view(own ? std::optional(at_height(*own)) : std::nullopt, n.now_ms);
    EXPECT_TRUE(n.raft.chain_behind());
    EXPECT_FALSE(n.raft.promotable());
    const auto sent = n.fire_election_timer();
    EXPECT_TRUE(test::of_type(sent, MessageType::pre_vote).empty());
    EXPECT_EQ(n.raft.stats().pre_votes_started, 0u);
    EXPECT_EQ(n.raft.stats().chain_campaigns_skipped, 1u);
    n.step(test::msg(MessageType::timeout_now, 2, 1, 1));
    EXPECT_EQ(n.raft.role(), Role::follower) << "not even when asked to take over";
    EXPECT_EQ(n.raft.stats().elections_started, 0u);
  }
}

TEST(ChainCampaign, ANodeWithinMaxBlocksBehindCampaigns) {
  test::Node n = follower_hearing(110);
  n.raft.set_chain_view(at_height(108), n.now_ms);  // exactly max_blocks_behind (2) below
  EXPECT_FALSE(n.raft.chain_behind());
  const auto sent = n.fire_election_timer();
  const auto requests = test::of_type(sent, MessageType::pre_vote);
  ASSERT_EQ(requests.size(), 2u);
  ASSERT_TRUE(requests[0].chain_view.has_value()) << "the request carries the candidate's view";
  EXPECT_EQ(requests[0].chain_view->height, 108u);
}

TEST(ChainCampaign, ACandidateThatFallsBehindGivesUp) {
  test::Node n = follower_hearing(110);
  n.raft.set_chain_view(at_height(110), n.now_ms);
  n.fire_election_timer();
  ASSERT_EQ(n.raft.role(), Role::pre_candidate);
  n.raft.set_chain_view(at_height(100), n.now_ms);
  EXPECT_EQ(n.raft.role(), Role::follower);
  // Late grants for the abandoned pre-vote change nothing.
  n.step(test::msg(MessageType::pre_vote_response, 2, 1, 2));
  n.step(test::msg(MessageType::pre_vote_response, 3, 1, 2));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.stats().elections_started, 0u);
}

TEST(ChainCampaign, TheQuorumHeightHeardFromALeaderExpires) {
  test::Node n = follower_hearing(110);
  n.raft.set_chain_view(std::nullopt, n.now_ms);  // its backend went dark
  EXPECT_TRUE(n.raft.chain_behind());
  // With no leader heard for kChainQuorumValidTimeouts election timeouts, a remembered height
  // no longer gates it: every backend dark and the leader dead must not mean no leader ever.
  n.advance_ms(kChainQuorumValidTimeouts * 100);
  EXPECT_EQ(n.raft.chain_quorum_height(), std::nullopt);
  EXPECT_FALSE(n.raft.chain_behind());
  n.fire_election_timer();
  EXPECT_EQ(n.raft.role(), Role::pre_candidate);
}

TEST(ChainCampaign, AHeartbeatWithoutAQuorumHeightClearsTheOldOne) {
  test::Node n = follower_hearing(110);
  n.raft.set_chain_view(at_height(100), n.now_ms);
  EXPECT_TRUE(n.raft.chain_behind());
  n.step(test::msg(MessageType::heartbeat, 2, 1, 1));
  EXPECT_EQ(n.raft.chain_quorum_height(), std::nullopt);
  EXPECT_FALSE(n.raft.chain_behind());
}

// ---- voters refuse a candidate behind their own view ------------------------------------------

Message vote_request(MessageType type, std::optional<std::uint64_t> height, Term term = 2) {
  Message m = test::msg(type, 2, 1, term);
  if (height) m.chain_view = at_height(*height);
  return m;
}

TEST(ChainVote, AVoterRefusesACandidateFarBelowItsOwnView) {
  for (const MessageType type : {MessageType::pre_vote, MessageType::vote}) {
    test::Node n(test::config(1, {1, 2, 3}, true, true));
    n.raft.set_chain_view(at_height(110), n.now_ms);
    const auto refused = n.step(vote_request(type, 107));
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_TRUE(refused[0].reject) << message_type_name(type);
    EXPECT_EQ(n.raft.stats().chain_votes_refused, 1u);
    const auto granted = n.step(vote_request(type, 108));
    ASSERT_EQ(granted.size(), 1u);
    EXPECT_FALSE(granted[0].reject) << "108 is within max_blocks_behind of 110";
  }
}

TEST(ChainVote, ATransferDoesNotBypassTheChainCheck) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.raft.set_chain_view(at_height(110), n.now_ms);
  Message m = vote_request(MessageType::vote, 100);
  m.transfer = true;
  const auto reply = n.step(m);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_TRUE(reply[0].reject);
}

TEST(ChainVote, AVoterWithAViewRefusesACandidateWithout) {
  // Even with no quorum view known: only a quorum of viewless voters can elect a viewless
  // candidate, and then there is no quorum view for it to be behind.
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  n.raft.set_chain_view(at_height(110), n.now_ms);
  const auto reply = n.step(vote_request(MessageType::pre_vote, std::nullopt));
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_TRUE(reply[0].reject);
}

TEST(ChainVote, AVoterWithoutAViewJudgesNobody) {
  test::Node n(test::config(1, {1, 2, 3}, true, true));
  const auto reply = n.step(vote_request(MessageType::pre_vote, 5));
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_FALSE(reply[0].reject);
  EXPECT_EQ(n.raft.stats().chain_votes_refused, 0u);
}

// ---- a behind leader hands over, never to a behind node -----------------------------------------

TEST(ChainTransfer, ABehindLeaderHandsOverToAVoterThatIsNot) {
  Cluster c(opts(3));
  const NodeId leader = *c.run_until_leader(2000);
  set_views(c, {{1, 100}, {2, 100}, {3, 100}});
  c.run_for(200);
  ASSERT_EQ(c.leader(), leader);
  const std::uint64_t elections_before = c.raft(leader).stats().elections_started;
  // The leader's backend stalls while the others move on by three blocks.
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  for (NodeId id : c.ids()) heights[id] = id == leader ? 100 : 103;
  set_views(c, heights);
  c.run_for(300);  // about a heartbeat to learn it, a round trip to hand over
  const auto now_leader = c.leader();
  ASSERT_TRUE(now_leader.has_value());
  EXPECT_NE(*now_leader, leader);
  EXPECT_EQ(c.raft(leader).stats().chain_transfers, 1u);
  EXPECT_EQ(c.raft(leader).stats().health_transfers, 0u) << "health and chain counted apart";
  EXPECT_TRUE(c.raft(leader).chain_behind()) << "it knows from the new leader's heartbeats";
  c.run_for(2000);
  EXPECT_NE(c.leader(), leader) << "and it does not take leadership back";
  EXPECT_EQ(c.raft(leader).stats().elections_started, elections_before);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(ChainTransfer, TheLeaderSendsTheQuorumHeightAndKeepsItWhenItStepsDown) {
  test::Node n(test::config(1, {1, 2, 3}, /*pre_vote=*/true, /*check_quorum=*/true));
  n.raft.set_chain_view(at_height(100), n.now_ms);
  test::elect(n);
  const Term term = n.raft.term();
  auto heartbeats = test::of_type(n.advance_ms(10), MessageType::heartbeat);
  ASSERT_EQ(heartbeats.size(), 2u);
  EXPECT_FALSE(heartbeats[0].chain_quorum_height.has_value()) << "only its own view is known";
  for (const Message& hb : heartbeats) {
    Message answer = test::msg(MessageType::heartbeat_response, hb.to, 1, term);
    answer.context = hb.context;
    answer.index = n.raft.log().last_index();
    answer.chain_view = at_height(110);
    n.step(answer);
  }
  EXPECT_EQ(n.raft.chain_quorum_height(), std::optional<std::uint64_t>(110));
  EXPECT_TRUE(n.raft.chain_behind());
  EXPECT_NE(n.raft.transfer_target(), kNoNode) << "it hands over as soon as it learns";
  heartbeats = test::of_type(n.advance_ms(10), MessageType::heartbeat);
  ASSERT_FALSE(heartbeats.empty());
  EXPECT_EQ(heartbeats[0].chain_quorum_height, std::optional<std::uint64_t>(110));
  // The target's election deposes it: before any word from the new leader, it still knows.
  Message vote = vote_request(MessageType::vote, 110, term + 1);
  vote.transfer = true;
  n.step(vote);
  ASSERT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.chain_quorum_height(), std::optional<std::uint64_t>(110));
  EXPECT_TRUE(n.raft.chain_behind());
}

TEST(ChainTransfer, ABehindFollowerIsNeverTheTarget) {
  Cluster c(opts(5));
  const NodeId leader = *c.run_until_leader(2000);
  auto index = c.propose(leader, "x");
  ASSERT_TRUE(c.run_until_applied(*index, 1000));
  // Every follower is caught up, so ties go to the lowest id: make that one behind too.
  NodeId lowest = kNoNode;
  for (NodeId id : c.ids()) {
    if (id != leader && lowest == kNoNode) lowest = id;
  }
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  for (NodeId id : c.ids()) heights[id] = (id == leader || id == lowest) ? 100 : 110;
  set_views(c, heights);
  c.run_for(500);
  const auto now_leader = c.leader();
  ASSERT_TRUE(now_leader.has_value());
  EXPECT_NE(*now_leader, leader);
  EXPECT_NE(*now_leader, lowest) << "the behind follower was chosen";
  EXPECT_EQ(c.raft(leader).stats().chain_transfers, 1u);
}

TEST(ChainTransfer, AnOperatorCannotHandLeadershipToABehindVoter) {
  Cluster c(opts(3));
  const NodeId leader = *c.run_until_leader(2000);
  const NodeId low = leader == 1 ? 2 : 1;
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  for (NodeId id : c.ids()) heights[id] = id == low ? 90 : 100;
  set_views(c, heights);
  c.run_for(200);
  const Status s = c.host(leader).transfer_leadership(low);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("behind the Bitcoin chain (height 90, a quorum of voters holds 100"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(c.raft(leader).transfer_target(), kNoNode);
}

TEST(ChainTransfer, AGatedLeaderWithNobodyBetterStays) {
  Cluster c(opts(3));
  const NodeId leader = *c.run_until_leader(2000);
  std::map<NodeId, std::optional<std::uint64_t>> heights;
  for (NodeId id : c.ids()) heights[id] = id == leader ? 100 : 110;
  // The only voters ahead of it are unhealthy: leading behind beats not leading at all.
  for (NodeId id : c.ids()) {
    if (id != leader) {
      ASSERT_TRUE(c.host(id).set_healthy(false).is_ok());
    }
  }
  set_views(c, heights);
  c.run_for(1000);
  EXPECT_EQ(c.leader(), leader);
  EXPECT_TRUE(c.raft(leader).chain_behind());
  EXPECT_EQ(c.raft(leader).stats().chain_transfers, 0u);
}

// ---- no behind node wins an election, whatever the crashes ------------------------------------

TEST(ChainElection, NoNodeBehindTheVotersViewsEverWins) {
  // Random views (some unknown), leaders crashed one after another: every leader elected must
  // be within max_blocks_behind of the height a quorum holds, by the views as they are (a
  // crashed node's backend still counts: it is only the process that is down).
  int leaders_seen = 0;
  for (std::uint64_t seed = 1; seed <= 40; seed++) {
    Cluster c(opts(5, seed));
    Prng rng(seed * 31);
    std::map<NodeId, std::optional<std::uint64_t>> heights;
    for (NodeId id : c.ids()) {
      if (rng.chance(1, 4)) heights[id] = std::nullopt;
      else heights[id] = 200 + rng.below(10);
    }
    set_views(c, heights);
    const std::optional<std::uint64_t> quorum = truth_quorum_height(heights);
    NodeId down = kNoNode;
    for (int round = 0; round < 8; round++) {
      const auto leader = c.run_until_leader(3000);
      if (leader) {
        leaders_seen++;
        const auto& h = heights[*leader];
        EXPECT_TRUE(!quorum || (h && !height_behind(*h, *quorum, 2)))
            << "seed " << seed << ": node " << *leader << " leads at height "
            << (h ? std::to_string(*h) : "unknown") << " while a quorum holds " << *quorum;
      }
      if (down != kNoNode) {
        c.restart(down);  // a restarted host knows no view until its probe says so
        set_views(c, {{down, heights[down]}});
        down = kNoNode;
      }
      if (leader) {
        down = *leader;
        c.crash(down);
      }
    }
    EXPECT_TRUE(c.checker().ok()) << c.checker().report();
  }
  EXPECT_GT(leaders_seen, 200) << "the test must elect leaders to prove anything";
}

}  // namespace
}  // namespace anya::engine

// One test per rule of the Raft paper, sections 5.1 to 5.4 (Ongaro & Ousterhout, "In Search of
// an Understandable Consensus Algorithm"), named after the rule. These drive a single Raft
// directly and inspect exactly what it sends; PreVote and CheckQuorum are off here so each
// test sees the paper's protocol, and are covered in raft_test.cpp.
#include <gtest/gtest.h>

#include "engine/raft/raft_fixture.hpp"

namespace anya::engine::test {
namespace {

const std::set<NodeId> kThree{1, 2, 3};
const std::set<NodeId> kFive{1, 2, 3, 4, 5};

// ---- §5.1 Raft basics ----------------------------------------------------------------------

TEST(Paper_5_1, ServersStartAsFollowers) {
  Node n(config(1, kThree));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.term(), 0u);
  EXPECT_EQ(n.raft.leader(), kNoNode);
}

TEST(Paper_5_1, FollowerAdoptsHigherTerm) {
  Node n(config(1, kThree));
  n.step(msg(MessageType::heartbeat, 2, 1, 5));
  EXPECT_EQ(n.raft.term(), 5u);
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.leader(), 2u);
}

TEST(Paper_5_1, CandidateRevertsToFollowerOnHigherTerm) {
  Node n(config(1, kThree));
  n.fire_election_timer();
  ASSERT_EQ(n.raft.role(), Role::candidate);
  n.step(msg(MessageType::append_response, 3, 1, 7));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.term(), 7u);
}

TEST(Paper_5_1, LeaderRevertsToFollowerOnHigherTerm) {
  Node n(config(1, kThree));
  elect(n);
  const Term t = n.raft.term();
  n.step(msg(MessageType::heartbeat_response, 2, 1, t + 1));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.term(), t + 1);
}

TEST(Paper_5_1, StaleTermRequestIsRejected) {
  Node n(config(1, kThree));
  n.step(msg(MessageType::heartbeat, 2, 1, 5));
  Message old = msg(MessageType::append, 3, 1, 4);
  old.entries = {Entry{4, 1, EntryType::normal, "x"}};
  auto sent = n.step(old);
  EXPECT_EQ(n.raft.log().last_index(), 0u) << "stale leader's entries must not be appended";
  auto vote = n.step([] {
    Message m = msg(MessageType::vote, 3, 1, 4);
    return m;
  }());
  ASSERT_EQ(vote.size(), 0u) << "a stale vote request is ignored without PreVote/CheckQuorum";
  EXPECT_EQ(n.raft.leader(), 2u);
}

TEST(Paper_5_1, TermIsPersistedBeforeAnyMessageLeaves) {
  Node n(config(1, kThree));
  n.raft.tick(n.raft.election_deadline_ms());
  ASSERT_TRUE(n.raft.has_ready());
  Ready rd = n.raft.ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 1u);
  EXPECT_EQ(rd.hard_state->vote, 1u) << "the self-vote must be durable with the requests";
  EXPECT_EQ(of_type(rd.messages, MessageType::vote).size(), 2u);
  n.raft.advance(rd);
}

// ---- §5.2 Leader election ------------------------------------------------------------------

TEST(Paper_5_2, LeaderSendsHeartbeatsEveryInterval) {
  Node n(config(1, kThree));
  elect(n);
  auto sent = n.advance_ms(10);
  EXPECT_EQ(of_type(sent, MessageType::heartbeat).size(), 2u);
  sent = n.advance_ms(9);
  EXPECT_EQ(of_type(sent, MessageType::heartbeat).size(), 0u);
  sent = n.advance_ms(1);
  EXPECT_EQ(of_type(sent, MessageType::heartbeat).size(), 2u);
}

TEST(Paper_5_2, FollowerCampaignsAfterElectionTimeout) {
  Node n(config(1, kThree));
  auto sent = n.fire_election_timer();
  EXPECT_EQ(n.raft.role(), Role::candidate);
  EXPECT_EQ(n.raft.term(), 1u) << "a candidate increments its term";
  EXPECT_EQ(n.raft.vote(), 1u) << "and votes for itself";
  auto votes = of_type(sent, MessageType::vote);
  ASSERT_EQ(votes.size(), 2u) << "and asks every other voter";
  for (const Message& m : votes) EXPECT_EQ(m.term, 1u);
}

TEST(Paper_5_2, FollowerHearingLeaderDoesNotCampaign) {
  Node n(config(1, kThree));
  for (int i = 0; i < 50; i++) {
    n.step(msg(MessageType::heartbeat, 2, 1, 1));
    n.advance_ms(20);
  }
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.term(), 1u);
}

TEST(Paper_5_2, CandidateWithMajorityBecomesLeader) {
  Node n(config(1, kFive));
  n.fire_election_timer();
  n.step(msg(MessageType::vote_response, 2, 1, 1));
  EXPECT_EQ(n.raft.role(), Role::candidate) << "2 of 5 is not a majority";
  n.step(msg(MessageType::vote_response, 3, 1, 1));
  EXPECT_EQ(n.raft.role(), Role::leader);
  EXPECT_EQ(n.raft.leader(), 1u);
}

TEST(Paper_5_2, CandidateRejectedByMajorityBecomesFollower) {
  Node n(config(1, kThree));
  n.fire_election_timer();
  Message no = msg(MessageType::vote_response, 2, 1, 1);
  no.reject = true;
  n.step(no);
  EXPECT_EQ(n.raft.role(), Role::candidate);
  no.from = 3;
  n.step(no);
  EXPECT_EQ(n.raft.role(), Role::follower);
}

TEST(Paper_5_2, VotesAtMostOncePerTermFirstComeFirstServed) {
  Node n(config(1, kThree));
  auto r2 = n.step(msg(MessageType::vote, 2, 1, 1));
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_FALSE(r2[0].reject);
  auto r3 = n.step(msg(MessageType::vote, 3, 1, 1));
  ASSERT_EQ(r3.size(), 1u);
  EXPECT_TRUE(r3[0].reject) << "already voted for 2 in term 1";
  auto again = n.step(msg(MessageType::vote, 2, 1, 1));
  EXPECT_FALSE(again[0].reject) << "a repeated request from the same candidate is granted";
  EXPECT_EQ(n.persisted.vote, 2u);
}

TEST(Paper_5_2, CandidateStepsDownOnAppendFromLeaderOfSameTerm) {
  Node n(config(1, kThree));
  n.fire_election_timer();
  n.step(msg(MessageType::append, 2, 1, 1));
  EXPECT_EQ(n.raft.role(), Role::follower);
  EXPECT_EQ(n.raft.leader(), 2u);
  EXPECT_EQ(n.raft.term(), 1u);
}

TEST(Paper_5_2, SplitVoteStartsNewElectionWithHigherTerm) {
  Node n(config(1, kThree));
  n.fire_election_timer();
  ASSERT_EQ(n.raft.term(), 1u);
  auto sent = n.fire_election_timer();
  EXPECT_EQ(n.raft.role(), Role::candidate);
  EXPECT_EQ(n.raft.term(), 2u);
  EXPECT_EQ(of_type(sent, MessageType::vote).size(), 2u);
}

TEST(Paper_5_2, ElectionTimeoutIsRandomisedWithinOneToTwoTimeouts) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t seed = 1; seed <= 200; seed++) {
    RaftConfig c = config(1, kThree);
    c.random_seed = seed;
    Raft r(c, RestoredState{}, 0);
    const std::uint64_t timeout = r.election_deadline_ms();
    EXPECT_GE(timeout, c.election_timeout_ms);
    EXPECT_LT(timeout, 2 * c.election_timeout_ms);
    seen.insert(timeout);
  }
  EXPECT_GT(seen.size(), 50u) << "timeouts must spread out, or split votes repeat";
}

// ---- §5.3 Log replication ------------------------------------------------------------------

// Acknowledge every append in `sent` from the given followers.
void ack(Node& leader, const std::vector<Message>& sent, std::set<NodeId> from) {
  for (const Message& m : of_type(sent, MessageType::append)) {
    if (from.count(m.to) == 0) continue;
    Message r = msg(MessageType::append_response, m.to, leader.raft.id(), m.term);
    r.index = m.index + m.entries.size();
    leader.step(r);
  }
}

TEST(Paper_5_3, LeaderAppendsProposalAndSendsItToFollowers) {
  Node n(config(1, kThree));
  ack(n, elect(n), {2, 3});  // followers found: out of probing, into streaming
  const Index before = n.raft.log().last_index();
  auto index = n.raft.propose("cmd", n.now_ms);
  ASSERT_TRUE(index.is_ok());
  EXPECT_EQ(*index, before + 1);
  auto appends = of_type(n.drain(), MessageType::append);
  ASSERT_FALSE(appends.empty());
  bool carried = false;
  for (const Message& m : appends) {
    for (const Entry& e : m.entries) carried |= (e.data == "cmd" && e.term == n.raft.term());
  }
  EXPECT_TRUE(carried);
}

TEST(Paper_5_3, FollowerRefusesProposals) {
  Node n(config(1, kThree));
  n.step(msg(MessageType::heartbeat, 2, 1, 1));
  auto r = n.raft.propose("cmd", n.now_ms);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::not_leader);
  EXPECT_NE(r.status().message().find("node 2"), std::string::npos) << r.status().message();
}

TEST(Paper_5_3, EntryCommitsOnceReplicatedOnMajority) {
  Node n(config(1, kFive));
  auto sent = elect(n);
  ack(n, sent, {2, 3, 4, 5});  // the no-op commits
  auto index = n.raft.propose("cmd", n.now_ms);
  ASSERT_TRUE(index.is_ok());
  auto appends = n.drain();
  ack(n, appends, {2});
  EXPECT_LT(n.raft.log().committed(), *index) << "leader + 1 of 5 is not a majority";
  ack(n, appends, {3});
  EXPECT_EQ(n.raft.log().committed(), *index);
  ASSERT_FALSE(n.applied.empty());
  EXPECT_EQ(n.applied.back().data, "cmd") << "committed entries are applied";
}

TEST(Paper_5_3, CommittingAnEntryCommitsAllBeforeIt) {
  Node n(config(1, kThree));
  auto sent = elect(n);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(n.raft.propose("c", n.now_ms).is_ok());
  n.drain();
  Message r = msg(MessageType::append_response, 2, 1, n.raft.term());
  r.index = n.raft.log().last_index();
  n.step(r);
  EXPECT_EQ(n.raft.log().committed(), n.raft.log().last_index());
  EXPECT_EQ(n.applied.size(), n.raft.log().last_index());
}

TEST(Paper_5_3, FollowerLearnsCommitFromLeader) {
  Node n(config(2, kThree));
  Message a = msg(MessageType::append, 1, 2, 1);
  a.entries = entries_with_terms({1, 1});
  a.commit = 1;
  n.step(a);
  EXPECT_EQ(n.raft.log().committed(), 1u);
  ASSERT_EQ(n.applied.size(), 1u);
  Message hb = msg(MessageType::heartbeat, 1, 2, 1);
  hb.commit = 2;
  n.step(hb);
  EXPECT_EQ(n.raft.log().committed(), 2u);
}

TEST(Paper_5_3, FollowerRejectsAppendWhosePreviousEntryDoesNotMatch) {
  Node n(config(2, kThree), RestoredState{{1, kNoNode, 0}, entries_with_terms({1}), {}});
  Message a = msg(MessageType::append, 1, 2, 2);
  a.index = 1;
  a.log_term = 2;  // we hold index 1 with term 1
  a.entries = {Entry{2, 2, EntryType::normal, "x"}};
  auto sent = n.step(a);
  auto responses = of_type(sent, MessageType::append_response);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0].reject);
  EXPECT_EQ(n.raft.log().last_index(), 1u);
}

TEST(Paper_5_3, FollowerDeletesConflictingEntriesAndAppendsNewOnes) {
  Node n(config(2, kThree), RestoredState{{2, kNoNode, 1}, entries_with_terms({1, 1, 2}), {}});
  Message a = msg(MessageType::append, 1, 2, 3);
  a.index = 1;
  a.log_term = 1;
  a.entries = {Entry{3, 2, EntryType::normal, "new"}};
  auto sent = n.step(a);
  EXPECT_EQ(n.raft.log().last_index(), 2u) << "entry 3 followed the conflict and is deleted";
  EXPECT_EQ(n.raft.log().term_at(2), Term{3});
  auto responses = of_type(sent, MessageType::append_response);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_FALSE(responses[0].reject);
  EXPECT_EQ(responses[0].index, 2u);
}

TEST(Paper_5_3, RepeatedAppendIsIdempotent) {
  Node n(config(2, kThree));
  Message a = msg(MessageType::append, 1, 2, 1);
  a.entries = entries_with_terms({1, 1, 1});
  n.step(a);
  Message first = msg(MessageType::append, 1, 2, 1);
  first.entries = entries_with_terms({1});
  n.step(first);
  EXPECT_EQ(n.raft.log().last_index(), 3u) << "an old, shorter append must not cut the log";
}

TEST(Paper_5_3, LeaderRetriesWithEarlierIndexAfterRejection) {
  Node n(config(1, kThree), RestoredState{{1, kNoNode, 0}, entries_with_terms({1, 1, 1}), {}});
  auto sent = elect(n);
  auto to2 = of_type(sent, MessageType::append);
  ASSERT_FALSE(to2.empty());
  Message probe = to2[0];
  EXPECT_EQ(probe.index, 3u) << "the first probe starts at the leader's last index";
  Message no = msg(MessageType::append_response, probe.to, 1, n.raft.term());
  no.reject = true;
  no.index = probe.index;
  no.reject_hint = 1;
  no.reject_hint_term = 1;
  auto retry = of_type(n.step(no), MessageType::append);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].index, 1u) << "nextIndex backs off to the follower's hint";
  EXPECT_EQ(retry[0].entries.size(), 3u);
}

TEST(Paper_5_3, FastBackOffSkipsAConflictingTermInOneRoundTrip) {
  // The follower holds many entries of a term the leader never saw: one reject suffices.
  Node n(config(1, kThree), RestoredState{{5, kNoNode, 0}, entries_with_terms({1, 1, 4, 4}), {}});
  auto sent = elect(n);
  Message no = msg(MessageType::append_response, 2, 1, n.raft.term());
  no.reject = true;
  no.index = 4;
  no.reject_hint = 9;          // follower: 9 entries, the last ones of term 3
  no.reject_hint_term = 3;
  auto retry = of_type(n.step(no), MessageType::append);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].index, 2u) << "skips straight past every entry of terms above 3";
}

TEST(Paper_5_3, LeaderNeverOverwritesItsOwnLog) {
  Node n(config(1, kThree));
  elect(n);
  const Term t = n.raft.term();
  ASSERT_TRUE(n.raft.propose("mine", n.now_ms).is_ok());
  n.drain();
  const Index last = n.raft.log().last_index();
  Message a = msg(MessageType::append, 2, 1, t);  // a bogus append in the leader's own term
  a.entries = entries_with_terms({t});
  n.step(a);
  EXPECT_TRUE(n.raft.is_leader());
  EXPECT_EQ(n.raft.log().last_index(), last);
  EXPECT_EQ(n.raft.log().at(last).data, "mine");
}

TEST(Paper_5_3, FollowerResponseIsSentOnlyAfterEntriesArePersisted) {
  Node n(config(2, kThree));
  Message a = msg(MessageType::append, 1, 2, 1);
  a.entries = entries_with_terms({1});
  n.raft.step(a, 0);
  Ready rd = n.raft.ready();
  ASSERT_EQ(rd.entries.size(), 1u) << "the entry is in the persist part of the batch";
  ASSERT_EQ(of_type(rd.messages, MessageType::append_response).size(), 1u)
      << "and its acknowledgement in the send-after-persist part of the same batch";
  n.raft.advance(rd);
}

// ---- §5.4 Safety ---------------------------------------------------------------------------

TEST(Paper_5_4_1, VoterRejectsCandidateWithOlderLastTerm) {
  Node n(config(1, kThree), RestoredState{{2, kNoNode, 0}, entries_with_terms({1, 2}), {}});
  Message v = msg(MessageType::vote, 2, 1, 3);
  v.index = 5;
  v.log_term = 1;
  auto r = n.step(v);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].reject) << "a longer log of an older term is less up to date";
}

TEST(Paper_5_4_1, VoterRejectsCandidateWithShorterLogOfSameTerm) {
  Node n(config(1, kThree), RestoredState{{2, kNoNode, 0}, entries_with_terms({1, 2, 2}), {}});
  Message v = msg(MessageType::vote, 2, 1, 3);
  v.index = 2;
  v.log_term = 2;
  auto r = n.step(v);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].reject);
  EXPECT_EQ(n.raft.vote(), kNoNode);
}

TEST(Paper_5_4_1, VoterGrantsCandidateAtLeastAsUpToDate) {
  Node n(config(1, kThree), RestoredState{{2, kNoNode, 0}, entries_with_terms({1, 2, 2}), {}});
  Message v = msg(MessageType::vote, 2, 1, 3);
  v.index = 1;
  v.log_term = 3;
  auto r = n.step(v);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].reject) << "a higher last term wins even with a shorter log";
  EXPECT_EQ(n.persisted.vote, 2u);
  EXPECT_EQ(n.persisted.term, 3u);
}

TEST(Paper_5_4_2, LeaderDoesNotCommitOldTermEntryByCountingReplicas) {
  // Figure 8: index 2 holds an entry of term 2, replicated on a majority by a leader of term 4.
  Node n(config(1, kThree), RestoredState{{3, kNoNode, 1}, entries_with_terms({1, 2}), {}});
  auto sent = elect(n);
  ASSERT_EQ(n.raft.term(), 4u);
  Message r = msg(MessageType::append_response, 2, 1, 4);
  r.index = 2;  // follower 2 matches up to the old entry only
  n.step(r);
  EXPECT_EQ(n.raft.log().committed(), 1u) << "index 2 is on a majority but of term 2";
}

TEST(Paper_5_4_2, OldTermEntryCommitsWithTheFirstEntryOfTheCurrentTerm) {
  Node n(config(1, kThree), RestoredState{{3, kNoNode, 1}, entries_with_terms({1, 2}), {}});
  elect(n);
  Message r = msg(MessageType::append_response, 2, 1, 4);
  r.index = 3;  // the new leader's no-op of term 4
  n.step(r);
  EXPECT_EQ(n.raft.log().committed(), 3u);
  EXPECT_EQ(n.applied.size(), 3u) << "index 2 commits indirectly";
}

TEST(Paper_5_4_2, NewLeaderAppendsAnEntryOfItsTerm) {
  Node n(config(1, kThree), RestoredState{{3, kNoNode, 0}, entries_with_terms({1, 2}), {}});
  elect(n);
  EXPECT_EQ(n.raft.log().last_index(), 3u);
  EXPECT_EQ(n.raft.log().at(3).term, n.raft.term());
  EXPECT_EQ(n.raft.log().at(3).type, EntryType::noop);
}

TEST(Paper_5_4_3, CommittedEntryIsInEveryLaterLeaderLog) {
  // Node 1 committed index 1 with node 2. Node 3 never got it and cannot win against 1 or 2.
  Node n2(config(2, kThree), RestoredState{{1, kNoNode, 1}, entries_with_terms({1}), {}});
  Node n3(config(3, kThree), RestoredState{{1, kNoNode, 0}, {}, {}});
  auto sent = n3.fire_election_timer();
  auto req = of_type(sent, MessageType::vote);
  ASSERT_FALSE(req.empty());
  Message to2 = req[0].to == 2 ? req[0] : req[1];
  auto r = n2.step(to2);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].reject) << "a voter holding the committed entry refuses";
}

}  // namespace
}  // namespace anya::engine::test

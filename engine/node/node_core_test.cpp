// NodeCore: the rules a node's clients rely on, one test per rule, over in-memory ports with
// messages delivered by hand so each test decides exactly what a quorum has said.
#include "engine/node/node_core.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "engine/testing/memory_ports.hpp"

namespace anya::engine {
namespace {

using testing::CallbackNetwork;
using testing::ManualClock;
using testing::MemoryStorage;

class Nodes {
 public:
  explicit Nodes(std::size_t n, bool leases = true) : leases_(leases) {
    for (NodeId id = 1; id <= n; id++) voters_.insert(id);
    for (NodeId id : voters_) {
      auto& slot = nodes_[id];
      slot.storage = std::make_unique<MemoryStorage>();
      slot.network = std::make_unique<CallbackNetwork>([this](const Message& m) {
        queue_.push_back(m);
      });
      start(id);
    }
  }

  void start(NodeId id) {
    Slot& s = nodes_.at(id);
    RaftConfig rc;
    rc.id = id;
    rc.voters = voters_;
    rc.heartbeat_interval_ms = 50;
    rc.election_timeout_ms = 300;
    rc.random_seed = 7;
    rc.leases = leases_;
    s.clock.set(now_ms_);
    auto core = NodeCore::open(rc, NodeOptions{}, *s.storage, *s.network, s.clock);
    ASSERT_TRUE(core.is_ok()) << core.status().message();
    s.core = std::move(core).value();
  }
  void crash(NodeId id) {
    nodes_.at(id).core.reset();
    nodes_.at(id).storage->drop_unsynced();
  }
  // Crashed node `id` comes back with only the first `keep` entries of its log (a cut WAL
  // tail, an old backup), its term and vote intact.
  void cut_log(NodeId id, Index keep) {
    const RestoredState old = nodes_.at(id).storage->durable();
    auto storage = std::make_unique<MemoryStorage>();
    std::vector<Entry> kept;
    for (const Entry& e : old.entries) {
      if (e.index <= keep) kept.push_back(e);
    }
    if (!kept.empty()) {
      ASSERT_TRUE(storage->append(kept).is_ok());
    }
    HardState hs = old.hard_state;
    hs.commit = std::min(hs.commit, keep);
    ASSERT_TRUE(storage->save_hard_state(hs).is_ok());
    ASSERT_TRUE(storage->sync().is_ok());
    nodes_.at(id).storage = std::move(storage);
  }

  NodeCore& at(NodeId id) { return *nodes_.at(id).core; }
  bool up(NodeId id) const {  // a member added but never started is down
    auto it = nodes_.find(id);
    return it != nodes_.end() && it->second.core != nullptr;
  }

  // Deliver every queued message whose link is up; messages on a cut link are dropped.
  void deliver() {
    for (int guard = 0; guard < 100000 && !queue_.empty(); guard++) {
      Message m = queue_.front();
      queue_.pop_front();
      if (cut_.count(m.from) || cut_.count(m.to) || !up(m.to)) continue;
      if (cut_links_.count({std::min(m.from, m.to), std::max(m.from, m.to)})) continue;
      delivered_++;
      collect(m.to, at(m.to).receive(m));
    }
  }
  // Drop whatever is queued (e.g. a round that must not be answered).
  void drop_queued() { queue_.clear(); }
  void advance(std::uint64_t ms) {
    for (std::uint64_t i = 0; i < ms; i++) {
      now_ms_++;
      for (auto& [id, s] : nodes_) {
        if (!s.core) continue;
        s.clock.set(now_ms_);
        if (!paused_.count(id)) collect(id, s.core->tick());
      }
      deliver();
    }
  }
  NodeId elect(NodeId id) {
    // Past the hold every node keeps on its vote for an election timeout after it starts.
    advance(started_ ? 1 : 301);
    started_ = true;
    EXPECT_TRUE(at(id).host().campaign_now().is_ok());
    deliver();
    EXPECT_TRUE(at(id).raft().is_leader());
    advance(60);  // the noop commits, heartbeats answered
    return id;
  }
  void collect(NodeId id, const Status& s) {
    EXPECT_TRUE(s.is_ok()) << "node " << id << ": " << s.message();
    for (ClientReply& r : at(id).take_replies()) replies_[r.ticket] = std::move(r);
    for (NodeEvent& e : at(id).take_events()) events_[id].push_back(e);
  }
  void flush(NodeId id) { collect(id, at(id).flush()); }
  std::optional<ClientReply> reply(Ticket t) {
    auto it = replies_.find(t);
    if (it == replies_.end()) return std::nullopt;
    return it->second;
  }
  Index write(NodeId on, Ticket t, Command c) {
    at(on).submit_write(t, std::move(c));
    flush(on);
    deliver();
    advance(1);
    auto r = reply(t);
    EXPECT_TRUE(r && r->status.is_ok()) << (r ? r->status.message() : "no reply");
    return r ? r->revision : 0;
  }

  std::set<NodeId> cut_;
  std::set<std::pair<NodeId, NodeId>> cut_links_;  // one pair, both ways
  std::set<NodeId> paused_;
  std::map<NodeId, std::vector<NodeEvent>> events_;
  std::uint64_t now_ms_ = 1000;
  std::uint64_t delivered_ = 0;

 private:
  struct Slot {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<CallbackNetwork> network;
    ManualClock clock;
    std::unique_ptr<NodeCore> core;
  };
  bool leases_;
  bool started_ = false;
  std::set<NodeId> voters_;
  std::map<NodeId, Slot> nodes_;
  std::deque<Message> queue_;
  std::map<Ticket, ClientReply> replies_;
};

TEST(NodeCoreWrites, ASessionRetryThroughTheNextLeaderIsAnsweredNotApplied) {
  Nodes c(3);
  c.elect(1);
  const Index client = c.write(1, 7, SessionOpen{});  // the session's id is the open's index
  Command first = KvCommand::put("k", "v");
  first.session = ClientSession{client, 1, 0};
  const Index rev = c.write(1, 1, first);
  // A failover; the client did not hear the answer and retries at the new leader.
  c.cut_ = {1};
  c.advance(301);  // nodes 2 and 3 stop counting on node 1's lease
  c.cut_.clear();
  c.paused_ = {1};
  c.elect(2);
  c.paused_.clear();
  c.at(2).submit_write(2, first);
  c.flush(2);
  c.deliver();
  c.advance(1);
  const auto retry = c.reply(2);
  ASSERT_TRUE(retry.has_value());
  EXPECT_TRUE(retry->status.is_ok()) << retry->status.message();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->revision, rev);
  EXPECT_EQ(c.at(2).kv().get("k")->version, 1u);
  EXPECT_EQ(c.at(2).kv().get("k")->mod_revision, rev);
}

TEST(NodeCoreWrites, AcknowledgedAtTheirIndexWithTheKvOutcome) {
  Nodes c(3);
  c.elect(1);
  const Index rev = c.write(1, 1, KvCommand::put("k", "v1"));
  EXPECT_GT(rev, 0u);
  c.at(1).submit_write(2, KvCommand::cas("k", rev + 100, "v2"));
  c.flush(1);
  c.deliver();
  c.advance(1);
  ASSERT_TRUE(c.reply(2));
  EXPECT_EQ(c.reply(2)->status.code(), Errc::conflict);
  EXPECT_EQ(c.reply(2)->revision, rev);  // the key's current revision
}

TEST(NodeCoreWrites, AnotherLeadersEntryAtTheIndexMeansTheWriteDidNotHappen) {
  Nodes c(3);
  c.elect(1);
  c.cut_ = {1};  // node 1 proposes into the void
  c.at(1).submit_write(5, KvCommand::put("k", "lost"));
  c.flush(1);
  c.deliver();
  c.cut_ = {1};
  c.advance(301);  // nodes 2 and 3 stop counting on node 1's lease
  c.cut_.clear();
  c.paused_ = {1};
  c.elect(2);  // overwrites node 1's uncommitted entry
  c.paused_.clear();
  c.write(2, 6, KvCommand::put("k", "won"));
  c.advance(100);
  ASSERT_TRUE(c.reply(5));
  EXPECT_EQ(c.reply(5)->status.code(), Errc::not_leader);
}

TEST(NodeCoreReads, LinearizableReadWaitsForAQuorumRoundSentAfterItArrived) {
  Nodes c(3);
  c.elect(1);
  c.write(1, 1, KvCommand::put("k", "v"));
  c.at(1).submit_read(2, "k", ReadMode::linearizable);
  c.flush(1);
  EXPECT_FALSE(c.reply(2)) << "answered before any follower confirmed the leadership";
  c.drop_queued();  // the round is lost
  c.advance(10);
  EXPECT_FALSE(c.reply(2));
  c.advance(60);  // the next heartbeat round is answered
  ASSERT_TRUE(c.reply(2));
  ASSERT_TRUE(c.reply(2)->status.is_ok()) << c.reply(2)->status.message();
  EXPECT_EQ(c.reply(2)->value->value, "v");
  EXPECT_FALSE(c.reply(2)->stale_possible);
}

TEST(NodeCoreReads, FollowerRedirectsToTheLeader) {
  Nodes c(3);
  c.elect(1);
  c.at(2).submit_read(1, "k", ReadMode::linearizable);
  ASSERT_TRUE(c.reply(1) || (c.collect(2, {}), c.reply(1)));
  EXPECT_EQ(c.reply(1)->status.code(), Errc::not_leader);
  EXPECT_EQ(c.reply(1)->leader, 1u);
}

TEST(NodeCoreReads, DeposedLeaderNeverAnswersFromItsOldState) {
  Nodes c(3);
  c.elect(1);
  c.write(1, 1, KvCommand::put("k", "old"));
  c.paused_ = {1};
  c.cut_ = {1};
  c.advance(301);  // nodes 2 and 3 stop counting on node 1's lease
  if (!c.at(2).raft().is_leader() && !c.at(3).raft().is_leader()) c.elect(2);
  const NodeId next = c.at(2).raft().is_leader() ? 2 : 3;
  c.write(next, 2, KvCommand::put("k", "new"));
  // Node 1 wakes, still believing it leads, and is asked to read before it ticks.
  c.cut_.clear();
  c.paused_.clear();
  c.at(1).submit_read(3, "k", ReadMode::linearizable);
  c.flush(1);
  c.deliver();
  c.advance(400);
  ASSERT_TRUE(c.reply(3));
  EXPECT_FALSE(c.reply(3)->status.is_ok()) << "served " << c.reply(3)->value->value;
}

TEST(NodeCoreReads, RefusedOnceATransferStarted) {
  Nodes c(3);
  c.elect(1);
  ASSERT_TRUE(c.at(1).transfer_leadership(2).is_ok());
  c.at(1).submit_read(1, "k", ReadMode::linearizable);
  c.collect(1, {});
  ASSERT_TRUE(c.reply(1));
  EXPECT_EQ(c.reply(1)->status.code(), Errc::not_leader);
  EXPECT_EQ(c.reply(1)->leader, 2u);
}

TEST(NodeCoreReads, SerializableReadsAnswerAnywhereMarkedStale) {
  Nodes c(3);
  c.elect(1);
  c.write(1, 1, KvCommand::put("k", "v"));
  c.advance(60);
  c.at(3).submit_read(2, "k", ReadMode::serializable);
  c.collect(3, {});
  ASSERT_TRUE(c.reply(2) && c.reply(2)->status.is_ok());
  EXPECT_TRUE(c.reply(2)->stale_possible);
}

TEST(NodeCoreLease, HeldOnlyAfterAQuorumAnsweredAndEndsWithoutAnswers) {
  Nodes c(3);
  c.advance(301);
  ASSERT_TRUE(c.at(1).host().campaign_now().is_ok());
  c.deliver();
  ASSERT_TRUE(c.at(1).raft().is_leader());
  EXPECT_FALSE(c.at(1).lease().valid) << "no heartbeat round answered yet";
  c.advance(60);
  LeaseStatus l = c.at(1).lease();
  EXPECT_TRUE(l.valid);
  EXPECT_EQ(l.fencing_token, c.at(1).raft().term());
  EXPECT_LE(l.remaining_ms, lease_duration_ms(300, 50'000));
  c.cut_ = {1};
  c.advance(lease_duration_ms(300, 50'000) + 1);
  EXPECT_FALSE(c.at(1).lease().valid);
}

TEST(NodeCoreLease, LeaseReadsAnswerAtOnceWhileTheLeaseHolds) {
  Nodes c(3);
  c.elect(1);
  c.write(1, 1, KvCommand::put("k", "v"));
  c.advance(60);
  c.at(1).submit_read(2, "k", ReadMode::lease);
  c.collect(1, {});
  ASSERT_TRUE(c.reply(2)) << "a lease read needs no round";
  EXPECT_EQ(c.reply(2)->value->value, "v");
}

TEST(NodeCoreLease, GivenUpForTheTermOnceTimeoutNowIsSent) {
  Nodes c(3);
  c.elect(1);
  ASSERT_TRUE(c.at(1).lease().valid);
  ASSERT_TRUE(c.at(1).transfer_leadership(2).is_ok());
  EXPECT_FALSE(c.at(1).lease().valid);
}

TEST(NodeCoreLease, NoOtherLeaderWhileTheLeaseHolds) {
  // Node 1 leads and holds its lease; it is cut off. Nodes 2 and 3 must not elect anyone
  // before the lease has ended on node 1's clock, even when a timer fires early.
  Nodes c(3);
  c.elect(1);
  ASSERT_TRUE(c.at(1).lease().valid);
  const std::uint64_t until = c.at(1).lease().valid_until_ms;
  c.cut_ = {1};
  c.advance(1);
  // As if both election timers fired early: each forgets node 1 and would vote for the other.
  c.collect(2, c.at(2).host().campaign_now());
  c.collect(3, c.at(3).host().campaign_now());
  c.deliver();
  for (; c.now_ms_ < until;) {
    c.advance(1);
    EXPECT_FALSE(c.at(2).raft().is_leader() || c.at(3).raft().is_leader())
        << "a new leader at " << c.now_ms_ << " while node 1's lease lasts until " << until;
  }
  // Both forgot node 1 when they became pre-candidates, so stickiness no longer refuses; only
  // the lease guard does.
  const RaftStats& s2 = c.at(2).raft().stats();
  const RaftStats& s3 = c.at(3).raft().stats();
  EXPECT_GT(s2.lease_guarded + s3.lease_guarded + s2.votes_ignored_in_lease +
                s3.votes_ignored_in_lease,
            0u);
}

TEST(NodeCoreLease, ARestartedVoterHoldsItsVoteForAnElectionTimeout) {
  // Node 1 leads with node 2's acknowledgements; node 3 cannot hear node 1. Node 2 restarts
  // (forgetting it heard node 1) while node 3 campaigns: node 2 must not hand node 3 the
  // majority before node 1's lease, which counted on node 2, has ended.
  Nodes c(3);
  c.elect(1);
  c.cut_links_ = {{1, 3}};
  c.advance(60);
  ASSERT_TRUE(c.at(1).lease().valid);
  const std::uint64_t until = c.at(1).lease().valid_until_ms;
  c.crash(2);
  c.start(2);
  c.paused_ = {1};  // node 1 sends nothing more that would refresh node 2's stickiness
  for (; c.now_ms_ < until;) {
    // Node 3 campaigns every millisecond, as if its timer kept firing early: once its own
    // guard lapses, only node 2's hold stands between it and a majority.
    c.collect(3, c.at(3).host().campaign_now());
    c.deliver();
    c.advance(1);
    ASSERT_FALSE(c.at(3).raft().is_leader() || c.at(2).raft().is_leader())
        << "a new leader at " << c.now_ms_ << " while node 1's lease lasts until " << until;
  }
}

TEST(NodeCoreFailover, FollowersToldTheLeaderIsGoneElectANewOneWithinTens_ms) {
  Nodes c(3);
  c.elect(1);
  c.crash(1);
  const std::uint64_t t0 = c.now_ms_;
  c.collect(3, c.at(3).peer_gone(1));  // node 3 hears first: rank 1, it waits
  c.advance(5);
  c.collect(2, c.at(2).peer_gone(1));
  std::uint64_t elected_at = 0;
  for (int i = 0; i < 300 && elected_at == 0; i++) {
    c.advance(1);
    if (c.at(2).raft().is_leader() || c.at(3).raft().is_leader()) elected_at = c.now_ms_;
  }
  ASSERT_NE(elected_at, 0u);
  EXPECT_LT(elected_at - t0, 100u) << "fell back to the election timeout";
}

TEST(NodeCoreFailover, GoneMeansGone_AnUnreachableLeaderIsNotReplacedEarly) {
  Nodes c(3);
  c.elect(1);
  c.cut_ = {1};  // partitioned, not dead: nobody says peer_gone
  c.advance(250);
  EXPECT_FALSE(c.at(2).raft().is_leader() || c.at(3).raft().is_leader());
}

TEST(NodeCoreReady, FollowerThatLostAcknowledgedEntriesIsCaughtUpAgain) {
  Nodes c(3);
  c.elect(1);
  for (Ticket t = 1; t <= 20; t++) c.write(1, t, KvCommand::put("k" + std::to_string(t), "v"));
  c.advance(60);
  ASSERT_TRUE(c.at(3).ready());
  const Index acked = c.at(1).raft().tracker().at(3).match;
  // Node 3 comes back with a log cut to 5 entries: what it acknowledged beyond is gone.
  c.crash(3);
  c.cut_log(3, 5);
  c.start(3);
  c.advance(1);
  EXPECT_FALSE(c.at(3).ready()) << "behind the leader's commit index, yet ready";
  const std::uint64_t before = c.delivered_;
  c.advance(120);
  // Refilled in a few round trips, not by a storm of refused appends (the leader kept sending
  // from what it believed the follower held, tens of thousands of messages a second). Two
  // heartbeat rounds to two followers and their answers are 8 messages; the refill a few more.
  EXPECT_LT(c.delivered_ - before, 40u);
  ASSERT_EQ(c.events_[1].size(), 1u);
  EXPECT_EQ(c.events_[1][0].kind, NodeEvent::Kind::follower_lost_entries);
  EXPECT_EQ(c.events_[1][0].node, 3u);
  EXPECT_EQ(c.at(1).raft().stats().followers_regressed, 1u);
  EXPECT_GE(c.at(3).raft().log().last_index(), acked);
  EXPECT_TRUE(c.at(3).ready());
}

TEST(NodeCoreMembers, NewMemberNeedsAnUnusedIdInRangeAndAnUnusedAddress) {
  Nodes c(3);
  c.elect(1);
  const auto add = [&](Ticket t, NodeId id, const std::string& address) {
    c.at(1).submit_member_add(t, id, address, true);
    c.flush(1);
    c.deliver();
    c.advance(1);
    c.flush(1);
    auto r = c.reply(t);
    EXPECT_TRUE(r.has_value());
    return r ? r->status : Status(Errc::io_error, "no reply");
  };
  EXPECT_EQ(add(1, ~NodeId{0}, "10.0.0.9:7000").code(), Errc::invalid_argument);
  EXPECT_EQ(add(2, kMaxNodeId + 1, "10.0.0.9:7000").code(), Errc::invalid_argument);
  EXPECT_EQ(add(3, 2, "10.0.0.9:7000").code(), Errc::conflict);  // an existing voter
  ASSERT_TRUE(add(4, 4, "10.0.0.4:7000").is_ok());
  const Status twice = add(5, 5, "10.0.0.4:7000");
  EXPECT_EQ(twice.code(), Errc::conflict);
  EXPECT_NE(twice.message().find("node 4"), std::string::npos) << twice.message();
  EXPECT_EQ(c.at(1).raft().membership().contains(5), false);
  EXPECT_TRUE(add(6, kMaxNodeId, "10.0.0.6:7000").is_ok());
}
}  // namespace
}  // namespace anya::engine

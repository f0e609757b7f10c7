// The host loop's output contract: no message leaves before the state it depends on is durable,
// only committed and durable entries are applied, and a failed disk stops the node.
#include "engine/host/host.hpp"

#include <gtest/gtest.h>

#include "engine/testing/cluster.hpp"
#include "engine/testing/memory_ports.hpp"

namespace anya::engine {
namespace {

using testing::MemoryStorage;

// The first dependency of `m` that its sender had not made durable when it left, or "".
std::string undurable_dependency(const Message& m, const RestoredState& durable) {
  const bool future_term = m.type == MessageType::pre_vote ||
                           (m.type == MessageType::pre_vote_response && !m.reject);
  if (!future_term && m.term > durable.hard_state.term) {
    return "term " + std::to_string(m.term) + " sent while durable term is " +
           std::to_string(durable.hard_state.term);
  }
  if (m.type == MessageType::vote_response && !m.reject && durable.hard_state.vote != m.to) {
    return "vote for node " + std::to_string(m.to) + " sent before it was durable";
  }
  if (m.type == MessageType::vote && durable.hard_state.vote != m.from) {
    return "vote request sent before the self-vote was durable";
  }
  if (m.type == MessageType::append_response && !m.reject && durable.entries.size() < m.index) {
    return "acknowledged index " + std::to_string(m.index) + " with only " +
           std::to_string(durable.entries.size()) + " entries durable";
  }
  return "";
}

TEST(Host, NoMessageLeavesBeforeItsStateIsDurable) {
  testing::ClusterOptions o;
  o.voters = 5;
  o.seed = 3;
  testing::Cluster c(o);
  std::vector<std::string> problems;
  std::size_t checked = 0;
  std::size_t votes = 0;
  std::size_t acks = 0;
  c.on_send = [&](const Message& m) {
    checked++;
    votes += m.type == MessageType::vote_response && !m.reject;
    acks += m.type == MessageType::append_response && !m.reject && m.index > 0;
    std::string p = undurable_dependency(m, c.storage(m.from).durable());
    if (!p.empty()) problems.push_back(std::string(message_type_name(m.type)) + ": " + p);
  };
  Prng rng(5);
  for (int round = 0; round < 40; round++) {
    auto leader = c.run_until_leader(3000);
    ASSERT_TRUE(leader.has_value());
    (void)c.propose(*leader, "p" + std::to_string(round));
    if (round % 5 == 2) {
      NodeId victim = rng.between(1, 5);
      c.crash(victim);
      c.run_for(rng.between(0, 500));
      c.restart(victim);
    }
    c.run_for(20);
  }
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_GT(votes, 5u) << "the run must exercise elections";
  EXPECT_GT(acks, 100u) << "and replication";
  EXPECT_GT(checked, 500u);
  EXPECT_TRUE(c.checker().ok()) << c.checker().report();
}

TEST(Host, TheOrderingCheckCatchesSendBeforePersist) {
  // Drive a Raft by hand the wrong way round: messages out before the batch is persisted.
  RaftConfig cfg;
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  cfg.pre_vote = false;
  Raft r(cfg, RestoredState{}, 0);
  MemoryStorage storage;
  Message vote;
  vote.type = MessageType::vote;
  vote.from = 1;
  vote.to = 2;
  vote.term = 1;
  r.step(vote, 0);
  Ready rd = r.ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_NE(undurable_dependency(rd.messages[0], storage.durable()), "")
      << "sending the vote before persisting it must be flagged";
  ASSERT_TRUE(storage.save_hard_state(*rd.hard_state).is_ok());
  ASSERT_TRUE(storage.sync().is_ok());
  EXPECT_EQ(undurable_dependency(rd.messages[0], storage.durable()), "");
  r.advance(rd);
}

TEST(Host, AppliesOnlyCommittedEntriesInOrderOnce) {
  testing::ClusterOptions o;
  o.voters = 3;
  testing::Cluster c(o);
  NodeId leader = *c.run_until_leader(2000);
  Index last = 0;
  for (int i = 0; i < 20; i++) last = *c.propose(leader, std::to_string(i));
  ASSERT_TRUE(c.run_until_applied(last, 1000));
  for (NodeId id : c.ids()) {
    // Every command exactly once, in log order; the engine's own entries (no-ops) never.
    const auto& applied = c.applied(id).applied();
    ASSERT_EQ(applied.size(), 20u);
    for (std::size_t i = 0; i < applied.size(); i++) {
      EXPECT_EQ(applied[i].data, std::to_string(i));
      EXPECT_EQ(applied[i].type, EntryType::normal);
      if (i > 0) {
        EXPECT_LT(applied[i - 1].index, applied[i].index);
      }
    }
    EXPECT_EQ(applied.back().index, last);
    EXPECT_LE(last, c.raft(id).log().committed());
  }
}

TEST(Host, StorageFailureStopsTheNode) {
  testing::ClusterOptions o;
  o.voters = 3;
  testing::Cluster c(o);
  NodeId leader = *c.run_until_leader(2000);
  c.storage(leader).fail_all = true;
  auto r = c.host(leader).propose("lost");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::io_error);
  EXPECT_TRUE(c.host(leader).failed());
  EXPECT_FALSE(c.host(leader).tick().is_ok()) << "a failed host accepts no further input";
}

TEST(Host, OpenRejectsInvalidConfigAndCorruptState) {
  MemoryStorage storage;
  testing::CallbackNetwork net([](const Message&) {});
  testing::AppliedLog sm;
  testing::ManualClock clock;
  RaftConfig bad;
  bad.id = 0;
  auto h = Host::open(bad, storage, net, sm, clock);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("id"), std::string::npos);

  RaftConfig good;
  good.id = 1;
  good.voters = {1};
  ASSERT_TRUE(storage.save_hard_state(HardState{1, 1, 5}).is_ok());
  ASSERT_TRUE(storage.sync().is_ok());
  h = Host::open(good, storage, net, sm, clock);
  ASSERT_FALSE(h.is_ok());
  EXPECT_EQ(h.status().code(), Errc::corrupt);
  EXPECT_NE(h.status().message().find("commit 5"), std::string::npos) << h.status().message();
}

}  // namespace
}  // namespace anya::engine

namespace anya::engine {
namespace {

TEST(Host, RestartAppliesALongCommittedLogInManyBatches) {
  testing::MemoryStorage storage;
  std::vector<Entry> entries;
  for (Index i = 1; i <= 20'001; i++) entries.push_back(Entry{1, i, EntryType::normal, ""});
  ASSERT_TRUE(storage.append(entries).is_ok());
  ASSERT_TRUE(storage.save_hard_state(HardState{1, 0, 20'001}).is_ok());
  ASSERT_TRUE(storage.sync().is_ok());
  testing::ManualClock clock;
  testing::CallbackNetwork net([](const Message&) {});
  testing::AppliedLog sm;
  RaftConfig c;
  c.id = 1;
  c.voters = {1, 2, 3};
  c.max_apply_batch = 1;  // 20,001 batches, each applying one entry
  auto host = Host::open(c, storage, net, sm, clock);
  ASSERT_TRUE(host.is_ok());
  ASSERT_TRUE((*host)->tick().is_ok());
  EXPECT_EQ(sm.applied().size(), 20'001u);
}

}  // namespace
}  // namespace anya::engine

namespace anya::engine {
namespace {

// A follower at term 2 with an empty log, and a snapshot message from leader 2 at index 5.
struct SnapshotFollower {
  SnapshotFollower() {
    c.id = 1;
    c.voters = {1, 2, 3};
    auto opened = Host::open(c, storage, net, sm, clock);
    EXPECT_TRUE(opened.is_ok());
    host = std::move(*opened);
  }
  Message snapshot_with(std::string_view state_machine) const {
    Message m;
    m.type = MessageType::snapshot;
    m.from = 2;
    m.to = 1;
    m.term = 2;
    m.index = 5;
    m.log_term = 2;
    Membership membership;
    membership.voters = {1, 2, 3};
    m.payload = encode_snapshot_envelope(
        membership, encode_host_snapshot(ConfigState{}, state_machine));
    return m;
  }
  RaftConfig c;
  testing::MemoryStorage storage;
  testing::ManualClock clock;
  std::vector<Message> sent;
  testing::CallbackNetwork net{[this](const Message& m) { sent.push_back(m); }};
  testing::AppliedLog sm;
  std::unique_ptr<Host> host;
};

TEST(Host, ASnapshotWhoseDataWouldNotRestoreIsRefusedWithNothingPersisted) {
  SnapshotFollower f;
  // An applied-log image cut short: its entry header promises 20 bytes, 3 are there.
  ASSERT_TRUE(f.host->receive(f.snapshot_with("abc")).is_ok());
  EXPECT_FALSE(f.host->failed()) << f.host->failure().message();
  EXPECT_EQ(f.host->snapshots_refused(), 1u);
  EXPECT_FALSE(f.storage.durable().snapshot.has_value());
  EXPECT_EQ(f.host->raft().log().committed(), 0u);
  EXPECT_TRUE(f.sent.empty()) << "no acknowledgement for a snapshot that was not installed";
  // Host data that is not a host snapshot at all is refused the same way.
  Message garbage = f.snapshot_with("");
  Membership membership;
  membership.voters = {1, 2, 3};
  garbage.payload = encode_snapshot_envelope(membership, "not a host snapshot");
  ASSERT_TRUE(f.host->receive(garbage).is_ok());
  EXPECT_EQ(f.host->snapshots_refused(), 2u);

  // The same snapshot with an image that restores is installed, and the node restarts from it.
  testing::AppliedLog image;
  image.apply(Entry{2, 5, EntryType::normal, "x"});
  ASSERT_TRUE(f.host->receive(f.snapshot_with(image.snapshot())).is_ok());
  EXPECT_FALSE(f.host->failed());
  EXPECT_EQ(f.host->raft().log().committed(), 5u);
  ASSERT_TRUE(f.storage.durable().snapshot.has_value());
  EXPECT_EQ(f.sm.applied(), image.applied());
  f.host.reset();
  testing::AppliedLog restarted;
  EXPECT_TRUE(Host::open(f.c, f.storage, f.net, restarted, f.clock).is_ok());
  EXPECT_EQ(restarted.applied(), image.applied());
}

}  // namespace
}  // namespace anya::engine

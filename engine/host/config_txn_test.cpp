// The configuration 2PC end to end on the in-memory cluster: the host applies records, routes
// acks and decides; every member activates the same version atomically, or none does.
#include <gtest/gtest.h>

#include "engine/testing/cluster.hpp"

namespace anya::engine {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

ClusterOptions opts(std::size_t voters) {
  ClusterOptions o;
  o.voters = voters;
  return o;
}

// Wait until every live node has seen version `seen` (its PREPARE applied), has nothing
// staged, and runs the same active version; return that version.
std::uint64_t settle(Cluster& c, std::uint64_t seen, std::uint64_t max_ms = 5000) {
  for (std::uint64_t t = 0; t < max_ms; t++) {
    bool settled = true;
    std::uint64_t version = 0;
    bool first = true;
    for (NodeId id : c.ids()) {
      if (!c.up(id)) continue;
      const ConfigState& st = c.host(id).config_state();
      if (st.staged().has_value() || st.highest_version_seen() < seen) settled = false;
      if (!first && st.active_version() != version) settled = false;
      version = st.active_version();
      first = false;
    }
    if (settled) return version;
    c.run_for(1);
  }
  ADD_FAILURE() << "configuration did not settle";
  return 0;
}

TEST(ConfigTxn, CommitActivatesTheSameDocumentEverywhere) {
  Cluster c(opts(5));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  auto v = c.host(leader).put_config(R"({"vip":"10.0.0.5"})", 0);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, 1u);
  EXPECT_EQ(settle(c, 1), 1u);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.host(id).config_state().active_document(), R"({"vip":"10.0.0.5"})");
  }
}

TEST(ConfigTxn, RejectionOnOneMemberAbortsEverywhere) {
  ClusterOptions o = opts(3);
  o.validator = [](NodeId id, std::uint64_t, std::string_view doc) -> Status {
    if (id == 3 && doc.find("bad") != std::string_view::npos) {
      return {Errc::invalid_argument, "field vip: not an address"};
    }
    return {};
  };
  Cluster c(o);
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  ASSERT_TRUE(c.host(leader).put_config("good", std::nullopt).is_ok());
  ASSERT_EQ(settle(c, 1), 1u);
  auto v = c.host(*c.leader()).put_config("bad", 1);
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(settle(c, *v), 1u) << "nobody activates the rejected version";
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.host(id).config_state().active_document(), "good");
    EXPECT_EQ(c.host(id).config_state().find_in_history(*v), nullptr);
  }
  auto next = c.host(*c.leader()).put_config("good again", 1);
  ASSERT_TRUE(next.is_ok());
  EXPECT_GT(*next, *v) << "an aborted version number is never reused";
  EXPECT_EQ(settle(c, *next), *next);
}

TEST(ConfigTxn, CompareAndSetNamesTheCurrentVersion) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  ASSERT_TRUE(c.host(leader).put_config("a", 0).is_ok());
  ASSERT_EQ(settle(c, 1), 1u);
  auto stale = c.host(*c.leader()).put_config("b", 0);
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), Errc::conflict);
  EXPECT_NE(stale.status().message().find("1"), std::string::npos) << stale.status().message();
  EXPECT_EQ(settle(c, 1), 1u);
}

// A leader paused past its CheckQuorum deadline while the others elected a new leader and moved
// the configuration on must not answer a compare-and-set from its stale view ("version 1 is
// current") when it wakes: it steps down first and says it is not the leader.
TEST(ConfigTxn, ALeaderThatWakesFromAPauseDoesNotJudgeFromAStaleView) {
  Cluster c(opts(3));
  const NodeId old_leader = *c.run_until_leader(2000);
  c.run_for(100);
  ASSERT_TRUE(c.host(old_leader).put_config("one", 0).is_ok());
  ASSERT_EQ(settle(c, 1), 1u);
  c.pause(old_leader);
  std::optional<NodeId> fresh;
  for (int ms = 0; ms < 3000 && (!fresh || *fresh == old_leader); ms += 10) {
    c.run_for(10);
    fresh = c.leader();
  }
  ASSERT_TRUE(fresh && *fresh != old_leader);
  c.run_for(500);  // until the new leader no longer counts the paused node as reachable
  auto two = c.host(*fresh).put_config("two", 1);
  ASSERT_TRUE(two.is_ok()) << two.status().to_string();
  c.run_for(500);
  ASSERT_EQ(c.host(*fresh).config_state().active_version(), *two);
  ASSERT_TRUE(c.raft(old_leader).is_leader()) << "the paused node never learned it was deposed";
  ASSERT_EQ(c.host(old_leader).config_state().active_version(), 1u);

  auto stale = c.host(old_leader).put_config("three", *two);
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), Errc::not_leader) << stale.status().to_string();
  EXPECT_FALSE(c.raft(old_leader).is_leader());
  c.resume(old_leader);
  EXPECT_EQ(settle(c, *two), *two);
}

TEST(ConfigTxn, LeaderCrashDuringPrepareLeavesNothingHalfApplied) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  ASSERT_TRUE(c.host(leader).put_config("first", 0).is_ok());
  ASSERT_EQ(settle(c, 1), 1u);
  auto v = c.host(leader).put_config("second", 1);
  ASSERT_TRUE(v.is_ok());
  c.deliver_all();  // the PREPARE reaches the followers...
  c.crash(leader);  // ...but its leader dies before it can decide
  auto fresh = c.run_until_leader(3000);
  ASSERT_TRUE(fresh.has_value());
  const std::uint64_t settled = settle(c, 1);
  EXPECT_TRUE(settled == 1u || settled == *v) << "all or nothing, and the same everywhere";
  c.restart(leader);
  c.run_for(500);
  EXPECT_EQ(settle(c, 1), settled);
  auto after = c.host(*c.leader()).put_config("third", settled);
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(settle(c, *after), *after);
}

TEST(ConfigTxn, RollbackIsANewVersionWithTheOldDocument) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  c.run_for(100);
  ASSERT_TRUE(c.host(leader).put_config("one", 0).is_ok());
  ASSERT_EQ(settle(c, 1), 1u);
  ASSERT_TRUE(c.host(leader).put_config("two", 1).is_ok());
  ASSERT_EQ(settle(c, 2), 2u);
  auto back = c.host(leader).rollback_config(1, 2);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, 3u);
  EXPECT_EQ(settle(c, 3), 3u);
  EXPECT_EQ(c.host(leader).config_state().active_document(), "one");
  auto unknown = c.host(leader).rollback_config(99, std::nullopt);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("99"), std::string::npos);
}

TEST(ConfigTxn, FollowerRefusesWithTheLeadersIdentity) {
  Cluster c(opts(3));
  NodeId leader = *c.run_until_leader(2000);
  NodeId follower = leader == 1 ? 2 : 1;
  auto r = c.host(follower).put_config("x", std::nullopt);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::not_leader);
  EXPECT_NE(r.status().message().find(std::to_string(leader)), std::string::npos);
}

}  // namespace
}  // namespace anya::engine

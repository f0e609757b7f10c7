// The rules of engine/discovery, one test each: identity by node id, failed methods keep what
// they had, the conflict rule between methods, expiry of announcements, the names each method
// takes ids from, RFC 2782 ordering and the announcement filter.
#include <gtest/gtest.h>

#include <map>

#include "engine/discovery/announcement_filter.hpp"
#include "engine/discovery/discovered_peers.hpp"
#include "engine/discovery/names.hpp"
#include "engine/discovery/srv_order.hpp"

namespace anya::engine::discovery {
namespace {

using Kind = PeerChange::Kind;

Proposal at(NodeId id, std::string address) {
  Proposal p;
  p.id = id;
  p.address = std::move(address);
  return p;
}

DiscoveredPeers three_methods() { return DiscoveredPeers({"static", "dns_srv", "multicast"}); }

TEST(DiscoveredPeers, NewPeersAreReportedOnceEach) {
  DiscoveredPeers d = three_methods();
  std::vector<PeerChange> c =
      d.apply(MethodReport::success("dns_srv", {at(1, "10.0.0.1:7100"), at(2, "10.0.0.2:7100")}),
              1000);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (PeerChange{Kind::added, 1, "10.0.0.1:7100", "", "dns_srv"}));
  EXPECT_EQ(c[1].id, 2u);
  // The same report again changes nothing.
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(1, "10.0.0.1:7100"),
                                                        at(2, "10.0.0.2:7100")}), 2000).empty());
  EXPECT_EQ(d.peers().size(), 2u);
  EXPECT_EQ(d.status("dns_srv")->successes, 2u);
  EXPECT_EQ(*d.status("dns_srv")->last_success_ms, 2000u);
}

TEST(DiscoveredPeers, IdentityIsTheNodeIdSoAMovedPodIsFollowedNotDuplicated) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::success("dns_srv", {at(3, "10.0.0.3:7100")}), 1000);
  const std::vector<PeerChange> c =
      d.apply(MethodReport::success("dns_srv", {at(3, "10.0.9.9:7100")}), 2000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], (PeerChange{Kind::address_changed, 3, "10.0.9.9:7100", "10.0.0.3:7100",
                              "dns_srv"}));
  ASSERT_EQ(d.peers().size(), 1u);
  EXPECT_EQ(d.peers().at(3).address, "10.0.9.9:7100");
  EXPECT_EQ(d.peers().at(3).since_ms, 2000u);
}

TEST(DiscoveredPeers, AFailedMethodKeepsItsLastGoodEntries) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::success("dns_srv", {at(1, "a:1"), at(2, "b:1")}), 1000);
  for (std::uint64_t t = 2000; t <= 4000; t += 1000) {
    EXPECT_TRUE(d.apply(MethodReport::failure("dns_srv", "nxdomain", "NXDOMAIN for x"), t)
                    .empty());
  }
  EXPECT_EQ(d.peers().size(), 2u);
  const MethodStatus& s = *d.status("dns_srv");
  EXPECT_EQ(s.consecutive_failures, 3u);
  EXPECT_EQ(s.failures, 3u);
  EXPECT_EQ(s.last_error, "NXDOMAIN for x");
  EXPECT_EQ(s.last_reason, "nxdomain");
  EXPECT_EQ(*s.last_success_ms, 1000u);
  EXPECT_EQ(*s.last_failure_ms, 4000u);
  EXPECT_EQ(s.peers, 2u);
  // A success clears the error and the run of failures.
  (void)d.apply(MethodReport::success("dns_srv", {at(1, "a:1"), at(2, "b:1")}), 5000);
  EXPECT_EQ(d.status("dns_srv")->consecutive_failures, 0u);
  EXPECT_TRUE(d.status("dns_srv")->last_error.empty());
}

TEST(DiscoveredPeers, ASuccessfulCompleteReportDropsWhatItNoLongerLists) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::success("dns_srv", {at(1, "a:1"), at(2, "b:1")}), 1000);
  (void)d.apply(MethodReport::success("static", {at(2, "b:1")}), 1000);
  const std::vector<PeerChange> c = d.apply(MethodReport::success("dns_srv", {}), 2000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], (PeerChange{Kind::removed, 1, "a:1", "", "dns_srv"}));
  EXPECT_EQ(d.peers().count(2), 1u) << "still proposed by the static list";
  EXPECT_EQ(d.last_known(1), "a:1") << "remembered after it left the view";
}

TEST(DiscoveredPeers, ConflictingAddressesTheMethodThatSawTheMoveWins) {
  DiscoveredPeers d = three_methods();
  Proposal old_place = at(3, "10.0.0.3:7100");
  old_place.expires_ms = 10'000;
  (void)d.apply(MethodReport::success("dns_srv", {at(3, "10.0.0.3:7100")}), 1000);
  (void)d.apply(MethodReport::announcement("multicast", old_place), 1000);
  // The pod moved; multicast sees it first, DNS still serves the old record (cached, TTL).
  Proposal moved = at(3, "10.0.0.33:7100");
  moved.expires_ms = 10'000;
  std::vector<PeerChange> c = d.apply(MethodReport::announcement("multicast", moved), 2000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], (PeerChange{Kind::address_changed, 3, "10.0.0.33:7100", "10.0.0.3:7100",
                              "multicast"}));
  EXPECT_EQ(d.peers().at(3).since_ms, 2000u);
  // DNS repeating its stale record does not take the peer back: it saw no move.
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(3, "10.0.0.3:7100")}), 3000).empty());
  EXPECT_EQ(d.peers().at(3).address, "10.0.0.33:7100");
  EXPECT_EQ(d.peers().at(3).methods, (std::vector<std::string>{"dns_srv", "multicast"}));
  // When DNS catches up, both agree; nothing changes.
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(3, "10.0.0.33:7100")}), 4000).empty());
  // A later move seen by DNS wins over multicast's older one.
  c = d.apply(MethodReport::success("dns_srv", {at(3, "10.0.0.34:7100")}), 5000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].method, "dns_srv");
}

TEST(DiscoveredPeers, DisagreementWithoutAMoveTheMethodListedFirstWins) {
  DiscoveredPeers d = three_methods();
  // Whatever the order of the first reports, "static" is listed before "dns_srv".
  (void)d.apply(MethodReport::success("dns_srv", {at(4, "dns:1")}), 1000);
  std::vector<PeerChange> c = d.apply(MethodReport::success("static", {at(4, "static:1")}), 1500);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, Kind::address_changed);
  EXPECT_EQ(d.peers().at(4).address, "static:1");
  EXPECT_EQ(d.peers().at(4).method, "static");
}

TEST(DiscoveredPeers, AnAnnouncementThatReturnsElsewhereAfterExpiringIsAMove) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::success("dns_srv", {at(6, "10.0.0.6:1")}), 0);
  Proposal p = at(6, "10.0.0.6:1");
  p.expires_ms = 100;
  (void)d.apply(MethodReport::announcement("multicast", p), 0);
  (void)d.expire(100);
  p.address = "10.0.0.66:1";
  p.expires_ms = 1000;
  (void)d.apply(MethodReport::announcement("multicast", p), 500);
  EXPECT_EQ(d.peers().at(6).address, "10.0.0.66:1");
}

TEST(DiscoveredPeers, MembersAreDialledWhereDiscoveryLastSawThem) {
  DiscoveredPeers d({"static", "kubernetes"});
  const std::map<NodeId, std::string> membership = {{1, "old-1:7100"}, {2, "old-2:7100"},
                                                    {3, "old-3:7100"}};
  (void)d.apply(MethodReport::success("kubernetes", {at(2, "new-2:7100"), at(9, "x:1"),
                                                     at(1, "new-1:7100")}), 1000);
  std::map<NodeId, std::string> dial = d.dial_addresses(membership, {}, 1);
  EXPECT_EQ(dial, (std::map<NodeId, std::string>{{1, "old-1:7100"}, {2, "new-2:7100"},
                                                 {3, "old-3:7100"}}))
      << "self keeps its own; node 9 is not a member and is not added";
  // Node 2's pod is not ready for a while: kubernetes stops listing it. Still dialled there.
  (void)d.apply(MethodReport::success("kubernetes", {at(9, "x:1")}), 2000);
  EXPECT_EQ(d.dial_addresses(membership, {}, 1).at(2), "new-2:7100");
  // Joining: the seeds and every discovered peer.
  dial = d.dial_addresses({}, {{5, "seed:1"}}, 7);
  EXPECT_EQ(dial, (std::map<NodeId, std::string>{{5, "seed:1"}, {9, "x:1"}}));
}

TEST(DiscoveredPeers, AnnouncementsExpire) {
  DiscoveredPeers d = three_methods();
  Proposal p = at(5, "127.0.0.5:7100");
  p.expires_ms = 3000;
  ASSERT_EQ(d.apply(MethodReport::announcement("multicast", p), 1000).size(), 1u);
  EXPECT_TRUE(d.expire(2999).empty());
  p.expires_ms = 5000;  // refreshed by a later announcement
  EXPECT_TRUE(d.apply(MethodReport::announcement("multicast", p), 2500).empty());
  EXPECT_EQ(d.peers().at(5).since_ms, 0u) << "a first report is not a move";
  EXPECT_TRUE(d.expire(3000).empty());
  const std::vector<PeerChange> c = d.expire(5000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, Kind::removed);
  EXPECT_TRUE(d.peers().empty());
  EXPECT_EQ(d.entries("multicast"), 0u);
}

TEST(DiscoveredPeers, ABadReportIsTheMethodsFailureAndChangesNothing) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::success("dns_srv", {at(1, "a:1")}), 1000);
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(0, "a:1")}), 2000).empty());
  EXPECT_EQ(d.status("dns_srv")->last_reason, "invalid");
  EXPECT_NE(d.status("dns_srv")->last_error.find("node id 0"), std::string::npos);
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(2, "a:1"), at(2, "b:1")}), 2000)
                  .empty());
  EXPECT_NE(d.status("dns_srv")->last_error.find("node 2 is proposed at two addresses"),
            std::string::npos);
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", {at(2, "no-port")}), 2000).empty());
  std::vector<Proposal> many;
  for (NodeId id = 1; id <= DiscoveryLimits::max_peers_per_report + 1; id++) {
    many.push_back(at(id, "h:" + std::to_string(id)));
  }
  EXPECT_TRUE(d.apply(MethodReport::success("dns_srv", many), 3000).empty());
  EXPECT_EQ(d.status("dns_srv")->last_reason, "too_many_peers");
  EXPECT_EQ(d.status("dns_srv")->consecutive_failures, 4u);
  EXPECT_EQ(d.peers().at(1).address, "a:1");
}

TEST(DiscoveredPeers, ErrorMessagesAreBounded) {
  DiscoveredPeers d = three_methods();
  (void)d.apply(MethodReport::failure("static", "x", std::string(10'000, 'e')), 1);
  EXPECT_LE(d.status("static")->last_error.size(), DiscoveryLimits::max_error_bytes);
}

TEST(DiscoveredPeers, RememberedNodesAreBounded) {
  DiscoveredPeers d({"dns_srv"});
  // Waves of distinct nodes pass through the view; memory stays within its bound and the
  // current view is always remembered.
  NodeId next = 1;
  for (int wave = 0; wave < 12; wave++) {
    std::vector<Proposal> peers;
    for (std::size_t i = 0; i < DiscoveryLimits::max_peers_per_report; i++, next++) {
      peers.push_back(at(next, "h:" + std::to_string(next % 60000 + 1)));
    }
    (void)d.apply(MethodReport::success("dns_srv", peers), static_cast<std::uint64_t>(wave));
  }
  EXPECT_TRUE(d.last_known(next - 1).has_value());
  EXPECT_FALSE(d.last_known(1).has_value()) << "the oldest were forgotten";
}

TEST(Names, SrvTargetsEndInTheNodeId) {
  EXPECT_EQ(*node_id_from_srv_target("node-3.cluster.example."), 3u);
  EXPECT_EQ(*node_id_from_srv_target("anya-ha-12.svc.example"), 12u);
  EXPECT_EQ(*node_id_from_srv_target("n-1"), 1u);
  for (const char* bad : {"node3.cluster.example", "node-0.x", "node-03.x", "-3.x", "node-.x",
                          "node-3a.x", "no_de-3.x", "node-1234567890123456789.x", ""}) {
    Result<NodeId> r = node_id_from_srv_target(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
    if (!r.is_ok()) {
      EXPECT_NE(r.status().message().find("does not name a node"), std::string::npos);
    }
  }
}

TEST(Names, StatefulSetOrdinalsPlusTheOffset) {
  EXPECT_EQ(*node_id_from_pod_name("anya-0", 1), 1u);
  EXPECT_EQ(*node_id_from_pod_name("anya-ha-3", 1), 4u);
  EXPECT_EQ(*node_id_from_pod_name("anya-3", 0), 3u);
  EXPECT_FALSE(node_id_from_pod_name("anya-0", 0).is_ok()) << "node id 0 is nobody";
  EXPECT_FALSE(node_id_from_pod_name("anya", 1).is_ok());
  EXPECT_FALSE(node_id_from_pod_name("anya-3", kMaxNodeId).is_ok());
  EXPECT_NE(node_id_from_pod_name("web", 1).status().message().find("StatefulSet"),
            std::string::npos);
}

TEST(SrvOrder, PriorityFirstThenWeightedRandom) {
  const std::vector<SrvRank> ranks = {{20, 5}, {10, 1}, {10, 99}, {30, 0}, {10, 0}};
  std::map<std::size_t, int> first_counts;
  for (std::uint64_t seed = 1; seed <= 2000; seed++) {
    Prng prng(seed);
    const std::vector<std::size_t> order = rfc2782_order(ranks, prng);
    ASSERT_EQ(order.size(), ranks.size());
    // Priority 10 (indices 1, 2, 4) before 20 (0) before 30 (3).
    EXPECT_EQ(order[3], 0u);
    EXPECT_EQ(order[4], 3u);
    first_counts[order[0]]++;
  }
  // Weight 99 of 100 comes first almost always; weight 0 rarely; weight 1 sometimes.
  EXPECT_GT(first_counts[2], 1800);
  EXPECT_LT(first_counts[4], 100);
  EXPECT_GT(first_counts[1], 0);
  Prng a(7), b(7);
  EXPECT_EQ(rfc2782_order(ranks, a), rfc2782_order(ranks, b)) << "a seed is an order";
}

TEST(AnnouncementFilter, EachKindOfBadAnnouncementIsNamed) {
  AnnouncementFilter f("prod", 1, 5000);
  const std::uint64_t now = 1'700'000'000'000;
  Announcement a{"prod", 2, "127.0.0.2:7100", now - 100, 42};
  EXPECT_EQ(f.check(a, true, now), Verdict::accepted);
  EXPECT_EQ(f.check(a, true, now), Verdict::replayed);
  a.nonce = 43;
  EXPECT_EQ(f.check(a, false, now), Verdict::bad_mac);
  Announcement other = a;
  other.cluster = "staging";
  EXPECT_EQ(f.check(other, false, now), Verdict::wrong_cluster);
  a.timestamp_ms = now - 5001;
  EXPECT_EQ(f.check(a, true, now), Verdict::outside_window);
  a.timestamp_ms = now + 5001;
  EXPECT_EQ(f.check(a, true, now), Verdict::outside_window) << "from the future too";
  a.timestamp_ms = now + 4000;
  EXPECT_EQ(f.check(a, true, now), Verdict::accepted) << "within the window: clock skew";
  Announcement mine{"prod", 1, "127.0.0.1:7100", now, 7};
  EXPECT_EQ(f.check(mine, true, now), Verdict::own);
  EXPECT_STREQ(verdict_name(Verdict::outside_window), "outside_window");
}

TEST(AnnouncementFilter, NonceMemoryIsBoundedAndForgetsOutsideTheWindow) {
  AnnouncementFilter f("prod", 1, 1000);
  const std::uint64_t now = 1'000'000;
  for (std::uint64_t n = 0; n < AnnouncementFilter::kMaxRememberedNonces + 10; n++) {
    ASSERT_EQ(f.check({"prod", 2, "a:1", now, n}, true, now), Verdict::accepted);
  }
  EXPECT_EQ(f.remembered(), AnnouncementFilter::kMaxRememberedNonces);
  EXPECT_EQ(f.check({"prod", 3, "a:1", now + 2000, 1}, true, now + 2000), Verdict::accepted);
  EXPECT_EQ(f.remembered(), 1u) << "the old ones fell out of the window";
}

}  // namespace
}  // namespace anya::engine::discovery

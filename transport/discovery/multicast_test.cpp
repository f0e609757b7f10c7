// Multicast announcements on loopback (interface 127.0.0.1, TTL 1, loop on; a free port): nodes
// hear each other, and a stranger's datagrams are dropped and counted by kind: a bad MAC,
// another cluster's name, a timestamp outside the replay window, a replay, garbage. A node that
// comes back at another address is followed. Multicast on lo works in this sandbox without a
// network namespace (the kernel delivers looped-back group datagrams to local members).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <functional>

#include "engine/discovery/discovered_peers.hpp"
#include "transport/discovery/announcement.hpp"
#include "transport/discovery/multicast_method.hpp"

namespace anya::transport::discovery {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using engine::discovery::MethodReport;
using Clock = std::chrono::steady_clock;

const std::string kSecret = "0123456789abcdef0123456789abcdef";
const std::string kGroup = "239.255.42.99";

std::uint16_t free_udp_port() {
  asio::io_context io;
  udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
}

struct Cluster {
  asio::io_context io;
  std::uint16_t port = free_udp_port();
  std::map<engine::NodeId, std::unique_ptr<Method>> nodes;
  std::map<engine::NodeId, engine::discovery::DiscoveredPeers> views;

  void add(engine::NodeId id, const std::string& address, const std::string& cluster = "prod") {
    MulticastOptions o;
    o.cluster = cluster;
    o.self = id;
    o.advertise = address;
    o.group = kGroup;
    o.port = port;
    o.interface = "127.0.0.1";
    o.interval_ms = 100;
    o.secret = kSecret;
    o.replay_window_ms = 5000;
    nodes[id] = make_multicast_method(io, o, Logger());
    views.erase(id);
    views.emplace(id, engine::discovery::DiscoveredPeers({"multicast"}));
    Status s = nodes[id]->start([this, id](MethodReport r) {
      (void)views.at(id).apply(r, steady_now_ms());
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  ~Cluster() {
    for (auto& [id, m] : nodes) m->stop();
    io.run_for(std::chrono::milliseconds(20));
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      io.run_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  // Sends raw bytes to the group from a socket of the test (the stranger on the LAN).
  void inject(const std::string& bytes) {
    udp::socket s(io, udp::v4());
    s.set_option(asio::ip::multicast::hops(1));
    s.set_option(asio::ip::multicast::enable_loopback(true));
    s.set_option(asio::ip::multicast::outbound_interface(asio::ip::make_address_v4("127.0.0.1")));
    s.send_to(asio::buffer(bytes), udp::endpoint(asio::ip::make_address(kGroup), port));
  }
};

TEST(MulticastDiscovery, NodesOnLoopbackHearEachOther) {
  Cluster c;
  c.add(1, "127.0.0.1:7101");
  c.add(2, "127.0.0.1:7102");
  c.add(3, "127.0.0.1:7103");
  const auto started = Clock::now();
  ASSERT_TRUE(c.run_until([&] {
    for (auto& [id, view] : c.views) {
      if (view.peers().size() != 2) return false;
    }
    return true;
  }, std::chrono::seconds(10)));
  std::printf("[ figure ] 3 nodes heard each other in %lld ms (interval 100 ms)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                  Clock::now() - started).count()));
  EXPECT_EQ(c.views.at(1).peers().at(3).address, "127.0.0.1:7103");
  EXPECT_EQ(c.views.at(3).peers().count(3), 0u) << "its own announcements are not proposed";
}

TEST(MulticastDiscovery, StrangersAreDroppedAndCountedByKind) {
  Cluster c;
  c.add(1, "127.0.0.1:7101");
  const std::uint64_t now = wall_ms();
  const std::string other_secret = "this is not the cluster secret!!";
  c.inject(encode_announcement({"prod", 66, "10.6.6.6:7100", now, 1}, other_secret));
  c.inject(encode_announcement({"staging", 67, "10.6.6.7:7100", now, 2}, kSecret));
  c.inject(encode_announcement({"prod", 68, "10.6.6.8:7100", now - 3'600'000, 3}, kSecret));
  c.inject(encode_announcement({"prod", 68, "10.6.6.8:7100", now + 3'600'000, 4}, kSecret));
  const std::string genuine = encode_announcement({"prod", 9, "127.0.0.9:7109", now, 5},
                                                  kSecret);
  c.inject(genuine);
  c.inject(genuine);  // a replay of a datagram recorded off the wire
  c.inject("GET / HTTP/1.0\r\n\r\n");
  c.inject(std::string(600, 'x'));
  std::string flipped = genuine;
  flipped[flipped.size() - 40] ^= 1;  // the nonce changed in flight: MAC fails
  c.inject(flipped);
  ASSERT_TRUE(c.run_until([&] {
    std::uint64_t n = 0;
    for (const auto& [reason, count] : c.nodes.at(1)->drops()) n += count;
    return n >= 7;
  }, std::chrono::seconds(10)));
  const std::map<std::string, std::uint64_t> drops = c.nodes.at(1)->drops();
  EXPECT_EQ(drops.at("bad_mac"), 2u);
  EXPECT_EQ(drops.at("wrong_cluster"), 1u);
  EXPECT_EQ(drops.at("outside_window"), 2u);
  EXPECT_EQ(drops.at("replayed"), 1u);
  EXPECT_EQ(drops.at("malformed"), 2u);
  const auto& peers = c.views.at(1).peers();
  ASSERT_EQ(peers.size(), 1u) << "only the genuine announcement is proposed";
  EXPECT_EQ(peers.at(9).address, "127.0.0.9:7109");
}

TEST(MulticastDiscovery, ANodeBackAtAnotherAddressIsFollowed) {
  Cluster c;
  c.add(1, "127.0.0.1:7101");
  c.add(2, "127.0.0.2:7102");
  ASSERT_TRUE(c.run_until([&] { return c.views.at(1).peers().count(2) == 1; },
                          std::chrono::seconds(10)));
  c.nodes.at(2)->stop();
  c.add(2, "127.0.0.22:7102");  // rescheduled: same node id, new address
  const auto moved = Clock::now();
  ASSERT_TRUE(c.run_until([&] {
    return c.views.at(1).peers().at(2).address == "127.0.0.22:7102";
  }, std::chrono::seconds(10)));
  std::printf("[ figure ] multicast address change followed in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                  Clock::now() - moved).count()));
  EXPECT_EQ(c.views.at(1).peers().size(), 1u) << "followed, not duplicated";
}

}  // namespace
}  // namespace anya::transport::discovery

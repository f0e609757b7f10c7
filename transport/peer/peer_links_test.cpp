// Tests for the peer links (peer_links.hpp): PeerLinks instances on one io_context over
// 127.0.0.1 with real certificates. Messages cross the TLS WebSockets through the codec and
// arrive equal (up to a frame of exactly Limits::max_frame_bytes); each pair settles on one link,
// and messages queued on a link that is replaced go out on its replacement;
// a stopped peer is reported down; and every refusal the header lists is counted under its
// reason: another CA ("tls"), another cluster ("cluster"), a dialled node whose certificate
// names another node ("identity"), a frame whose `from` is not the authenticated peer
// ("spoofed_sender"), an oversized frame ("frame_size") and one that does not decode
// ("malformed"). The last three are sent by a raw Beast WebSocket client holding a valid node
// certificate, on its own thread. Every wait polls io.run_for in small steps up to a deadline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "engine/codec/codec.hpp"
#include "transport/peer/peer_links.hpp"
#include "transport/tls/certs.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace fs = std::filesystem;
using engine::Message;
using engine::MessageType;
using engine::NodeId;
using ::testing::HasSubstr;

constexpr auto kSettle = std::chrono::seconds(5);  // the longest any wait may take
const std::string kCluster = "test-cluster";

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/anya-peer-test-XXXXXX";
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class CaptureSink : public LogSink {
 public:
  void write(std::string_view line) override { text += std::string(line) + "\n"; }
  std::string text;
};

tls::KeyPair must(Result<tls::KeyPair> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

// One PeerLinks and what it delivered.
struct TestNode {
  NodeId id = 0;
  std::vector<Message> received;
  std::vector<std::pair<NodeId, std::string>> downs;
  std::shared_ptr<CaptureSink> log = std::make_shared<CaptureSink>();
  std::unique_ptr<PeerLinks> links;

  std::string address() const { return "127.0.0.1:" + std::to_string(links->listen_port()); }
  const PeerStats* stats(NodeId peer) const {
    auto it = links->stats().find(peer);
    return it == links->stats().end() ? nullptr : &it->second;
  }
  bool connected(NodeId peer) const { return stats(peer) != nullptr && stats(peer)->connected; }
  std::uint64_t rejected(const std::string& reason) const {
    auto it = links->rejections().find(reason);
    return it == links->rejections().end() ? 0 : it->second;
  }
};

// A message with entries, so that every field of the codec crosses the wire.
Message sample(MessageType type, NodeId from, NodeId to, std::uint64_t seed) {
  Message m;
  m.type = type;
  m.cluster_id = 0xC1;
  m.from = from;
  m.to = to;
  m.term = 3 + seed;
  m.log_term = 2;
  m.index = 40 + seed;
  m.commit = 39;
  m.reject = seed % 2 == 1;
  m.reject_hint = seed;
  m.context = 1000 + seed;
  m.entries = {engine::Entry{2, 41 + seed, engine::EntryType::normal, "put a=" +
                                                                          std::to_string(seed)},
               engine::Entry{3, 42 + seed, engine::EntryType::noop, ""},
               engine::Entry{3, 43 + seed, engine::EntryType::config_txn,
                             std::string("\0\1\2\xff", 4)}};
  return m;
}

// Established TCP connections (state 01 in /proc/net/tcp) whose local port is one of `ports`:
// one per accepted link still open in this process.
int established_to(const std::set<std::uint16_t>& ports) {
  std::ifstream in("/proc/self/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int count = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const auto colon = local.find(':');
    if (colon == std::string::npos || state != "01") continue;
    const auto port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
    count += ports.count(port) != 0 ? 1 : 0;
  }
  return count;
}

class PeerLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = must(tls::generate_ca("peer test CA", 2));
    other_ca_ = must(tls::generate_ca("another CA", 2));
    write_pair(dir_.path() / "ca", ca_);
    write_pair(dir_.path() / "other-ca", other_ca_);
  }

  void TearDown() override {
    for (auto& [id, node] : nodes_) node->links->stop();
    // Let every aborted handler run while the PeerLinks they point to still exist.
    const auto deadline = std::chrono::steady_clock::now() + kSettle;
    io_.restart();
    while (!io_.stopped() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(io_.stopped()) << "handlers still pending after stop()";
    nodes_.clear();
  }

  static void write_pair(const fs::path& stem, const tls::KeyPair& pair) {
    const Status s = tls::write_pem_files(stem.string() + ".crt", stem.string() + ".key", pair);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  // Writes a certificate for node `cert_id` signed by `ca` and returns its files (trusting
  // `trust_ca`).
  tls::TlsFiles node_files(NodeId cert_id, const tls::KeyPair& ca, const std::string& ca_name,
                           const std::string& tag) {
    const fs::path stem = dir_.path() / ("node" + std::to_string(cert_id) + tag);
    write_pair(stem, must(tls::issue(ca, tls::Identity::node(cert_id), {"localhost"},
                                     {"127.0.0.1"}, 2)));
    return {dir_.path() / (ca_name + ".crt"), stem.string() + ".crt", stem.string() + ".key"};
  }

  // A started PeerLinks for node `id`. Its certificate names `cert_id` (default: `id`) and is
  // signed by the test CA unless `foreign_ca`; it claims cluster `cluster`.
  TestNode& add_node(NodeId id, std::string cluster = kCluster, NodeId cert_id = 0,
                     bool foreign_ca = false) {
    auto node = std::make_unique<TestNode>();
    node->id = id;
    const tls::TlsFiles files =
        foreign_ca ? node_files(cert_id ? cert_id : id, other_ca_, "other-ca", "-other")
                   : node_files(cert_id ? cert_id : id, ca_, "ca", "");
    auto server_tls = tls::make_context(files, tls::Side::server);
    auto client_tls = tls::make_context(files, tls::Side::client);
    EXPECT_TRUE(server_tls.is_ok()) << server_tls.status().to_string();
    EXPECT_TRUE(client_tls.is_ok()) << client_tls.status().to_string();
    PeerLinkOptions o;
    o.self = id;
    o.cluster = std::move(cluster);
    o.admin_endpoint = "https://127.0.0.1:" + std::to_string(9000 + id);
    o.server_tls = *server_tls;
    o.client_tls = *client_tls;
    o.dial_backoff_min_ms = 10;
    o.dial_backoff_max_ms = 200;
    o.handshake_timeout_ms = handshake_timeout_ms_;
    o.ping_interval_ms = 200;
    o.dead_after_ms = dead_after_ms_;
    TestNode* raw = node.get();
    PeerLinkCallbacks callbacks;
    callbacks.on_message = [raw](const Message& m) { raw->received.push_back(m); };
    callbacks.on_peer_down = [raw](NodeId peer, const std::string& reason) {
      raw->downs.emplace_back(peer, reason);
    };
    node->links = std::make_unique<PeerLinks>(
        io_, o, callbacks, Logger(node->log, LogLevel::debug, "node=" + std::to_string(id)));
    const Status s = node->links->start();
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_NE(node->links->listen_port(), 0);
    auto [it, inserted] = nodes_.emplace(id, std::move(node));
    ANYA_ASSERT(inserted);
    return *it->second;
  }

  // Runs the io_context in small steps until `done` or the deadline; returns `done()`.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = kSettle) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
    return done();
  }
  void run_for(std::chrono::milliseconds how_long) {
    run_until([] { return false; }, how_long);
  }

  // Nodes 1, 2 and 3, each knowing the other two by their actual ports, all linked.
  void start_three() {
    for (NodeId id : {1, 2, 3}) add_node(id);
    std::map<NodeId, std::string> members;
    for (auto& [id, node] : nodes_) members[id] = node->address();
    for (auto& [id, node] : nodes_) node->links->set_members(members);
    settle();
  }
  // Waits until every pair is linked over exactly one TCP connection. Both sides report a link
  // up before the duplicate that both dialled is closed; a message sent in between may be lost
  // with the link it was queued on (see EachPairSettlesOnExactlyOneLink).
  void settle() {
    std::set<std::uint16_t> ports;
    for (auto& [id, n] : nodes_) ports.insert(n->links->listen_port());
    const int pairs = static_cast<int>(nodes_.size() * (nodes_.size() - 1) / 2);
    for (int round = 0; round < 2; round++) {  // twice: a slow second dial may still connect
      ASSERT_TRUE(run_until([&] { return all_linked() && established_to(ports) == pairs; }))
          << "links: " << established_to(ports) << "\n" << logs();
      run_for(std::chrono::milliseconds(100));
    }
  }
  bool all_linked() const {
    for (auto& [a, na] : nodes_) {
      for (auto& [b, nb] : nodes_) {
        if (a != b && !na->connected(b)) return false;
      }
    }
    return true;
  }
  TestNode& node(NodeId id) { return *nodes_.at(id); }
  std::string logs() const {
    std::string out;
    for (auto& [id, n] : nodes_) out += n->log->text;
    return out;
  }

  TempDir dir_;
  std::uint64_t dead_after_ms_ = 3000;  // bounds how long a stuck raw peer can hold a link
  std::uint64_t handshake_timeout_ms_ = 2000;
  tls::KeyPair ca_, other_ca_;
  asio::io_context io_;
  std::map<NodeId, std::unique_ptr<TestNode>> nodes_;
};

// ---------------------------------------------------------------- delivery

TEST_F(PeerLinksTest, MessagesArriveDecodedAndEqual) {
  start_three();
  const Message m12 = sample(MessageType::append, 1, 2, 1);
  const Message m21 = sample(MessageType::append_response, 2, 1, 2);
  const Message m31 = sample(MessageType::vote, 3, 1, 3);
  Message m13 = sample(MessageType::config_ack, 1, 3, 4);
  m13.payload = "rejected: field services.db.replicas";
  m13.entries.clear();
  node(1).links->send(m12);
  node(2).links->send(m21);
  node(3).links->send(m31);
  node(1).links->send(m13);
  ASSERT_TRUE(run_until([&] {
    return node(2).received.size() == 1 && node(1).received.size() == 2 &&
           node(3).received.size() == 1;
  })) << logs();
  EXPECT_EQ(node(2).received[0], m12);
  EXPECT_EQ(node(3).received[0], m13);
  // Node 1 got one from 2 and one from 3, in either order.
  EXPECT_THAT(node(1).received, ::testing::UnorderedElementsAre(m21, m31));
  EXPECT_EQ(node(1).stats(2)->messages_sent, 1u);
  EXPECT_EQ(node(2).stats(1)->messages_received, 1u);
  EXPECT_EQ(node(2).stats(1)->bytes_received, engine::encoded_message_size(m12));
  run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(node(2).received.size(), 1u) << "a message was delivered twice";
}

TEST_F(PeerLinksTest, ManyMessagesArriveInOrder) {
  start_three();
  constexpr std::uint64_t kCount = 500;
  for (std::uint64_t i = 0; i < kCount; i++) {
    node(2).links->send(sample(MessageType::append, 2, 3, i));
  }
  ASSERT_TRUE(run_until([&] { return node(3).received.size() == kCount; })) << logs();
  for (std::uint64_t i = 0; i < kCount; i++) {
    EXPECT_EQ(node(3).received[i], sample(MessageType::append, 2, 3, i)) << "message " << i;
  }
}

TEST_F(PeerLinksTest, AFrameOfExactlyMaxFrameBytesArrives) {
  start_three();
  // Seven entries of the largest size, and an eighth that fills the frame to the byte.
  Message big = sample(MessageType::append, 1, 2, 0);
  big.entries.clear();
  for (engine::Index i = 1; i <= 7; i++) {
    big.entries.push_back({5, i, engine::EntryType::normal,
                           std::string(engine::Limits::max_entry_data_bytes, char('a' + i))});
  }
  big.entries.push_back({5, 8, engine::EntryType::normal, ""});
  const std::size_t missing = engine::Limits::max_frame_bytes - engine::encoded_message_size(big);
  big.entries.back().data.assign(missing, 'z');
  ASSERT_EQ(engine::encoded_message_size(big), engine::Limits::max_frame_bytes);
  ASSERT_TRUE(engine::check_message_limits(big).is_ok());

  node(1).links->send(big);
  node(1).links->send(sample(MessageType::heartbeat, 1, 2, 9));  // the link survives it
  ASSERT_TRUE(run_until([&] { return node(2).received.size() == 2; })) << logs();
  EXPECT_TRUE(node(2).received[0] == big) << "the largest frame arrived changed";
  EXPECT_EQ(node(2).received[1], sample(MessageType::heartbeat, 1, 2, 9));
  EXPECT_EQ(node(2).rejected("frame_size"), 0u);
  EXPECT_TRUE(node(1).connected(2));
}

TEST_F(PeerLinksTest, SendingWithoutALinkIsCountedNotQueued) {
  TestNode& a = add_node(1);
  a.links->send(sample(MessageType::heartbeat, 1, 2, 0));
  ASSERT_NE(a.stats(2), nullptr);
  EXPECT_EQ(a.stats(2)->dropped_not_connected, 1u);
  TestNode& b = add_node(2);
  a.links->set_members({{1, a.address()}, {2, b.address()}});
  b.links->set_members({{1, a.address()}, {2, b.address()}});
  ASSERT_TRUE(run_until([&] { return a.connected(2) && b.connected(1); })) << logs();
  run_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(b.received.empty()) << "a message sent before the link was delivered later";
}

// ---------------------------------------------------------------- one link per pair

TEST_F(PeerLinksTest, EachPairSettlesOnExactlyOneLink) {
  start_three();
  run_for(std::chrono::milliseconds(300));  // let duplicate links close
  std::set<std::uint16_t> ports;
  for (auto& [id, n] : nodes_) ports.insert(n->links->listen_port());
  std::map<std::pair<NodeId, NodeId>, std::uint64_t> connects;
  for (auto& [a, na] : nodes_) {
    for (auto& [b, nb] : nodes_) {
      if (a == b) continue;
      ASSERT_TRUE(na->connected(b)) << a << " -> " << b;
      connects[{a, b}] = na->stats(b)->connects;
      // At most one link was replaced by the preferred one while both sides dialled.
      EXPECT_GE(na->stats(b)->connects, 1u);
      EXPECT_LE(na->stats(b)->connects, 2u) << a << " -> " << b;
      EXPECT_EQ(na->stats(b)->disconnects, 0u) << a << " -> " << b << "\n" << na->log->text;
      EXPECT_EQ(na->stats(b)->admin_endpoint, "https://127.0.0.1:" + std::to_string(9000 + b));
    }
    EXPECT_TRUE(na->downs.empty()) << "node " << a << " saw a peer down while linking";
  }
  EXPECT_EQ(established_to(ports), 3) << "three pairs, one TCP connection each";
  run_for(std::chrono::milliseconds(600));  // a few ping intervals: nothing flaps
  for (auto& [pair, count] : connects) {
    EXPECT_EQ(node(pair.first).stats(pair.second)->connects, count);
    EXPECT_TRUE(node(pair.first).connected(pair.second));
    EXPECT_TRUE(node(pair.first).stats(pair.second)->rtt_ms.has_value()) << "no pong yet";
  }
  EXPECT_EQ(established_to(ports), 3);
  EXPECT_THAT(node(1).log->text, HasSubstr("link to node 2 up"));
}

// ---------------------------------------------------------------- connection floods

// `count` TCP connections to 127.0.0.1:`port` that never say anything, made on `io` (so the
// listener, on the same io_context, accepts them meanwhile). Held until destroyed.
class IdleFlood {
 public:
  IdleFlood(asio::io_context& io, std::uint16_t port, int count) {
    const asio::ip::tcp::endpoint target(asio::ip::make_address("127.0.0.1"), port);
    sockets_.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; i++) {
      sockets_.emplace_back(io);
      sockets_.back().async_connect(target, [this](beast::error_code ec) {
        (ec ? failed_ : connected_)++;
      });
    }
  }
  int connected() const { return connected_; }
  int finished() const { return connected_ + failed_; }

 private:
  std::vector<asio::ip::tcp::socket> sockets_;
  int connected_ = 0, failed_ = 0;
};

int lines_containing(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  int count = 0;
  for (std::string line; std::getline(in, line);) count += line.find(needle) != std::string::npos;
  return count;
}

// The attack that took a follower from 15 MB to 282 MB: idle connections to its peer port. Now
// they displace only one another: the pair linked before keeps talking, and a node that dials
// after the flood still links.
TEST_F(PeerLinksTest, FiveHundredIdleConnectionsKeepNeitherLinksNorANewNodeOut) {
  constexpr int kFlood = 500;
  handshake_timeout_ms_ = 10'000;  // the flood stays held through the test
  TestNode& a = add_node(1);
  TestNode& b = add_node(2);
  a.links->set_members({{1, a.address()}, {2, b.address()}});
  b.links->set_members({{1, a.address()}, {2, b.address()}});
  ASSERT_TRUE(run_until([&] { return a.connected(2) && b.connected(1); })) << logs();

  IdleFlood flood(io_, b.links->listen_port(), kFlood);
  const PeerLinkOptions defaults;
  const auto evicted_all = static_cast<std::uint64_t>(
      kFlood - static_cast<int>(defaults.max_unauthenticated_links_per_source));
  ASSERT_TRUE(run_until([&] {
    return flood.finished() == kFlood && b.rejected("flood_evicted") >= evicted_all;
  }, std::chrono::seconds(10))) << "connected " << flood.connected() << ", evicted "
                                << b.rejected("flood_evicted");
  EXPECT_EQ(flood.connected(), kFlood);
  EXPECT_EQ(b.rejected("flood_refused"), 0u);
  // Hundreds of evictions, one line: the rest are counted in the next one.
  EXPECT_EQ(lines_containing(b.log->text, "that was not a link yet"), 1) << b.log->text;

  a.links->send(sample(MessageType::append, 1, 2, 1));
  b.links->send(sample(MessageType::append_response, 2, 1, 2));
  ASSERT_TRUE(run_until([&] { return a.received.size() == 1 && b.received.size() == 1; }))
      << logs();
  EXPECT_TRUE(a.connected(2)) << "the flood cost the pair its link";

  TestNode& c = add_node(3);
  std::map<NodeId, std::string> members;
  for (auto& [id, n] : nodes_) members[id] = n->address();
  for (auto& [id, n] : nodes_) n->links->set_members(members);
  ASSERT_TRUE(run_until([&] { return all_linked(); }, std::chrono::seconds(10))) << logs();
  EXPECT_TRUE(c.connected(2) && b.connected(3));
  EXPECT_EQ(b.stats(1)->disconnects, 0u);
}

// ---------------------------------------------------------------- peer down

TEST_F(PeerLinksTest, StoppingAPeerReportsItDownToTheOthers) {
  start_three();
  node(3).links->stop();
  ASSERT_TRUE(run_until([&] {
    return !node(1).connected(3) && !node(2).connected(3) && !node(1).downs.empty() &&
           !node(2).downs.empty();
  })) << logs();
  for (NodeId id : {1, 2}) {
    ASSERT_EQ(node(id).downs.size(), 1u);
    EXPECT_EQ(node(id).downs[0].first, 3u);
    EXPECT_FALSE(node(id).downs[0].second.empty()) << "no reason given";
    EXPECT_EQ(node(id).stats(3)->disconnects, 1u);
  }
  EXPECT_TRUE(node(1).connected(2)) << "the link between the survivors went down too";
  node(1).links->send(sample(MessageType::heartbeat, 1, 3, 0));
  EXPECT_EQ(node(1).stats(3)->dropped_not_connected, 1u);
  node(1).links->send(sample(MessageType::heartbeat, 1, 2, 0));
  ASSERT_TRUE(run_until([&] { return node(2).received.size() == 1; }));
}

// ---------------------------------------------------------------- refusals

TEST_F(PeerLinksTest, ANodeCertificateFromAnotherCaIsRefused) {
  TestNode& a = add_node(1);
  TestNode& b = add_node(4, kCluster, 0, /*foreign_ca=*/true);
  const std::map<NodeId, std::string> members = {{1, a.address()}, {4, b.address()}};
  a.links->set_members(members);
  b.links->set_members(members);
  ASSERT_TRUE(run_until([&] { return a.rejected("tls") >= 2 && b.rejected("tls") >= 2; }))
      << logs();
  EXPECT_FALSE(a.connected(4));
  EXPECT_FALSE(b.connected(1));
  EXPECT_THAT(a.log->text, HasSubstr("TLS handshake"));
}

TEST_F(PeerLinksTest, ANodeOfAnotherClusterIsRefused) {
  TestNode& a = add_node(1);
  TestNode& b = add_node(4, "another-cluster");
  b.links->set_members({{1, a.address()}});  // node 1 does not know node 4: it only accepts
  ASSERT_TRUE(run_until([&] { return a.rejected("cluster") >= 2; })) << logs();
  EXPECT_FALSE(a.connected(4));
  EXPECT_FALSE(b.connected(1));
  EXPECT_THAT(a.log->text, HasSubstr("node 4 is in cluster 'another-cluster'"));
  EXPECT_THAT(b.log->text, HasSubstr("another-cluster"));  // the dialler hears why
}

TEST_F(PeerLinksTest, ANodeThatIsNotAMemberIsRefused) {
  TestNode& a = add_node(1);
  TestNode& b = add_node(2);
  TestNode& stranger = add_node(4);  // a genuine certificate from the cluster CA
  a.links->set_members({{1, a.address()}, {2, b.address()}});
  b.links->set_members({{1, a.address()}, {2, b.address()}});
  stranger.links->set_members({{1, a.address()}, {4, stranger.address()}});
  ASSERT_TRUE(run_until([&] { return a.rejected("not_a_member") >= 2 && a.connected(2); }))
      << logs();
  EXPECT_FALSE(a.connected(4));
  EXPECT_FALSE(stranger.connected(1));
  EXPECT_THAT(a.log->text, HasSubstr("node 4 is not a member"));
}

TEST_F(PeerLinksTest, ADialledNodeWhoseCertificateNamesAnotherNodeIsRefused) {
  TestNode& a = add_node(1);
  TestNode& impostor = add_node(5);  // a real node 5, listed by node 1 as node 2's address
  a.links->set_members({{1, a.address()}, {2, impostor.address()}});
  ASSERT_TRUE(run_until([&] { return a.rejected("identity") >= 2; })) << logs();
  EXPECT_FALSE(a.connected(2));
  EXPECT_FALSE(a.connected(5));
  EXPECT_FALSE(impostor.connected(1));
  EXPECT_THAT(a.log->text, HasSubstr("node 5"));
}

// ---------------------------------------------------------------- a raw peer

enum class Reading { no, yes };

// A WebSocket client speaking the peer protocol by hand with node `cert`'s certificate: it
// claims to be node `claim`, sends `frames`, then (with Reading::yes) reads until the link
// closes, and waits for `finish` before closing. Runs on its own thread and io_context.
// Returns "" or what failed.
// A non-zero `receive_buffer_bytes` fixes the socket's receive buffer (turning off the kernel's
// autotuning), so a raw peer that does not read holds back its sender after a few frames.
std::string raw_peer(const tls::TlsFiles& cert, std::uint16_t port, const std::string& claim,
                     const std::vector<std::string>& frames, Reading reading,
                     std::shared_future<void> finish, int receive_buffer_bytes = 0) {
  try {
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(cert.ca_cert.string());
    ctx.use_certificate_chain_file(cert.cert.string());
    ctx.use_private_key_file(cert.key.string(), asio::ssl::context::pem);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
    if (receive_buffer_bytes > 0) {
      beast::get_lowest_layer(ws).socket().open(asio::ip::tcp::v4());
      beast::get_lowest_layer(ws).socket().set_option(
          asio::socket_base::receive_buffer_size(receive_buffer_bytes));
    }
    beast::get_lowest_layer(ws).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    ws.set_option(websocket::stream_base::decorator([claim](websocket::request_type& r) {
      r.set("anya-ha-node", claim);
      r.set("anya-ha-cluster", kCluster);
      r.set("anya-ha-admin", "https://raw");
    }));
    ws.handshake("127.0.0.1", "/anya-ha/peer/v1");
    ws.binary(true);
    for (const std::string& f : frames) ws.write(asio::buffer(f));
    if (reading == Reading::yes) {
      beast::flat_buffer buffer;
      beast::error_code ec;
      while (!ec) ws.read(buffer, ec);  // answers a close frame, then ends with an error
    }
    finish.wait_for(kSettle);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

class RawPeerTest : public PeerLinksTest {
 protected:
  // Runs raw_peer against node 1 while pumping node 1's io_context until `done`.
  std::string exchange(const std::string& claim, std::vector<std::string> frames,
                       const std::function<bool()>& done, Reading reading = Reading::no,
                       std::chrono::milliseconds limit = kSettle) {
    const tls::TlsFiles cert = node_files(3, ca_, "ca", "-raw");
    std::promise<void> finish;
    std::shared_future<void> finished = finish.get_future().share();
    const std::uint16_t port = node(1).links->listen_port();
    auto result = std::async(std::launch::async, [=] {
      return raw_peer(cert, port, claim, frames, reading, finished);
    });
    EXPECT_TRUE(run_until(done, limit)) << node(1).log->text;
    finish.set_value();
    // Keep node 1 running while the raw peer closes, so it never waits on us.
    run_until([&] {
      return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
    EXPECT_EQ(result.wait_for(kSettle), std::future_status::ready);
    return result.get();
  }
};

TEST_F(RawPeerTest, AFrameWhoseSenderIsNotTheAuthenticatedPeerIsDropped) {
  add_node(1);
  const Message spoofed = sample(MessageType::append, 2, 1, 1);   // node 3 posing as node 2
  const Message misrouted = sample(MessageType::append, 3, 9, 2);  // addressed to someone else
  const Message genuine = sample(MessageType::append, 3, 1, 3);
  const std::string error = exchange(
      "3", {engine::encode_message(spoofed), engine::encode_message(misrouted),
            engine::encode_message(genuine)},
      [&] { return !node(1).received.empty(); });
  EXPECT_EQ(error, "");
  ASSERT_EQ(node(1).received.size(), 1u);
  EXPECT_EQ(node(1).received[0], genuine);
  EXPECT_EQ(node(1).rejected("spoofed_sender"), 2u);
  EXPECT_EQ(node(1).stats(3)->messages_received, 1u);
  EXPECT_THAT(node(1).log->text, HasSubstr("claiming to be from node 2"));
}

TEST_F(RawPeerTest, AFrameThatDoesNotDecodeIsDroppedAndTheLinkStays) {
  add_node(1);
  std::string corrupt = engine::encode_message(sample(MessageType::heartbeat, 3, 1, 0));
  corrupt[corrupt.size() - 1] ^= 1;  // the checksum
  const Message genuine = sample(MessageType::heartbeat, 3, 1, 1);
  const std::string error = exchange("3", {"not a frame", corrupt, engine::encode_message(genuine)},
                                     [&] { return !node(1).received.empty(); });
  EXPECT_EQ(error, "");
  ASSERT_EQ(node(1).received.size(), 1u);
  EXPECT_EQ(node(1).received[0], genuine);
  EXPECT_EQ(node(1).rejected("malformed"), 2u);
}

// Beast checks the WebSocket frame header against read_message_max before the payload arrives,
// so node 1 refuses while the sender is still sending.
TEST_F(RawPeerTest, AFrameOverMaxFrameBytesCostsTheSenderItsLinkAndIsCounted) {
  add_node(1);
  // The sender reads after writing, as a real node does, so it answers node 1's close.
  const std::string error = exchange(
      "3", {std::string(engine::Limits::max_frame_bytes + 1, 'x')},
      [&] { return node(1).stats(3) != nullptr && node(1).stats(3)->disconnects == 1; },
      Reading::yes, std::chrono::milliseconds(4000));
  (void)error;  // the raw peer sees the close: either error or none is fine
  EXPECT_TRUE(node(1).received.empty());
  EXPECT_FALSE(node(1).connected(3));
  // Beast refuses the frame from its header; depending on whether the sender is still writing
  // when the link is torn down, the refusal surfaces as too-big or as a protocol violation.
  EXPECT_EQ(node(1).rejected("frame_size") + node(1).rejected("protocol"), 1u)
      << node(1).log->text;
}

// A sender of an oversized frame that then stops reading never completes the close handshake
// node 1 starts; it must still not hold the link open for longer than dead_after_ms.
TEST_F(RawPeerTest, AnOversizedFrameSenderThatStopsReadingLosesItsLinkInBoundedTime) {
  dead_after_ms_ = 1000;
  add_node(1);
  const auto start = std::chrono::steady_clock::now();
  const std::string error = exchange(
      "3", {std::string(engine::Limits::max_frame_bytes + 1, 'x')},
      [&] { return node(1).stats(3) != nullptr && node(1).stats(3)->disconnects == 1; },
      Reading::no, std::chrono::milliseconds(4000));
  (void)error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(4000));
  EXPECT_TRUE(node(1).received.empty());
  EXPECT_FALSE(node(1).connected(3));
}

TEST_F(RawPeerTest, AClaimedNodeIdThatDiffersFromTheCertificateIsRefused) {
  add_node(1);
  const std::string error = exchange("2", {engine::encode_message(
                                              sample(MessageType::heartbeat, 2, 1, 0))},
                                     [&] { return node(1).rejected("identity") == 1; });
  EXPECT_FALSE(error.empty()) << "the upgrade went through";  // 403 instead of 101
  EXPECT_TRUE(node(1).received.empty());
  EXPECT_FALSE(node(1).connected(2));
  EXPECT_FALSE(node(1).connected(3));
  EXPECT_THAT(node(1).log->text,
              HasSubstr("certificate is for node 3, but it claims to be node 2"));
}

// Node 3's end of a peer link, by hand with node 3's certificate `cert`, on its own thread: once
// `go` is ready it accepts the connection already waiting on `acceptor` (the kernel completed it
// and holds node 1's TLS hello meanwhile), completes TLS and the upgrade, and returns every
// message that arrives until one equals `last` or the link closes.
std::vector<Message> raw_listener(const tls::TlsFiles& cert, asio::ip::tcp::acceptor& acceptor,
                                  std::shared_future<void> go, const Message& last) {
  std::vector<Message> received;
  try {
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.load_verify_file(cert.ca_cert.string());
    ctx.use_certificate_chain_file(cert.cert.string());
    ctx.use_private_key_file(cert.key.string(), asio::ssl::context::pem);
    ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(acceptor.get_executor(), ctx);
    go.wait_for(kSettle);
    acceptor.accept(beast::get_lowest_layer(ws).socket());
    ws.next_layer().handshake(asio::ssl::stream_base::server);
    ws.accept();
    beast::flat_buffer buffer;
    while (received.empty() || received.back() != last) {
      ws.read(buffer);
      const auto data = buffer.cdata();
      Result<Message> m = engine::decode_message(
          std::string_view(static_cast<const char*>(data.data()), data.size()));
      if (!m) break;
      received.push_back(*m);
      buffer.consume(buffer.size());
    }
  } catch (const std::exception&) {
    // The link closed early: what arrived so far is the answer.
  }
  return received;
}

// Node 1 keeps the link it dialled (1 < 3). When its own dial to node 3 comes up after a link
// node 3 dialled, the messages still queued on the replaced link must go out on the new one,
// not be lost with the old. Node 1's dial is held at node 3's listener, which does not accept it
// yet; meanwhile "node 3" dials node 1 from a raw peer that never reads and has a small receive
// buffer, so node 1's queue on that link certainly holds a backlog when it is replaced.
TEST_F(RawPeerTest, MessagesQueuedOnAReplacedLinkGoOutOnTheNewLink) {
  // Generous clocks: node 1's dial waits for TLS through most of the test, and the stalled link
  // answers no ping; on a loaded machine the defaults could close either first.
  handshake_timeout_ms_ = 20'000;
  dead_after_ms_ = 20'000;
  TestNode& one = add_node(1);
  const tls::TlsFiles cert = node_files(3, ca_, "ca", "-raw");
  constexpr std::uint64_t kCount = 32;
  const auto big = [](std::uint64_t seed) {
    Message m = sample(MessageType::append, 1, 3, seed);
    m.entries[0].data.assign(1u << 20, static_cast<char>('a' + seed % 26));
    return m;
  };

  asio::io_context listener_io;
  asio::ip::tcp::acceptor acceptor(
      listener_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::promise<void> go, finish;
  auto listener = std::async(std::launch::async, [&, go_future = go.get_future().share()] {
    return raw_listener(cert, acceptor, go_future, big(kCount - 1));
  });
  std::future<std::string> stalled;  // started once node 1's dial is on its way
  const auto ready = [](auto& future) {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  // Whatever happens below, both helper threads end before the test does: a failed check must
  // fail the test, not hang it in a future's destructor.
  bool released = false;
  const auto release = [&] {
    if (released) return;
    released = true;
    go.set_value();
    if (!run_until([&] { return ready(listener); })) {
      one.links->stop();  // ends the listener's read, if it got that far
      asio::ip::tcp::socket poke(listener_io);  // or its accept, if node 1 never dialled
      beast::error_code ignored;
      poke.connect(acceptor.local_endpoint(), ignored);
      run_until([&] { return ready(listener); });
    }
    finish.set_value();
    if (stalled.valid()) run_until([&] { return ready(stalled); });
  };
  struct AtExit {
    std::function<void()> run;
    ~AtExit() { run(); }
  } at_exit{release};

  // Node 1 dials node 3 first (set_members starts the dial: it is not retracted when a link
  // comes up meanwhile); the kernel completes the connection and holds node 1's TLS hello until
  // the listener accepts. Then the raw peer's link, dialled by "node 3", comes up.
  one.links->set_members(
      {{1, one.address()}, {3, "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port())}});
  run_for(std::chrono::milliseconds(50));
  const std::uint16_t port = one.links->listen_port();
  stalled = std::async(std::launch::async, [=, finished = finish.get_future().share()] {
    return raw_peer(cert, port, "3", {}, Reading::no, finished, 64 << 10);
  });
  ASSERT_TRUE(run_until([&] { return one.connected(3); })) << one.log->text;
  EXPECT_THAT(one.log->text, HasSubstr("link to node 3 up (accepted)"));

  // 32 MiB: well past what the two kernels buffer (4 MiB to send, 64 KiB to receive), well
  // inside the queue's limits, so most of it is still queued when the link is replaced.
  for (std::uint64_t i = 0; i < kCount; i++) one.links->send(big(i));
  run_for(std::chrono::milliseconds(300));  // node 1 writes until the stalled peer holds it back
  // The stalled peer reads nothing more, so this stays put: messages [0, sent) are in the old
  // socket's buffers, message `sent` is being written, and the rest are queued.
  const std::uint64_t sent = one.stats(3)->messages_sent;
  ASSERT_LT(sent + 1, kCount) << "the stalled link did not hold back";

  release();  // node 3 answers node 1's dial: the dialled link replaces the accepted one
  const std::vector<Message> received = listener.get();
  EXPECT_EQ(stalled.get(), "");
  EXPECT_THAT(one.log->text, HasSubstr("replaced by a newer link"));
  // Exactly the queued ones arrive, in order: the frames handed to the old socket die with it,
  // and the one on the wire stays with it; every later one is moved.
  ASSERT_EQ(received.size(), kCount - sent - 1) << one.log->text;
  for (std::uint64_t i = 0; i < received.size(); i++) {
    EXPECT_EQ(received[i], big(sent + 1 + i)) << "message " << i;
  }
  EXPECT_EQ(one.stats(3)->dropped_queue_full, 0u);
}

}  // namespace
}  // namespace anya::transport

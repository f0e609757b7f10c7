// DNS SRV discovery against a real dnsmasq that the test starts on 127.0.0.1 (a free port):
// records with priorities and weights, NXDOMAIN, a record changed between two resolutions
// (dnsmasq restarted with new records), no server at all (timeout), a set large enough to come
// over TCP, and targets that name no node. Each dnsmasq is stopped by the test (SIGTERM, then
// SIGKILL), and every wait is bounded.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "transport/discovery/dns_client.hpp"
#include "transport/discovery/dns_srv_method.hpp"

extern char** environ;

namespace anya::transport::discovery {
namespace {

namespace asio = boost::asio;
using engine::discovery::MethodReport;
using Clock = std::chrono::steady_clock;

constexpr const char* kDnsmasq = "/usr/sbin/dnsmasq";
constexpr const char* kName = "_anya-ha._tcp.cluster.example";

// A port free for both UDP and TCP on 127.0.0.1 at the time of asking.
std::uint16_t free_port() {
  asio::io_context io;
  for (int attempt = 0; attempt < 50; attempt++) {
    asio::ip::udp::socket u(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const std::uint16_t port = u.local_endpoint().port();
    boost::system::error_code ec;
    asio::ip::tcp::acceptor t(io);
    t.open(asio::ip::tcp::v4());
    t.bind(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) return port;
  }
  ADD_FAILURE() << "no free port";
  return 0;
}

class Dnsmasq {
 public:
  Dnsmasq(std::uint16_t port, std::vector<std::string> records) : port_(port) {
    std::vector<std::string> args = {kDnsmasq, "--no-daemon", "--port=" + std::to_string(port),
                                     "--listen-address=127.0.0.1", "--bind-interfaces",
                                     "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                                     "--local=/cluster.example/", "--local-ttl=1",
                                     "--pid-file=", "--user=root", "--log-facility=-"};
    for (std::string& r : records) args.push_back(std::move(r));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, kDnsmasq, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      ADD_FAILURE() << "cannot start " << kDnsmasq << ": " << std::strerror(rc);
      return;
    }
    wait_ready();
  }
  ~Dnsmasq() { stop(); }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; i++) {  // up to 2 s, then SIGKILL
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // Until it answers a query (up to 5 s).
  void wait_ready() {
    for (int attempt = 0; attempt < 50; attempt++) {
      asio::io_context io;
      bool answered = false;
      dns::query(io, {"127.0.0.1", port_}, kName, dns::kTypeSrv, 100,
                 [&](Result<dns::Message> m) { answered = m.is_ok(); });
      io.run();
      if (answered) return;
    }
    ADD_FAILURE() << "dnsmasq did not answer on port " << port_;
  }

  std::uint16_t port_;
  pid_t pid_ = -1;
};

std::string srv(const std::string& target, int port, int priority, int weight,
                const char* name = kName) {
  return "--srv-host=" + std::string(name) + "," + target + "," + std::to_string(port) + "," +
         std::to_string(priority) + "," + std::to_string(weight);
}
std::string host(const std::string& name, const std::string& address) {
  return "--host-record=" + name + "," + address;
}

// Runs one DNS SRV method on its own io_context and collects its reports.
struct Harness {
  asio::io_context io;
  std::vector<MethodReport> reports;
  std::unique_ptr<Method> method;

  Harness(std::uint16_t port, std::uint64_t min_refresh_ms, std::uint64_t timeout_ms,
          std::string name = kName) {
    DnsSrvOptions o;
    o.name = std::move(name);
    o.server = {"127.0.0.1", port};
    o.min_refresh_ms = min_refresh_ms;
    o.max_refresh_ms = 60'000;
    o.timeout_ms = timeout_ms;
    method = make_dns_srv_method(io, o, Logger());
    EXPECT_TRUE(method->start([this](MethodReport r) { reports.push_back(std::move(r)); }));
  }
  ~Harness() {
    method->stop();
    io.run_for(std::chrono::milliseconds(50));
  }
  // Runs the loop until `done` holds or `limit` passes; false on the limit.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      io.run_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  bool next_report(std::chrono::milliseconds limit) {
    const std::size_t before = reports.size();
    return run_until([&] { return reports.size() > before; }, limit);
  }
};

TEST(DnsSrvDiscovery, ProposesEachTargetAsItsNodeInPriorityOrder) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  Dnsmasq server(port, {srv("node-1.cluster.example", 7101, 20, 5),
                        srv("node-2.cluster.example", 7102, 10, 5),
                        srv("node-3.cluster.example", 7103, 30, 0),
                        host("node-1.cluster.example", "127.0.0.11"),
                        host("node-2.cluster.example", "127.0.0.12"),
                        host("node-3.cluster.example", "127.0.0.13")});
  Harness h(port, 1000, 1000);
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  const MethodReport& r = h.reports.front();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.method, "dns_srv");
  ASSERT_EQ(r.peers.size(), 3u);
  EXPECT_EQ(r.peers[0].id, 2u);
  EXPECT_EQ(r.peers[0].address, "127.0.0.12:7102");
  EXPECT_EQ(r.peers[0].priority, 10);
  EXPECT_EQ(r.peers[1].id, 1u);
  EXPECT_EQ(r.peers[1].address, "127.0.0.11:7101");
  EXPECT_EQ(r.peers[2].id, 3u);
}

TEST(DnsSrvDiscovery, NxdomainIsAFailureNamingTheName) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  Dnsmasq server(port, {srv("node-1.cluster.example", 7101, 1, 1),
                        host("node-1.cluster.example", "127.0.0.11")});
  Harness h(port, 1000, 1000, "_nothing._tcp.cluster.example");
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  const MethodReport& r = h.reports.front();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "nxdomain");
  EXPECT_NE(r.error.find("NXDOMAIN for _nothing._tcp.cluster.example"), std::string::npos)
      << r.error;
}

TEST(DnsSrvDiscovery, NoServerIsATimeoutAndTheNextTryFindsIt) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  Harness h(port, 200, 300);
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  EXPECT_FALSE(h.reports.back().ok);
  EXPECT_EQ(h.reports.back().reason, "timeout");
  EXPECT_NE(h.reports.back().error.find("timeout after 300ms asking 127.0.0.1:"),
            std::string::npos) << h.reports.back().error;
  Dnsmasq server(port, {srv("node-4.cluster.example", 7104, 1, 1),
                        host("node-4.cluster.example", "127.0.0.14")});
  ASSERT_TRUE(h.run_until([&] { return h.reports.back().ok; }, std::chrono::seconds(20)));
  ASSERT_EQ(h.reports.back().peers.size(), 1u);
  EXPECT_EQ(h.reports.back().peers[0].address, "127.0.0.14:7104");
}

TEST(DnsSrvDiscovery, AChangedRecordIsFollowedAfterItsTtl) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  auto server = std::make_unique<Dnsmasq>(
      port, std::vector<std::string>{srv("node-2.cluster.example", 7102, 1, 1),
                                     host("node-2.cluster.example", "127.0.0.12")});
  Harness h(port, 200, 1000);  // TTL 1 s (--local-ttl=1): asked again every second
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  ASSERT_TRUE(h.reports.back().ok);
  EXPECT_EQ(h.reports.back().peers.at(0).address, "127.0.0.12:7102");
  // The pod moved: the record now says 127.0.0.22.
  server.reset();
  server = std::make_unique<Dnsmasq>(
      port, std::vector<std::string>{srv("node-2.cluster.example", 7102, 1, 1),
                                     host("node-2.cluster.example", "127.0.0.22")});
  const auto changed = Clock::now();
  ASSERT_TRUE(h.run_until([&] {
    return h.reports.back().ok && h.reports.back().peers.at(0).address == "127.0.0.22:7102";
  }, std::chrono::seconds(20)));
  const auto followed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - changed).count();
  std::printf("[ figure ] SRV change followed %lld ms after the record changed (TTL 1 s)\n",
              static_cast<long long>(followed_ms));
  EXPECT_LT(followed_ms, 5000);
  EXPECT_EQ(h.reports.back().peers.at(0).id, 2u) << "the same node, at its new address";
}

TEST(DnsSrvDiscovery, ALargeSetComesOverTcp) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  std::vector<std::string> records;
  constexpr int kNodes = 200;
  for (int i = 1; i <= kNodes; i++) {
    const std::string name = "node-" + std::to_string(i) + ".cluster.example";
    records.push_back(srv(name, 7100, 1, 1));
    records.push_back(host(name, "127.0." + std::to_string(i / 256) + "." +
                                     std::to_string(i % 256)));
  }
  Dnsmasq server(port, records);
  Harness h(port, 1000, 2000);
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  ASSERT_TRUE(h.reports.back().ok) << h.reports.back().error;
  EXPECT_EQ(h.reports.back().peers.size(), static_cast<std::size_t>(kNodes));
}

TEST(DnsSrvDiscovery, TargetsThatNameNoNodeAreLeftOut) {
  if (!std::filesystem::exists(kDnsmasq)) GTEST_SKIP() << "dnsmasq-base is not installed";
  const std::uint16_t port = free_port();
  Dnsmasq server(port, {srv("web.cluster.example", 80, 1, 1),
                        srv("node-5.cluster.example", 7105, 1, 1),
                        srv("node-6.cluster.example", 7106, 1, 1),  // no A record
                        host("web.cluster.example", "127.0.0.80"),
                        host("node-5.cluster.example", "127.0.0.15")});
  Harness h(port, 1000, 1000);
  ASSERT_TRUE(h.next_report(std::chrono::seconds(10)));
  ASSERT_TRUE(h.reports.back().ok) << h.reports.back().error;
  ASSERT_EQ(h.reports.back().peers.size(), 1u);
  EXPECT_EQ(h.reports.back().peers[0].id, 5u);
}

}  // namespace
}  // namespace anya::transport::discovery

// The Discovery service with the static method and scripted methods: what the node is told,
// the metrics, the status, and the errors of methods that cannot start. No sockets.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "transport/discovery/discovery.hpp"
#include "transport/metrics/metrics.hpp"

namespace anya::transport::discovery {
namespace {

namespace asio = boost::asio;
using engine::discovery::MethodReport;
using engine::discovery::PeerChange;
using engine::discovery::Proposal;

// A method the test drives by hand.
class Scripted final : public Method {
 public:
  explicit Scripted(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Status start(ReportFn report) override {
    report_ = std::move(report);
    return {};
  }
  void stop() override { report_ = nullptr; }
  std::map<std::string, std::uint64_t> drops() const override { return drops_; }
  void report(MethodReport r) {
    if (report_) report_(std::move(r));
  }
  std::map<std::string, std::uint64_t> drops_;

 private:
  std::string name_;
  ReportFn report_;
};

Proposal at(engine::NodeId id, std::string address) {
  Proposal p;
  p.id = id;
  p.address = std::move(address);
  return p;
}

DiscoveryOptions options(std::vector<std::string> methods) {
  DiscoveryOptions o;
  o.self = 1;
  o.cluster = "prod";
  o.advertise = {"127.0.0.1", 7101};
  o.members = {{1, {"127.0.0.1", 7101}}, {2, {"127.0.0.1", 7102}}};
  o.config.methods = std::move(methods);
  o.getenv = [](const char*) -> const char* { return nullptr; };
  return o;
}

TEST(DiscoveryService, MergesReportsTellsTheNodeAndKeepsMetrics) {
  asio::io_context io;
  metrics::Registry registry;
  Discovery d(io, options({"static", "dns_srv"}), Logger(), &registry);
  EXPECT_TRUE(d.follows());
  auto dns = std::make_unique<Scripted>("dns_srv");
  Scripted* script = dns.get();
  std::vector<std::unique_ptr<Method>> methods;
  methods.push_back(make_static_method(io, options({}).members));
  methods.push_back(std::move(dns));
  std::vector<PeerChange> told;
  ASSERT_TRUE(d.start_with(std::move(methods), [&](const std::vector<PeerChange>& c) {
    told.insert(told.end(), c.begin(), c.end());
  }));
  io.run_for(std::chrono::milliseconds(20));
  ASSERT_EQ(told.size(), 2u) << "the static list, reported once at start";
  script->report(
      MethodReport::success("dns_srv", {at(2, "10.0.0.2:7100"), at(3, "10.0.0.3:7100")}));
  ASSERT_EQ(told.size(), 3u) << "node 3 is new; node 2 disagrees without a move: static wins";
  EXPECT_EQ(told.back().id, 3u);
  script->report(MethodReport::success("dns_srv", {at(2, "10.0.0.22:7100")}));
  ASSERT_EQ(told.size(), 5u);
  EXPECT_EQ(told[3].kind, PeerChange::Kind::address_changed) << "a move DNS saw wins";
  EXPECT_EQ(told[3].address, "10.0.0.22:7100");
  EXPECT_EQ(told[4].kind, PeerChange::Kind::removed);
  script->report(MethodReport::failure("dns_srv", "nxdomain", "NXDOMAIN for x"));
  script->report(MethodReport::failure("dns_srv", "nxdomain", "NXDOMAIN for x"));
  script->drops_["bad_mac"] = 4;
  io.run_for(std::chrono::milliseconds(1100));  // one housekeeping round copies the drops
  EXPECT_EQ(d.peers().peers().at(2).address, "10.0.0.22:7100") << "a failure keeps entries";
  const std::string text = registry.render();
  EXPECT_NE(text.find("anya_discovery_peers{method=\"dns_srv\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("anya_discovery_peers{method=\"static\"} 2"), std::string::npos);
  EXPECT_NE(text.find("anya_discovery_errors_total{method=\"dns_srv\",reason=\"nxdomain\"} 2"),
            std::string::npos) << text;
  EXPECT_NE(text.find("anya_discovery_errors_total{method=\"dns_srv\",reason=\"bad_mac\"} 4"),
            std::string::npos);
  EXPECT_NE(text.find("anya_discovery_last_success_seconds{method=\"dns_srv\"} "),
            std::string::npos);
  EXPECT_NE(text.find("anya_discovery_known_peers 2"), std::string::npos);
  const boost::json::value status = d.status_json();
  const boost::json::object& dns_status = status.at("methods").as_array()[1].as_object();
  EXPECT_EQ(dns_status.at("method").as_string(), "dns_srv");
  EXPECT_FALSE(dns_status.at("ok").as_bool());
  EXPECT_EQ(dns_status.at("consecutive_failures").as_uint64(), 2u);
  EXPECT_EQ(dns_status.at("last_error").as_string(), "NXDOMAIN for x");
  EXPECT_EQ(status.at("peers").as_array().size(), 2u);
  // Members follow what discovery saw; node 3 was never a member and is not added.
  const std::map<engine::NodeId, std::string> membership = {{1, "127.0.0.1:7101"},
                                                            {2, "127.0.0.1:7102"}};
  EXPECT_EQ(d.peers().dial_addresses(membership, {}, 1).at(2), "10.0.0.22:7100");
  d.stop();
  script->report(MethodReport::success("dns_srv", {}));
  EXPECT_EQ(told.size(), 5u) << "nothing after stop";
}

TEST(DiscoveryService, TheStaticListAloneChangesNothingForTheNode) {
  asio::io_context io;
  Discovery d(io, options({"static"}), Logger(), nullptr);
  EXPECT_FALSE(d.follows());
  ASSERT_TRUE(d.start([](const std::vector<PeerChange>&) {}));
  io.run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(d.peers().peers().size(), 2u);
  d.stop();
}

TEST(DiscoveryService, MethodsThatCannotStartNameTheField) {
  asio::io_context io;
  DiscoveryOptions k = options({"kubernetes"});
  k.config.kubernetes.service = "anya-ha";
  Status s = Discovery(io, k, Logger(), nullptr).start({});
  EXPECT_NE(s.message().find("discovery.kubernetes.api_server: not set"), std::string::npos)
      << s.message();
  DiscoveryOptions m = options({"multicast"});
  m.config.multicast.secret_file = "/nonexistent/multicast.secret";
  s = Discovery(io, m, Logger(), nullptr).start({});
  EXPECT_NE(s.message().find("discovery.multicast.secret_file: /nonexistent/multicast.secret"),
            std::string::npos) << s.message();
}

}  // namespace
}  // namespace anya::transport::discovery

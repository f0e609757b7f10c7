// ClusterManager end to end: real nodes over TLS sockets on 127.0.0.1, several in one process,
// with certificates made in a temporary directory. Each test is bounded (join and election waits
// of a few seconds) and removes its directory.
#include "transport/embed/cluster_manager.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

namespace anya {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr milliseconds kJoinTimeout{10000};
constexpr milliseconds kEventTimeout{5000};
constexpr int kPortAttempts = 5;

// A directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("anya-embed-test-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Leadership events seen by one node's handler, waited on from the test thread.
struct Recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<LeadershipEvent> seen;

  LeadershipHandler handler() {
    return [this](const LeadershipEvent& e) {
      std::lock_guard lock(mutex);
      seen.push_back(e);
      cv.notify_all();
    };
  }
  template <typename Pred>
  bool wait_for(Pred pred, milliseconds timeout = kEventTimeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] {
      return std::any_of(seen.begin(), seen.end(), pred);
    });
  }
};

constexpr const char* kJoinToken = "a-join-token-for-the-embedding-tests";

ClusterConfig make_config(const fs::path& dir, std::uint64_t id, int base_port, int voters) {
  ClusterConfig c;
  c.node_id = id;
  c.cluster = "embed-test";
  StaticDiscovery d;
  for (int i = 1; i <= voters; i++) {
    d.nodes.push_back(std::to_string(i) + "@127.0.0.1:" + std::to_string(base_port + i));
  }
  c.discovery = d;
  // admin_address left empty: the bind port + 100 (the default under test).
  c.bind_address = "127.0.0.1:" + std::to_string(base_port + static_cast<int>(id));
  c.data_dir = dir / ("node-" + std::to_string(id));
  c.fsync = false;  // tmpfs-speed; durability is the WAL's tests' business
  c.log_level = "error";
  EXPECT_TRUE(ensure_node_certificates(dir / "certs", c).is_ok());
  // A joining node's request is let in by a token for a role that may add members.
  c.auth.custom_roles["joiner"] = {transport::auth::Permission::members_write,
                                   transport::auth::Permission::members_read};
  c.auth.tokens.push_back({"join", transport::auth::sha256_hex(kJoinToken), "joiner"});
  return c;
}

struct TestCluster {
  TempDir dir;
  int base_port = 0;
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<std::unique_ptr<ClusterManager>> nodes;  // nodes[i] has id i + 1

  // Starts `voters` nodes; a random base port in 20000..40000, another one if a port is taken.
  Status start(int voters) {
    std::random_device rd;
    Status last;
    for (int attempt = 0; attempt < kPortAttempts; attempt++) {
      base_port = 20000 + static_cast<int>(rd() % 20000);
      nodes.clear();
      recorders.clear();
      last = {};
      for (int id = 1; id <= voters && last.is_ok(); id++) {
        last = add(make_config(dir.path, static_cast<std::uint64_t>(id), base_port, voters));
      }
      if (last.is_ok() || last.code() != Errc::io_error) return last;
    }
    return last;
  }
  Status add(ClusterConfig config) {
    recorders.push_back(std::make_unique<Recorder>());
    auto manager = std::make_unique<ClusterManager>(std::move(config));
    if (Status s = manager->on_leadership_change(recorders.back()->handler()); !s) return s;
    if (Status s = manager->initialize(); !s) return s;
    nodes.push_back(std::move(manager));
    return {};
  }
  Status join_all() {
    for (auto& n : nodes) {
      if (!n) continue;
      if (Status s = n->join_cluster(kJoinTimeout); !s) return s;
    }
    return {};
  }
  // The leader every running node reports, once they agree (0 if they do not within timeout).
  std::uint64_t agreed_leader(milliseconds timeout = kEventTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::set<std::uint64_t> leaders;
      for (auto& n : nodes) {
        if (!n) continue;
        Result<ClusterStatus> st = n->get_status();
        leaders.insert(st && st->current_leader ? *st->current_leader : 0);
      }
      if (leaders.size() == 1 && *leaders.begin() != 0) return *leaders.begin();
      std::this_thread::sleep_for(milliseconds(20));
    }
    return 0;
  }
};

TEST(ClusterConfig, DefaultsMatchTheNodeDefaults) {
  ClusterConfig c;
  EXPECT_EQ(c.cluster, "default");
  EXPECT_EQ(c.bind_address, "0.0.0.0:7800");
  EXPECT_EQ(c.heartbeat_interval, milliseconds(50));
  EXPECT_EQ(c.election_timeout, milliseconds(300));
  EXPECT_TRUE(c.fsync);
  EXPECT_FALSE(c.join);
  const transport::NodeConfig defaults;
  EXPECT_EQ(static_cast<std::uint64_t>(c.heartbeat_interval.count()),
            defaults.heartbeat_interval_ms);
  EXPECT_EQ(static_cast<std::uint64_t>(c.election_timeout.count()),
            defaults.election_timeout_ms);
}

TEST(ClusterConfig, DerivesAdvertiseAndAdminAddresses) {
  ClusterConfig c;
  c.node_id = 2;
  c.discovery = StaticDiscovery{{"1@10.0.0.1:7800", "2@10.0.0.2:7800", "3@10.0.0.3:7800"}};
  c.data_dir = "/var/lib/anya";
  c.tls_ca = "ca.crt";
  c.tls_cert = "node.crt";
  c.tls_key = "node.key";
  Result<transport::NodeConfig> nc = c.to_node_config();
  ASSERT_TRUE(nc.is_ok()) << nc.status().message();
  EXPECT_EQ(nc->peer_listen.to_string(), "0.0.0.0:7800");
  EXPECT_EQ(nc->peer_advertise.to_string(), "10.0.0.2:7800");  // this node's list entry
  EXPECT_EQ(nc->admin_listen.to_string(), "0.0.0.0:7900");     // bind port + 100
  ASSERT_EQ(nc->members.size(), 3u);
  EXPECT_EQ(nc->members[2].id, 3u);
  EXPECT_EQ(nc->members[2].peer_address.to_string(), "10.0.0.3:7800");
  EXPECT_EQ(nc->heartbeat_interval_ms, 50u);
  EXPECT_EQ(nc->election_timeout_ms, 300u);
  EXPECT_EQ(nc->cluster, "default");
  EXPECT_FALSE(nc->election_jitter_ms.has_value());  // the node's own default applies

  c.election_jitter = milliseconds(40);
  nc = c.to_node_config();
  ASSERT_TRUE(nc.is_ok()) << nc.status().message();
  EXPECT_EQ(nc->election_jitter_ms, std::optional<std::uint64_t>(40));

  c.election_timeout = milliseconds(20000);  // longer than the 5 s transaction deadline
  c.heartbeat_interval = milliseconds(1000);
  nc = c.to_node_config();
  ASSERT_TRUE(nc.is_ok()) << nc.status().message();
  EXPECT_GE(nc->config_txn_deadline_ms, 20000u);
}

TEST(ClusterConfig, ErrorsNameTheField) {
  ClusterConfig good;
  good.node_id = 1;
  good.discovery = StaticDiscovery{{"1@127.0.0.1:7801", "2@127.0.0.1:7802"}};
  good.bind_address = "127.0.0.1:7801";
  good.data_dir = "/tmp/x";
  good.tls_ca = "ca.crt";
  good.tls_cert = "n.crt";
  good.tls_key = "n.key";
  ASSERT_TRUE(good.to_node_config().is_ok()) << good.to_node_config().status().message();

  struct Case {
    const char* field;
    std::function<void(ClusterConfig&)> change;
  };
  const std::vector<Case> cases = {
      {"node_id:", [](ClusterConfig& c) { c.node_id = 0; }},
      {"cluster:", [](ClusterConfig& c) { c.cluster = "has space"; }},
      {"bind_address:", [](ClusterConfig& c) { c.bind_address = "127.0.0.1"; }},
      {"advertise_address:", [](ClusterConfig& c) { c.advertise_address = "x:99999"; }},
      {"admin_address:", [](ClusterConfig& c) { c.admin_address = c.bind_address; }},
      {"admin_address:", [](ClusterConfig& c) {
         c.bind_address = "127.0.0.1:65500";
         c.discovery = StaticDiscovery{{"1@127.0.0.1:65500"}};
       }},
      {"discovery.nodes[1]:",
       [](ClusterConfig& c) { c.discovery = StaticDiscovery{{"1@127.0.0.1:7801", "x@h:1"}}; }},
      {"discovery.nodes[0]:", [](ClusterConfig& c) { c.discovery = StaticDiscovery{{"1-h:1"}}; }},
      {"discovery.nodes:", [](ClusterConfig& c) { c.discovery = StaticDiscovery{{"2@h:1"}}; }},
      {"heartbeat_interval:", [](ClusterConfig& c) { c.heartbeat_interval = milliseconds(0); }},
      {"heartbeat_interval:", [](ClusterConfig& c) { c.heartbeat_interval = milliseconds(-5); }},
      {"election_timeout:", [](ClusterConfig& c) { c.election_timeout = milliseconds(100); }},
      {"election_jitter:", [](ClusterConfig& c) { c.election_jitter = milliseconds(301); }},
      {"election_jitter:", [](ClusterConfig& c) { c.election_jitter = milliseconds(0); }},
      {"data_dir:", [](ClusterConfig& c) { c.data_dir.clear(); }},
      {"tls_ca:", [](ClusterConfig& c) { c.tls_ca.clear(); }},
      {"tls_key:", [](ClusterConfig& c) { c.tls_key.clear(); }},
      {"log_level:", [](ClusterConfig& c) { c.log_level = "loud"; }},
      {"join_endpoints:", [](ClusterConfig& c) { c.join_endpoints = {"https://h:1"}; }},
      {"join_endpoints[0]:", [](ClusterConfig& c) {
         c.join = true;
         c.discovery = StaticDiscovery{};
         c.join_endpoints = {"http://h:1"};
       }},
      {"advertise_address:", [](ClusterConfig& c) {
         c.join = true;
         c.discovery = StaticDiscovery{};
         c.bind_address = "0.0.0.0:7801";
       }},
      {"join:", [](ClusterConfig& c) { c.join = true; }},  // a joiner listed as a voter
      {"chain_probe:", [](ClusterConfig& c) {
         c.chain_probe = [] { return std::optional<ChainView>(); };
         c.chain_probe_command = "bitcoin-cli getblockcount";
       }},
      {"chain_probe_interval:",
       [](ClusterConfig& c) { c.chain_probe_interval = milliseconds(1); }},
      {"chain_probe_interval:",
       [](ClusterConfig& c) { c.chain_probe_interval = milliseconds(-1); }},
      {"chain_probe_timeout:",
       [](ClusterConfig& c) { c.chain_probe_timeout = milliseconds(61'000); }},
      {"chain_probe_command:",
       [](ClusterConfig& c) { c.chain_probe_command = std::string(5000, 'x'); }},
      {"max_blocks_behind:", [](ClusterConfig& c) { c.max_blocks_behind = 2'000'000; }},
  };
  for (const Case& test : cases) {
    ClusterConfig c = good;
    test.change(c);
    Result<transport::NodeConfig> nc = c.to_node_config();
    ASSERT_FALSE(nc.is_ok()) << test.field;
    EXPECT_EQ(nc.status().code(), Errc::invalid_argument) << test.field;
    EXPECT_EQ(nc.status().message().rfind(test.field, 0), 0u)
        << "expected the message to start with " << test.field << ": "
        << nc.status().message();
  }
}

TEST(ClusterManager, CallsOutsideTheRunningStateFail) {
  TempDir dir;
  ClusterConfig c = make_config(dir.path, 1, 20000 + static_cast<int>(std::random_device{}() %
                                                                      20000), 1);
  ClusterManager m(c);
  Result<ClusterStatus> before = m.get_status();
  ASSERT_FALSE(before.is_ok());
  EXPECT_EQ(before.status().code(), Errc::invalid_argument);
  EXPECT_NE(before.status().message().find("initialize"), std::string::npos);
  EXPECT_FALSE(m.on_leadership_change(nullptr).is_ok());

  ClusterConfig bad = c;
  bad.election_timeout = milliseconds(10);
  ClusterManager refused(bad);
  Status s = refused.initialize();
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("election_timeout:", 0), 0u) << s.message();
}

TEST(ClusterManager, SingleNodeLeadsItselfAndServesTheStore) {
  TestCluster cluster;
  ASSERT_TRUE(cluster.start(1).is_ok());
  ClusterManager& m = *cluster.nodes[0];
  ASSERT_TRUE(m.join_cluster(kJoinTimeout).is_ok());
  Result<ClusterStatus> st = m.get_status();
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  EXPECT_TRUE(st->is_leader());
  EXPECT_EQ(st->role, "leader");
  EXPECT_EQ(m.admin_port(), m.peer_port() + ClusterConfig::kAdminPortOffset);
  Result<std::uint64_t> rev = m.put("greeting", "hello");
  ASSERT_TRUE(rev.is_ok()) << rev.status().message();
  Result<std::string> value = m.get("greeting");
  ASSERT_TRUE(value.is_ok()) << value.status().message();
  EXPECT_EQ(*value, "hello");
  EXPECT_EQ(m.get("absent").status().code(), Errc::not_found);
  EXPECT_TRUE(m.initialize().code() == Errc::invalid_argument);

  // The leader's lease carries this leadership's term as its fencing token.
  Result<LeaseInfo> lease = m.lease();
  ASSERT_TRUE(lease.is_ok()) << lease.status().message();
  EXPECT_EQ(lease->holder, 1u);
  EXPECT_EQ(lease->fencing_token, m.get_status()->term);
  EXPECT_GT(lease->fencing_token, 0u);
  EXPECT_EQ(lease->fencing_token, m.get_status()->fencing_token);
  // A lease is shorter than an election timeout (the voters' promise it rests on).
  EXPECT_LT(lease->remaining, ClusterConfig{}.election_timeout);
  EXPECT_TRUE(lease->valid || lease->remaining == milliseconds(0));

  m.shutdown();
  m.shutdown();  // idempotent
  EXPECT_EQ(m.get_status().status().code(), Errc::invalid_argument);
  EXPECT_EQ(m.lease().status().code(), Errc::invalid_argument);
  EXPECT_TRUE(cluster.recorders[0]->wait_for(
      [](const LeadershipEvent& e) { return e.is_leader && !e.was_leader; }, milliseconds(0)));
}

TEST(ClusterConfig, ChainSettingsReachTheNode) {
  ClusterConfig c;
  c.node_id = 1;
  c.discovery = StaticDiscovery{{"1@127.0.0.1:7801"}};
  c.bind_address = "127.0.0.1:7801";
  c.data_dir = "/tmp/x";
  c.tls_ca = "ca.crt";
  c.tls_cert = "n.crt";
  c.tls_key = "n.key";
  c.chain_probe_command = "/usr/local/bin/chain-view";
  c.chain_probe_interval = milliseconds(250);
  c.chain_probe_timeout = milliseconds(900);
  c.max_blocks_behind = 0;
  Result<transport::NodeConfig> nc = c.to_node_config();
  ASSERT_TRUE(nc.is_ok()) << nc.status().message();
  EXPECT_EQ(nc->bitcoin.chain_probe, "/usr/local/bin/chain-view");
  EXPECT_EQ(nc->bitcoin.chain_probe_interval_ms, 250u);
  EXPECT_EQ(nc->bitcoin.chain_probe_timeout_ms, 900u);
  EXPECT_EQ(nc->bitcoin.max_blocks_behind, 0u);
}

TEST(ClusterManager, TheChainCallbackGivesTheNodeItsView) {
  TempDir dir;
  Status last;
  for (int attempt = 0; attempt < 5; attempt++) {  // another process may hold the ports
    ClusterConfig c = make_config(dir.path, 1, 20000 + static_cast<int>(std::random_device{}() %
                                                                        20000), 1);
    std::atomic<std::uint64_t> height{800'000};
    c.chain_probe = [&height]() -> std::optional<ChainView> {
      const std::uint64_t h = height.load();
      if (h == 0) throw std::runtime_error("backend gone");
      ChainView v;
      v.height = h;
      return v;
    };
    c.chain_probe_interval = milliseconds(20);
    ClusterManager m(c);
    last = m.initialize();
    if (!last.is_ok() && last.code() == Errc::io_error) continue;
    ASSERT_TRUE(last.is_ok()) << last.message();
    ASSERT_TRUE(m.join_cluster(kJoinTimeout).is_ok());
    const auto wait_status = [&m](auto predicate) {
      const auto deadline = std::chrono::steady_clock::now() + kEventTimeout;
      while (std::chrono::steady_clock::now() < deadline) {
        Result<ClusterStatus> st = m.get_status();
        if (st && predicate(*st)) return true;
        std::this_thread::sleep_for(milliseconds(10));
      }
      return false;
    };
    // A single voter: its own view is the quorum's.
    EXPECT_TRUE(wait_status([](const ClusterStatus& s) {
      return s.chain_height == 800'000u && s.chain_quorum_height == 800'000u && !s.chain_behind;
    }));
    height = 0;  // the callback throws: a failed probe, the view unknown, the node still up
    EXPECT_TRUE(wait_status([](const ClusterStatus& s) { return !s.chain_height.has_value(); }));
    height = 800'001;
    EXPECT_TRUE(wait_status([](const ClusterStatus& s) { return s.chain_height == 800'001u; }));
    m.shutdown();
    return;
  }
  FAIL() << "could not start: " << last.message();
}

TEST(ClusterManager, ThreeNodesAgreeOnOneLeaderAndReportEvents) {
  TestCluster cluster;
  ASSERT_TRUE(cluster.start(3).is_ok());
  Status joined = cluster.join_all();
  ASSERT_TRUE(joined.is_ok()) << joined.message();
  const std::uint64_t leader = cluster.agreed_leader();
  ASSERT_NE(leader, 0u);
  for (std::size_t i = 0; i < cluster.nodes.size(); i++) {
    Result<ClusterStatus> st = cluster.nodes[i]->get_status();
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    EXPECT_EQ(st->node_id, i + 1);
    ASSERT_EQ(st->nodes.size(), 3u);
    for (const NodeInfo& n : st->nodes) EXPECT_TRUE(n.voter) << "node " << n.id;
    EXPECT_EQ(st->is_leader(), leader == i + 1);
    EXPECT_EQ(st->role == "leader", leader == i + 1) << st->role;
    // Every node heard of this leader through an event; the leader heard of its own win.
    EXPECT_TRUE(cluster.recorders[i]->wait_for([&](const LeadershipEvent& e) {
      return e.leader == leader && e.is_leader == (leader == i + 1);
    })) << "node " << i + 1;
  }
  ClusterManager& lead = *cluster.nodes[leader - 1];
  ClusterManager& follower = *cluster.nodes[leader % 3];
  Result<std::uint64_t> rev = lead.put("k", "v1");
  ASSERT_TRUE(rev.is_ok()) << rev.status().message();
  EXPECT_GT(*rev, 0u);
  Result<std::uint64_t> refused = follower.put("k", "v2");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Errc::not_leader);
  EXPECT_NE(refused.status().message().find(std::to_string(leader)), std::string::npos);
  // Only the leader hands out a fencing token; a follower names the leader instead.
  Result<LeaseInfo> lease = lead.lease();
  ASSERT_TRUE(lease.is_ok()) << lease.status().message();
  EXPECT_EQ(lease->holder, leader);
  EXPECT_EQ(lease->fencing_token, lead.get_status()->term);
  Result<LeaseInfo> no_lease = follower.lease();
  ASSERT_FALSE(no_lease.is_ok());
  EXPECT_EQ(no_lease.status().code(), Errc::not_leader);
  EXPECT_NE(no_lease.status().message().find(std::to_string(leader)), std::string::npos);
}

TEST(ClusterManager, ShuttingDownTheLeaderElectsAnotherAndNotifiesSurvivors) {
  TestCluster cluster;
  ASSERT_TRUE(cluster.start(3).is_ok());
  ASSERT_TRUE(cluster.join_all().is_ok());
  const std::uint64_t old_leader = cluster.agreed_leader();
  ASSERT_NE(old_leader, 0u);
  const std::uint64_t old_term = cluster.nodes[old_leader - 1]->get_status()->term;
  // An exactly-once write before the failover...
  Result<std::uint64_t> session = cluster.nodes[old_leader - 1]->open_session();
  ASSERT_TRUE(session.is_ok()) << session.status().message();
  const transport::ClientRef client{*session, 1};
  auto first = cluster.nodes[old_leader - 1]->put("once", "v1", client);
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  EXPECT_FALSE(first->replayed);
  cluster.nodes[old_leader - 1]->shutdown();
  cluster.nodes[old_leader - 1].reset();

  const std::uint64_t new_leader = cluster.agreed_leader();
  ASSERT_NE(new_leader, 0u);
  EXPECT_NE(new_leader, old_leader);
  for (std::size_t i = 0; i < cluster.nodes.size(); i++) {
    if (!cluster.nodes[i]) continue;
    EXPECT_TRUE(cluster.recorders[i]->wait_for([&](const LeadershipEvent& e) {
      return e.leader == new_leader && e.term > old_term &&
             e.is_leader == (new_leader == i + 1);
    })) << "node " << i + 1;
    Result<ClusterStatus> st = cluster.nodes[i]->get_status();
    ASSERT_TRUE(st.is_ok());
    EXPECT_GT(st->term, old_term);
  }
  Result<std::uint64_t> rev = cluster.nodes[new_leader - 1]->put("after", "failover");
  EXPECT_TRUE(rev.is_ok()) << rev.status().message();
  // ...retried at the new leader: the first outcome, not a second write.
  ASSERT_TRUE(cluster.nodes[new_leader - 1]->put("once", "v2", {*session, 2}).is_ok());
  auto retry = cluster.nodes[new_leader - 1]->put("once", "v1", client);
  ASSERT_TRUE(retry.is_ok()) << retry.status().message();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->revision, first->revision);
  EXPECT_EQ(*cluster.nodes[new_leader - 1]->get("once"), "v2");
  // A session never opened is refused, not opened by the write.
  auto unknown = cluster.nodes[new_leader - 1]->put("once", "v3", {*rev + 1000, 1});
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), Errc::conflict);
  EXPECT_NE(unknown.status().message().find("session expired"), std::string::npos)
      << unknown.status().message();
}

TEST(ClusterManager, AJoiningNodeIsAddedThroughAnEndpointAndBecomesAVoter) {
  TestCluster cluster;
  ASSERT_TRUE(cluster.start(3).is_ok());
  ASSERT_TRUE(cluster.join_all().is_ok());
  const std::uint64_t leader = cluster.agreed_leader();
  ASSERT_NE(leader, 0u);
  // Ask a follower first: it must point the request at the leader.
  const std::size_t follower = leader % 3;
  ClusterConfig c = make_config(cluster.dir.path, 4, cluster.base_port, 0);
  c.join = true;
  c.join_endpoints = {"https://127.0.0.1:" + std::to_string(cluster.nodes[follower]->admin_port())};
  c.join_token = kJoinToken;
  ASSERT_TRUE(cluster.add(c).is_ok());
  Status joined = cluster.nodes[3]->join_cluster(milliseconds(15000));
  ASSERT_TRUE(joined.is_ok()) << joined.message();
  Result<ClusterStatus> st = cluster.nodes[leader - 1]->get_status();
  ASSERT_TRUE(st.is_ok());
  ASSERT_EQ(st->nodes.size(), 4u);
  for (const NodeInfo& n : st->nodes) EXPECT_TRUE(n.voter) << "node " << n.id;
  EXPECT_TRUE(cluster.recorders[3]->wait_for(
      [&](const LeadershipEvent& e) { return e.leader == leader && !e.is_leader; }));
}

TEST(ClusterManager, JoinWithoutAnyoneAddingTheNodeTimesOutNamingWhy) {
  TempDir dir;
  ClusterConfig c = make_config(dir.path, 7, 20000 + static_cast<int>(std::random_device{}() %
                                                                      20000), 0);
  c.join = true;
  ClusterManager m(c);
  Status s = m.initialize();
  if (s.code() == Errc::io_error) GTEST_SKIP() << "port taken: " << s.message();
  ASSERT_TRUE(s.is_ok()) << s.message();
  Status joined = m.join_cluster(milliseconds(300));
  ASSERT_FALSE(joined.is_ok());
  EXPECT_EQ(joined.code(), Errc::busy);
  EXPECT_NE(joined.message().find("not a member"), std::string::npos) << joined.message();
}

}  // namespace
}  // namespace anya

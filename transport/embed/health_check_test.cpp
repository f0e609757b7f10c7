// The embedding API's health checks end to end: three real nodes over TLS on 127.0.0.1, each
// with a check of the test's (a callback probe); failing the leader's check makes it unhealthy,
// and the engine hands leadership to a healthy voter. Bounded waits; the directory is removed.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "transport/embed/cluster_manager.hpp"

namespace anya {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kWait{20'000};  // generous: a busy machine is slower, never wrong

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("anya-health-check-test-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

HealthCheckOptions check_of(std::atomic<bool>& up) {
  HealthCheckOptions c;
  c.name = "service";
  c.check = [&up]() -> Status {
    if (up) return {};
    return {Errc::io_error, "the service says no"};
  };
  c.interval = milliseconds(100);
  c.timeout = milliseconds(80);
  c.fall = 2;
  c.rise = 1;
  return c;
}

TEST(AddHealthCheck, RefusesBadChecksNamingTheField) {
  ClusterManager m(ClusterConfig{});
  std::atomic<bool> up{true};
  HealthCheckOptions empty = check_of(up);
  empty.check = nullptr;
  EXPECT_EQ(m.add_health_check(empty).message(), "add_health_check: check: empty function");
  HealthCheckOptions slow = check_of(up);
  slow.timeout = milliseconds(100);
  EXPECT_EQ(m.add_health_check(slow).message().rfind("add_health_check: timeout: ", 0), 0u);
  HealthCheckOptions unnamed = check_of(up);
  unnamed.name = "a b";
  EXPECT_EQ(m.add_health_check(unnamed).message().rfind("add_health_check: name: ", 0), 0u);
  ASSERT_TRUE(m.add_health_check(check_of(up)).is_ok());
  EXPECT_EQ(m.add_health_check(check_of(up)).message(),
            "add_health_check: name: \"service\" names another check");
}

// Three nodes, each with a check the test controls.
struct Cluster {
  TempDir dir;
  std::array<std::atomic<bool>, 3> up{true, true, true};
  std::vector<std::unique_ptr<ClusterManager>> nodes;

  ClusterConfig config(std::uint64_t id, int base_port) {
    ClusterConfig c;
    c.node_id = id;
    c.cluster = "health-check-test";
    StaticDiscovery d;
    for (int i = 1; i <= 3; i++) {
      d.nodes.push_back(std::to_string(i) + "@127.0.0.1:" + std::to_string(base_port + i));
    }
    c.discovery = d;
    c.bind_address = "127.0.0.1:" + std::to_string(base_port + static_cast<int>(id));
    c.data_dir = dir.path / ("node-" + std::to_string(id));
    c.fsync = false;
    c.log_level = "error";
    EXPECT_TRUE(ensure_node_certificates(dir.path / "certs", c).is_ok());
    return c;
  }

  Status start() {
    std::random_device rd;
    Status last;
    for (int attempt = 0; attempt < 5; attempt++) {  // another base port if one is taken
      const int base_port = 20000 + static_cast<int>(rd() % 20000);
      nodes.clear();
      last = {};
      for (std::uint64_t id = 1; id <= 3 && last.is_ok(); id++) {
        auto m = std::make_unique<ClusterManager>(config(id, base_port));
        last = m->add_health_check(check_of(up[id - 1]));
        if (last.is_ok()) last = m->initialize();
        if (last.is_ok()) nodes.push_back(std::move(m));
      }
      if (last.is_ok() || last.code() != Errc::io_error) return last;
    }
    return last;
  }

  std::optional<ClusterStatus> status(std::uint64_t id) {
    Result<ClusterStatus> s = nodes[id - 1]->get_status();
    if (!s) return std::nullopt;
    return *s;
  }

  // The leader all three report, once they agree and it satisfies `ok`; 0 after kWait.
  std::uint64_t leader_where(const std::function<bool(std::uint64_t)>& ok) {
    const SteadyClock::time_point deadline = SteadyClock::now() + kWait;
    while (SteadyClock::now() < deadline) {
      std::set<std::uint64_t> leaders;
      for (std::uint64_t id = 1; id <= 3; id++) {
        const std::optional<ClusterStatus> s = status(id);
        leaders.insert(s && s->current_leader ? *s->current_leader : 0);
      }
      if (leaders.size() == 1 && *leaders.begin() != 0 && ok(*leaders.begin())) {
        return *leaders.begin();
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return 0;
  }
};

TEST(HealthCheck, AFailingCheckOnTheLeaderHandsLeadershipToAHealthyVoter) {
  Cluster c;
  ASSERT_TRUE(c.start().is_ok());
  const std::uint64_t first = c.leader_where([](std::uint64_t) { return true; });
  ASSERT_NE(first, 0u) << "no leader";
  std::optional<ClusterStatus> s = c.status(first);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->healthy) << s->health;

  c.up[first - 1] = false;
  const std::uint64_t second = c.leader_where([first](std::uint64_t l) { return l != first; });
  ASSERT_NE(second, 0u) << "leadership stayed on the unhealthy node " << first;
  s = c.status(first);
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->healthy);
  EXPECT_NE(s->health.find("unhealthy: probe service failing (2 consecutive failures: the "
                           "service says no)"),
            std::string::npos)
      << s->health;

  // Recovered, it stays a follower (no disruption) and reports healthy again.
  c.up[first - 1] = true;
  const SteadyClock::time_point deadline = SteadyClock::now() + kWait;
  while (SteadyClock::now() < deadline && !(s = c.status(first), s && s->healthy)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(s && s->healthy) << (s ? s->health : "no status");
  for (auto& n : c.nodes) n->shutdown();
}

}  // namespace
}  // namespace anya

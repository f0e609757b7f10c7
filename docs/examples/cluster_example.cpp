// The HA subsystem's usage example, in C++: a three-node cluster in one process on 127.0.0.1,
// built with the embedding API (transport/embed/cluster_manager.hpp, docs/embedding.md).
//
//   cluster_example [--dir DIR] [--base-port P] [--seconds S]
//
// Makes certificates in DIR (default: a new temporary directory, removed at the end), starts
// nodes 1..3 (peers on P+i, admin API on P+100+i; P random in 20000..40000 by default), waits
// until they have joined, prints the current leader and the nodes, writes a key, stops the
// leader and prints who takes over. With --seconds it then stays up that long, printing every
// leadership change. Exit 0 on success, 1 if a step fails, 2 on a bad flag.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "transport/embed/cluster_manager.hpp"

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr int kNodes = 3;
constexpr int kMaxSeconds = 3600;
constexpr int kPortAttempts = 5;
constexpr milliseconds kFailoverWait{5000};

struct Args {
  fs::path dir;
  int base_port = 0;  // 0: random
  int seconds = 0;
};

bool parse_int(const char* text, int low, int high, int& out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < low || v > high) return false;
  out = static_cast<int>(v);
  return true;
}

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; i += 2) {  // every flag takes one value
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (flag == "--dir" && value != nullptr) {
      a.dir = value;
    } else if (flag == "--base-port" && value != nullptr) {
      if (!parse_int(value, 1024, 65000, a.base_port)) {
        std::cerr << "--base-port: expected 1024 to 65000, got \"" << value << "\"\n";
        return false;
      }
    } else if (flag == "--seconds" && value != nullptr) {
      if (!parse_int(value, 0, kMaxSeconds, a.seconds)) {
        std::cerr << "--seconds: expected 0 to " << kMaxSeconds << ", got \"" << value << "\"\n";
        return false;
      }
    } else {
      std::cerr << "usage: cluster_example [--dir DIR] [--base-port P] [--seconds S]\n";
      return false;
    }
  }
  return true;
}

// The configuration of node `id`: the SEED example's fields, with addresses on 127.0.0.1.
anya::ClusterConfig node_config(const fs::path& dir, std::uint64_t id, int base_port) {
  anya::ClusterConfig config;
  config.node_id = id;
  config.cluster = "example";
  anya::StaticDiscovery nodes;
  for (int i = 1; i <= kNodes; i++) {
    nodes.nodes.push_back(std::to_string(i) + "@127.0.0.1:" + std::to_string(base_port + i));
  }
  config.discovery = nodes;
  config.bind_address = "127.0.0.1:" + std::to_string(base_port + static_cast<int>(id));
  config.heartbeat_interval = milliseconds(50);
  config.election_timeout = milliseconds(300);
  config.data_dir = dir / ("node-" + std::to_string(id));
  return config;
}

void print_status(const anya::ClusterStatus& s) {
  std::cout << "Current leader: "
            << (s.current_leader ? "node " + std::to_string(*s.current_leader) : "none")
            << " (term " << s.term << ")\nCluster nodes:\n";
  for (const anya::NodeInfo& n : s.nodes) {
    std::cout << "  node " << n.id << " at " << n.address << (n.voter ? ", voter" : ", learner")
              << (n.reachable ? ", reachable" : ", unreachable") << "\n";
  }
}

using Cluster = std::vector<std::unique_ptr<anya::ClusterManager>>;

// Starts the three nodes; with a random base port, another one if a port is taken.
anya::Status start(const Args& a, const fs::path& dir, Cluster& cluster) {
  std::random_device rd;
  anya::Status last;
  for (int attempt = 0; attempt < kPortAttempts; attempt++) {
    const int base = a.base_port != 0 ? a.base_port : 20000 + static_cast<int>(rd() % 20000);
    cluster.clear();
    last = {};
    for (std::uint64_t id = 1; id <= kNodes && last.is_ok(); id++) {
      anya::ClusterConfig config = node_config(dir, id, base);
      last = anya::ensure_node_certificates(dir / "certs", config);
      if (!last) break;
      auto manager = std::make_unique<anya::ClusterManager>(config);
      // Each node delivers its events on its own thread: write each line in one piece.
      last = manager->on_leadership_change([id](const anya::LeadershipEvent& e) {
        const std::string line =
            "[node " + std::to_string(id) + "] leader is now " +
            (e.leader ? "node " + std::to_string(*e.leader) : "unknown") + " (term " +
            std::to_string(e.term) + ")" + (e.is_leader ? ", that is me" : "") + "\n";
        std::cout << line << std::flush;
      });
      if (last) last = manager->initialize();
      if (last) cluster.push_back(std::move(manager));
    }
    if (last || last.code() != anya::Errc::io_error || a.base_port != 0) return last;
  }
  return last;
}

int run(const Args& a, const fs::path& dir) {
  Cluster cluster;
  if (anya::Status s = start(a, dir, cluster); !s) {
    std::cerr << "cannot start: " << s.message() << "\n";
    return 1;
  }
  for (auto& node : cluster) {
    if (anya::Status s = node->join_cluster(); !s) {
      std::cerr << s.message() << "\n";
      return 1;
    }
  }
  anya::Result<anya::ClusterStatus> status = cluster[0]->get_status();
  if (!status || !status->current_leader) {
    std::cerr << "get_status: " << status.status().message() << "\n";
    return 1;
  }
  print_status(*status);
  const std::uint64_t leader = *status->current_leader;
  anya::Result<std::uint64_t> rev = cluster[leader - 1]->put("example/greeting", "hello");
  if (!rev) {
    std::cerr << "put: " << rev.status().message() << "\n";
    return 1;
  }
  std::cout << "wrote example/greeting at revision " << *rev << "\n"
            << "stopping the leader, node " << leader << "\n";
  cluster[leader - 1].reset();  // the destructor shuts down gracefully, handing leadership over
  anya::ClusterManager& survivor = *cluster[leader % kNodes];
  // The survivors elect a new leader (the old one handed over on its way out).
  const auto deadline = std::chrono::steady_clock::now() + kFailoverWait;
  for (;;) {
    status = survivor.get_status();
    if (status && status->current_leader && *status->current_leader != leader) break;
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "no new leader within " << kFailoverWait.count() << " ms\n";
      return 1;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  print_status(*status);
  std::this_thread::sleep_for(std::chrono::seconds(a.seconds));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) return 2;
  const bool temporary = args.dir.empty();
  if (temporary) {
    args.dir = fs::temp_directory_path() /
               ("anya-cluster-example-" + std::to_string(std::random_device{}()));
  }
  const int code = run(args, args.dir);
  if (temporary) {
    std::error_code ec;
    fs::remove_all(args.dir, ec);
  }
  return code;
}

// anya-ha dev: a local cluster in one command. Makes a CA, node and client certificates,
// DIR/NODE_ID/config.toml for each node and DIR/ctl.env, starts N agents on 127.0.0.1 as child
// processes, waits for a leader, prints the endpoints and stays up until interrupted. Run again
// on the same DIR, it reuses what is there (certificates, configs, data).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <thread>

#include "tools/anya-ha/commands.hpp"
#include "transport/admin/client.hpp"
#include "transport/audit/audit_log.hpp"
#include "transport/config/node_config.hpp"

namespace anya::tools {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr int kMaxNodes = 9;
constexpr auto kLeaderWait = std::chrono::seconds(30);
constexpr auto kStopWait = std::chrono::seconds(10);

struct DevArgs {
  int nodes = 3;
  std::string dir = "anya-dev";
  int base_port = 7100;
  bool prepare_only = false;
};

std::uint16_t peer_port(const DevArgs& a, int id) {
  return static_cast<std::uint16_t>(a.base_port + id);
}
std::uint16_t admin_port(const DevArgs& a, int id) {
  return static_cast<std::uint16_t>(a.base_port + 100 + id);
}
// Plain HTTP /healthz, /readyz and /metrics (admin.health_listen).
std::uint16_t health_port(const DevArgs& a, int id) {
  return static_cast<std::uint16_t>(a.base_port + 200 + id);
}
std::string admin_endpoint(const DevArgs& a, int id) {
  return "https://127.0.0.1:" + std::to_string(admin_port(a, id));
}

Status prepare(const DevArgs& a, const fs::path& dir) {
  if (Status s = ensure_ca(dir, "dev"); !s) return s;
  if (Status s = ensure_leaf(dir, transport::tls::Identity::client("admin"), dir / "client.crt",
                             dir / "client.key", {}, {});
      !s) {
    return s;
  }
  const fs::path audit_secret = dir / "audit.secret";
  if (!fs::exists(audit_secret)) {
    if (Status s = transport::create_audit_secret(audit_secret); !s) return s;
  }
  std::vector<transport::StaticMember> members;
  for (int id = 1; id <= a.nodes; id++) {
    members.push_back({static_cast<engine::NodeId>(id), {"127.0.0.1", peer_port(a, id)}});
  }
  std::string endpoints;
  for (int id = 1; id <= a.nodes; id++) {
    const fs::path node_dir = dir / std::to_string(id);
    if (Status s = ensure_leaf(dir, transport::tls::Identity::node(static_cast<std::uint64_t>(id)),
                               node_dir / "node.crt", node_dir / "node.key", {"127.0.0.1"},
                               {"localhost"});
        !s) {
      return s;
    }
    endpoints += (id > 1 ? "," : "") + admin_endpoint(a, id);
    const fs::path config_file = node_dir / "config.toml";
    if (fs::exists(config_file)) continue;  // reuse, with whatever the user changed in it
    transport::NodeConfig c;
    c.node_id = static_cast<engine::NodeId>(id);
    c.cluster = "dev";
    c.data_dir = node_dir / "data";
    c.peer_listen = c.peer_advertise = {"127.0.0.1", peer_port(a, id)};
    c.admin_listen = {"127.0.0.1", admin_port(a, id)};
    c.health_listen = transport::HostPort{"127.0.0.1", health_port(a, id)};
    c.audit_file = c.data_dir / "audit.log";
    c.audit_secret_file = audit_secret;
    c.auth.client_roles["admin"] = "admin";  // the client certificate in ctl.env
    c.tls_ca_key = dir / "ca.key";           // dev nodes sign joining nodes' certificates
    c.tls_ca = dir / "ca.crt";
    c.tls_cert = node_dir / "node.crt";
    c.tls_key = node_dir / "node.key";
    c.members = members;
    std::ofstream out(config_file);
    out << transport::render_node_config(c, node_dir);
    if (!out) return {Errc::io_error, config_file.string() + ": cannot write"};
  }
  std::ofstream env(dir / "ctl.env");
  env << "# source this file, then: anya-ha ctl status\n"
      << "export ANYA_HA_ENDPOINTS=" << endpoints << "\n"
      << "export ANYA_HA_CACERT=" << (dir / "ca.crt").string() << "\n"
      << "export ANYA_HA_CERT=" << (dir / "client.crt").string() << "\n"
      << "export ANYA_HA_KEY=" << (dir / "client.key").string() << "\n";
  if (!env) return {Errc::io_error, (dir / "ctl.env").string() + ": cannot write"};
  return {};
}

pid_t spawn_agent(const fs::path& config, const fs::path& log_file, const sigset_t& old_mask) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  const std::string config_arg = config.string();
  execl("/proc/self/exe", "anya-ha", "agent", "--config", config_arg.c_str(),
        static_cast<char*>(nullptr));
  _exit(127);
}

// The leader id if some node reports one that a majority agrees on; 0 otherwise.
std::uint64_t find_leader(const DevArgs& a, const transport::AdminClientOptions& client) {
  std::map<std::uint64_t, int> votes;
  for (int id = 1; id <= a.nodes; id++) {
    transport::AdminClientOptions o = client;
    o.timeout_ms = 1000;
    Result<transport::HttpReply> r =
        transport::admin_request(o, admin_endpoint(a, id), "GET", "/v1/status");
    if (!r || r->status != 200) continue;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object()) continue;
    const json::value* leader = v.as_object().if_contains("leader");
    if (leader != nullptr && leader->is_number()) votes[leader->to_number<std::uint64_t>()]++;
  }
  for (auto [leader, count] : votes) {
    if (count > a.nodes / 2) return leader;
  }
  return 0;
}

int run_dev(const DevArgs& a) {
  if (a.nodes < 1 || a.nodes > kMaxNodes) {
    std::cerr << "anya-ha dev: --nodes: must be 1 to " << kMaxNodes << "\n";
    return kExitUsage;
  }
  if (a.base_port < 1024 || a.base_port > 65535 - 200 - kMaxNodes) {
    std::cerr << "anya-ha dev: --base-port: must be 1024 to " << 65535 - 200 - kMaxNodes << "\n";
    return kExitUsage;
  }
  std::error_code ec;
  fs::create_directories(a.dir, ec);
  const fs::path dir = fs::absolute(a.dir, ec).lexically_normal();
  if (Status s = prepare(a, dir); !s) {
    std::cerr << "anya-ha dev: " << s.message() << "\n";
    return kExitFailed;
  }
  std::cout << "cluster files in " << dir.string() << " (source " << (dir / "ctl.env").string()
            << " to use anya-ha ctl)\n";
  if (a.prepare_only) return kExitOk;

  // Block the stop signals before forking, and wait for them with sigtimedwait.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);
  std::map<pid_t, int> children;
  for (int id = 1; id <= a.nodes; id++) {
    const fs::path node_dir = dir / std::to_string(id);
    const pid_t pid = spawn_agent(node_dir / "config.toml", node_dir / "agent.log", old_mask);
    if (pid < 0) {
      std::cerr << "anya-ha dev: fork failed\n";
      break;
    }
    children[pid] = id;
    std::cout << "node " << id << ": pid " << pid << ", admin " << admin_endpoint(a, id)
              << ", peers 127.0.0.1:" << peer_port(a, id) << ", log "
              << (node_dir / "agent.log").string() << "\n";
  }
  transport::AdminClientOptions client{dir / "ca.crt", dir / "client.crt", dir / "client.key"};
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t leader = 0;
  int exit_code = kExitOk;
  bool stop = false;
  while (!stop) {
    const timespec tick{0, 200'000'000};
    const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    int status = 0;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      std::cerr << "anya-ha dev: node " << children[pid] << " exited ("
                << (WIFEXITED(status) ? "code " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status)))
                << "); see its agent.log\n";
      children.erase(pid);
      exit_code = kExitFailed;
    }
    if (children.empty()) break;
    if (leader == 0) {
      leader = find_leader(a, client);
      if (leader != 0) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started).count();
        std::cout << "leader: node " << leader << " (elected within " << ms << " ms of start)\n"
                  << "try:  source " << (dir / "ctl.env").string()
                  << " && build/tools/anya-ha ctl status\n"
                  << "Ctrl-C stops the cluster.\n"
                  << std::flush;
      } else if (std::chrono::steady_clock::now() - started > kLeaderWait) {
        std::cerr << "anya-ha dev: no leader after 30 s; see the agent.log files\n";
        exit_code = kExitFailed;
        stop = true;
      }
    }
  }
  std::cout << "stopping " << children.size() << " node(s)\n";
  for (auto [pid, id] : children) kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopWait;
  while (!children.empty() && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      children.erase(pid);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (auto [pid, id] : children) {
    std::cerr << "anya-ha dev: node " << id << " did not stop in time; killing it\n";
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return exit_code;
}

}  // namespace

Runner add_dev_command(CLI::App& app) {
  auto a = std::make_shared<DevArgs>();
  CLI::App* cmd = app.add_subcommand("dev", "Run a local cluster on 127.0.0.1");
  cmd->add_option("--nodes", a->nodes, "How many nodes (1 to 9)");
  cmd->add_option("--dir", a->dir, "Where certificates, configs and data go");
  cmd->add_option("--base-port", a->base_port,
                  "Node i listens for peers on P+i and for admin on P+100+i");
  cmd->add_flag("--prepare", a->prepare_only,
                "Only write certificates, configs and ctl.env, then exit");
  return [a]() { return run_dev(*a); };
}

}  // namespace anya::tools

// The production node: one engine NodeCore (engine/node: the host loop, the KV store and every
// decision a client relies on) driven on one Asio io_context thread, over the real ports
// (PeerLinks for the network, the WAL for storage, the steady clock). It implements NodeApi for
// the admin server.
//
// The io_context thread is the only thread that touches the node, so nothing here locks. Every
// decision is NodeCore's; the node adds only I/O and wiring:
//   - a tick timer (the engine's notion of time passing),
//   - membership -> peer links (dial new members, drop removed ones), at the addresses
//     discovery last saw them when a method besides the static list runs (transport/discovery),
//   - evidence for fast failover: a leader's link that closed and whose redial is refused means
//     its process is gone (PeerLinks reports it), which NodeCore acts on,
//   - tickets: each client request gets one, and NodeCore's reply is routed back to it,
//   - graceful shutdown: stop taking writes, hand leadership to a caught-up voter, close links.
// A storage failure is fail-stop: the node stops and reports it through on_fatal.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "engine/node/node_core.hpp"
#include "transport/auth/auth.hpp"
#include "transport/config/node_config.hpp"
#include "transport/health/health_monitor.hpp"
#include "transport/log/log.hpp"
#include "transport/node/api.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace anya::transport {

namespace metrics {
class Registry;
}
class PeerLinks;
class Wal;
namespace discovery {
class Discovery;
}

// Creates the data directory 0700 if missing. Refuses one that group or others may write (they
// could replace the log) and warns about one they may read (it holds every value stored).
Status prepare_data_dir(const std::filesystem::path& dir, Logger& log);
struct NodeMetrics;

struct NodeEvents {
  // The leader this node knows changed (kNoNode: none known). Also on this node's own wins.
  std::function<void(engine::NodeId leader, engine::Term term)> on_leader_change;
  // The cluster changed as this node applied it: "member.added" (a learner), "member.promoted",
  // "member.removed" (target: "node N"), "config.activated" (target: "version V"). For the
  // audit log.
  std::function<void(const std::string& action, const std::string& target)> on_cluster_change;
  // The node stopped itself (storage failed); the process should exit non-zero.
  std::function<void(const Status& why)> on_fatal;
};

class Node final : public NodeApi, private engine::ClockPort, private engine::ConfigObserver {
 public:
  static constexpr std::uint64_t kWriteTimeoutMs = 10'000;

  Node(boost::asio::io_context& io, NodeConfig config, Logger log, NodeEvents events = {});
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Recovers the WAL, starts the engine, listens for peers. Call before io.run().
  // The admin endpoint is told to peers at the link handshake, so clients can follow the leader.
  // `server_tls` and `client_tls` are the peer plane's contexts (the agent's TlsReloader's).
  Status start(const std::string& admin_endpoint,
               std::shared_ptr<boost::asio::ssl::context> server_tls,
               std::shared_ptr<boost::asio::ssl::context> client_tls);
  // Peer links made from now on use these (a TLS reload).
  void set_tls(std::shared_ptr<boost::asio::ssl::context> server_tls,
               std::shared_ptr<boost::asio::ssl::context> client_tls);
  // Graceful stop (SIGTERM): refuse new writes, transfer leadership if leader (bounded by two
  // election timeouts), close links, then call `done` on the io thread.
  void shutdown(std::function<void()> done);
  bool stopping() const { return stopping_; }

  std::uint16_t peer_port() const;
  const engine::Host& host() const { return core_->host(); }
  const NodeConfig& config() const { return config_; }
  engine::Term term() const { return core_ == nullptr ? 0 : core_->raft().term(); }
  bool is_leader() const { return core_ != nullptr && core_->raft().is_leader(); }
  // The registry /metrics renders; the agent adds its own counters to it.
  metrics::Registry& metrics_registry();
  // The admin endpoints the other members told us at their link handshake, by node id.
  std::map<engine::NodeId, std::string> member_admin_endpoints() const;
  // Runs before each scrape, so counters kept elsewhere (the admin listener's) are copied in.
  void on_scrape(std::function<void()> fn) { before_scrape_ = std::move(fn); }
  // A chain probe's result (transport/chain), posted to the node's thread: the view becomes
  // this node's chain view, or unknown when the probe failed (logged once per new reason).
  void on_chain_probe(Result<engine::ChainView> result);
  // What discovery proposes and how each method fares ([discovery]; null before start()).
  const discovery::Discovery* discovery() const { return discovery_.get(); }
  // The embedding program's callback probes ([health] probes of type callback), by probe name.
  // Looked up at each run, so they may be set before or after start(); a probe without one
  // fails ("no check is registered"). On the node's thread.
  void set_health_checks(std::map<std::string, HealthCheck> checks);

  // NodeApi
  StatusView status() override;
  bool alive() override { return core_ != nullptr && !core_->host().failed(); }
  std::string metrics_text() override;
  void kv_get(const std::string& key, std::optional<engine::ReadMode> consistency,
              Reply<KvEntryView> reply) override;
  void kv_write(KvWrite write, Reply<KvWriteResult> reply) override;
  void record_write(engine::Command command, std::optional<ClientRef> client,
                    Reply<KvWriteResult> reply) override;
  std::vector<KvEntryView> kv_scan(const std::string& prefix, std::size_t limit) override;
  // A run-time token's record, from this node's applied state (the authorizer's lookup).
  std::optional<auth::TokenRecord> token_record(std::string_view id) const;
  void members_add(engine::NodeId id, std::string address, bool learner,
                   Reply<Empty> reply) override;
  void members_remove(engine::NodeId id, Reply<Empty> reply) override;
  void config_get(Reply<ConfigView> reply) override;
  void config_put(std::string document, std::optional<std::uint64_t> if_version,
                  Reply<ConfigView> reply) override;
  void config_rollback(std::uint64_t version, std::optional<std::uint64_t> if_version,
                       Reply<ConfigView> reply) override;
  void config_history(Reply<std::vector<ConfigView>> reply) override;
  void leader_transfer(std::optional<engine::NodeId> to, Reply<engine::NodeId> reply) override;
  void lease(Reply<LeaseView> reply) override;

 private:
  struct ConfigWaiter {
    std::uint64_t deadline_ms = 0;
    Reply<ConfigView> reply;
  };

  std::uint64_t now_ms() override;
  void on_config_effects(const engine::ConfigEffects& effects) override;

  void schedule_tick();
  void on_tick();
  // After every call into the core: route its replies, log its events, follow membership,
  // note role changes, fail-stop on a storage failure.
  void after_host_call(const Status& status);
  void route_replies();
  void log_events();
  void fail_all_waiters(const ApiError& error);
  void sync_peers();
  void on_peer_gone(engine::NodeId peer, const std::string& reason);
  ApiError not_leader_error() const;
  // Stamps the wall clock and `client`'s session into `command`, proposes it, and answers.
  void submit(engine::Command command, const std::optional<ClientRef>& client,
              Reply<KvWriteResult> reply);
  ApiError error_from(const Status& status) const;
  ApiError error_from(const engine::ClientReply& reply) const;
  std::string admin_of(engine::NodeId node) const;
  // A ticket whose reply runs `done`.
  engine::Ticket ticket(std::function<void(const engine::ClientReply&)> done);
  void post_flush();
  void continue_shutdown(std::uint64_t give_up_ms, std::function<void()> done);
  void warn_refused_snapshot(engine::NodeId leader);
  // Logs when this node starts or stops being behind the chain (on_tick).
  void note_chain_state();
  // Health of the protected service (node_health.cpp): runs a HealthMonitor when [health]
  // configures probes or limits; every verdict change goes to the engine (Host::set_healthy).
  Status start_health();
  void on_health(const engine::health::HealthUpdate& update,
                 const engine::health::HealthVerdict& verdict);
  HealthStatusView health_status() const;

  boost::asio::io_context& io_;
  NodeConfig config_;
  Logger log_;
  NodeEvents events_;
  std::unique_ptr<Wal> wal_;
  std::unique_ptr<PeerLinks> peers_;
  std::unique_ptr<engine::NodeCore> core_;
  std::unique_ptr<NodeMetrics> metrics_;
  // Declared after the peer links and metrics it feeds, so it is destroyed before them.
  std::unique_ptr<discovery::Discovery> discovery_;
  Status start_discovery();
  struct Timer;
  std::unique_ptr<Timer> tick_timer_;
  std::unique_ptr<Timer> shutdown_timer_;
  std::uint64_t clock_origin_us_ = 0;

  bool flush_posted_ = false;  // writes and reads wait for one flush per io loop turn
  engine::Ticket next_ticket_ = 1;
  std::map<engine::Ticket, std::function<void(const engine::ClientReply&)>> tickets_;
  std::map<std::uint64_t, ConfigWaiter> config_waiters_;  // by version
  std::map<engine::NodeId, std::string> linked_members_;
  std::optional<engine::Membership> last_membership_;  // what note_membership() last saw
  void note_membership();
  engine::NodeId last_leader_ = engine::kNoNode;
  engine::Role last_role_ = engine::Role::follower;
  static constexpr std::uint64_t kRepeatWarningMs = 10'000;
  std::uint64_t last_snapshot_warning_ms_ = 0;
  std::string admin_endpoint_;
  std::function<void()> before_scrape_;
  // Chain probe: whether one ever reported, why the last one failed (none: it worked), and
  // whether this node was behind the chain at the last look.
  bool chain_probing_ = false;
  std::optional<std::string> chain_probe_error_;
  bool chain_behind_logged_ = false;
  bool stopping_ = false;
  bool fatal_ = false;
  // Last, so it is destroyed first: its pending handlers and pool threads refer to the node.
  std::map<std::string, HealthCheck> health_checks_;
  std::unique_ptr<HealthMonitor> health_;  // null unless [health] monitors something
};

}  // namespace anya::transport

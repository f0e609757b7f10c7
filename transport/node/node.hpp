// The production node: one engine Host driven on one Asio io_context thread, over the real
// ports (PeerLinks for the network, the WAL for storage, the steady clock), with the replicated
// key-value store as its state machine. It implements NodeApi for the admin server.
//
// The io_context thread is the only thread that touches the node, so nothing here locks. The
// host loop orders the I/O (persist, then send, then apply); the node adds what a real process
// needs around it:
//   - a tick timer (the engine's notion of time passing),
//   - membership -> peer links (dial new members, drop removed ones),
//   - fast failover: when the link to the leader drops (its process died, so the kernel closed
//     the socket), start a pre-vote at once instead of waiting out the election timeout. PreVote
//     keeps this from disturbing a leader that a majority still hears.
//   - clients waiting for their writes: each waits for its log index to apply, and fails if a
//     different entry (another leader's) lands there, or after a deadline.
//   - graceful shutdown: stop taking writes, hand leadership to a caught-up voter, close links.
// A storage failure is fail-stop: the node stops and reports it through on_fatal.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "engine/host/host.hpp"
#include "engine/kv/kv.hpp"
#include "transport/config/node_config.hpp"
#include "transport/log/log.hpp"
#include "transport/node/api.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport {

class PeerLinks;
class Wal;
struct NodeMetrics;

struct NodeEvents {
  // The leader this node knows changed (kNoNode: none known). Also on this node's own wins.
  std::function<void(engine::NodeId leader, engine::Term term)> on_leader_change;
  // The node stopped itself (storage failed); the process should exit non-zero.
  std::function<void(const Status& why)> on_fatal;
};

class Node final : public NodeApi,
                   private engine::StateMachinePort,
                   private engine::ClockPort,
                   private engine::ConfigObserver {
 public:
  // Bounds on clients waiting for commits.
  static constexpr std::size_t kMaxPendingWrites = 65536;
  static constexpr std::uint64_t kWriteTimeoutMs = 10'000;

  Node(boost::asio::io_context& io, NodeConfig config, Logger log, NodeEvents events = {});
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Recovers the WAL, starts the engine, listens for peers. Call before io.run().
  // The admin endpoint is told to peers at the link handshake, so clients can follow the leader.
  Status start(const std::string& admin_endpoint);
  // Graceful stop (SIGTERM): refuse new writes, transfer leadership if leader (bounded by two
  // election timeouts), close links, then call `done` on the io thread.
  void shutdown(std::function<void()> done);
  bool stopping() const { return stopping_; }

  std::uint16_t peer_port() const;
  const engine::Host& host() const { return *host_; }
  const NodeConfig& config() const { return config_; }

  // NodeApi
  StatusView status() override;
  bool alive() override { return host_ != nullptr && !host_->failed(); }
  std::string metrics_text() override;
  void kv_get(const std::string& key, Reply<KvEntryView> reply) override;
  void kv_write(KvWrite write, Reply<KvWriteResult> reply) override;
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
  // A client waiting for the entry it proposed at `index` in `term` to apply.
  struct Waiter {
    engine::Term term = 0;
    std::uint64_t deadline_ms = 0;
    std::function<void(const ApiError*)> done;  // null error: applied
  };
  struct ConfigWaiter {
    std::uint64_t deadline_ms = 0;
    Reply<ConfigView> reply;
  };

  // engine ports
  void apply(const engine::Entry& entry) override;
  // The KV store is the state machine: its snapshot() and restore() (engine/kv).
  std::string snapshot() override;
  Status restore(std::string_view data) override;
  Status check_snapshot(std::string_view data) override;
  std::uint64_t now_ms() override;
  void on_config_effects(const engine::ConfigEffects& effects) override;

  void schedule_tick();
  void on_tick();
  // After every call into the host: resolve waiters, follow membership, note role changes,
  // fail-stop on a storage failure.
  void after_host_call(const Status& status);
  void resolve_waiters();
  void fail_all_waiters(const ApiError& error);
  void sync_peers();
  void on_peer_down(engine::NodeId peer, const std::string& reason);
  ApiError not_leader_error() const;
  ApiError error_from(const Status& status) const;
  std::string admin_of(engine::NodeId node) const;
  // Proposes and registers a waiter; `done` runs once the entry applies or fails.
  void propose_and_wait(Result<engine::Index> index, std::function<void(const ApiError*)> done);
  void propose_and_wait(engine::Index index, std::function<void(const ApiError*)> done);
  void flush_writes();
  void wait_for_write(engine::Index at, Reply<KvWriteResult> reply);
  void try_promotions();
  void continue_shutdown(std::uint64_t give_up_ms, std::function<void()> done);
  void warn_refused_snapshot(engine::NodeId leader);

  boost::asio::io_context& io_;
  NodeConfig config_;
  Logger log_;
  NodeEvents events_;
  std::unique_ptr<Wal> wal_;
  std::unique_ptr<PeerLinks> peers_;
  std::unique_ptr<engine::Host> host_;
  std::unique_ptr<NodeMetrics> metrics_;
  struct Timer;
  std::unique_ptr<Timer> tick_timer_;
  std::unique_ptr<Timer> shutdown_timer_;
  std::unique_ptr<Timer> failover_timer_;
  engine::KvStore kv_;
  std::uint64_t clock_origin_us_ = 0;

  struct PendingWrite {
    std::string command;
    Reply<KvWriteResult> reply;
  };
  static constexpr std::size_t kMaxWriteBatch = 1024;
  std::vector<PendingWrite> pending_writes_;  // not yet proposed; see flush_writes
  bool flush_posted_ = false;
  engine::Index capture_results_from_ = std::numeric_limits<engine::Index>::max();
  std::map<engine::Index, Waiter> waiters_;
  std::map<engine::Index, engine::KvResult> kv_results_;  // for waiters only
  std::map<std::uint64_t, ConfigWaiter> config_waiters_;  // by version
  std::set<engine::NodeId> pending_promotions_;           // added as learners, to promote
  std::map<engine::NodeId, std::string> linked_members_;
  engine::NodeId last_leader_ = engine::kNoNode;
  engine::Role last_role_ = engine::Role::follower;
  static constexpr std::uint64_t kRepeatWarningMs = 10'000;
  std::uint64_t last_snapshot_warning_ms_ = 0;
  std::string admin_endpoint_;
  bool stopping_ = false;
  bool fatal_ = false;
};

}  // namespace anya::transport

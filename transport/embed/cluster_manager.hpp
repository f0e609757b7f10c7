// The embedding API: run an anya-ha node inside your own C++ program, in the shape the HA
// subsystem's usage example describes (ClusterConfig, ClusterManager, initialize(),
// join_cluster(), get_status() with current_leader and nodes, leadership events).
//
// It is a thin layer over transport::Agent, the same node `anya-ha agent` runs: the node and its
// admin HTTPS API run on one background thread the manager owns, and every call here is handed
// to that thread (Agent::post) and waited for with a bound, so the node itself never locks.
// Leadership events are copied into a bounded queue on the node thread and delivered to the
// handlers on a second thread of the manager's, so a handler may call back into the manager
// (get_status, put) without deadlocking the node. docs/embedding.md describes the threading.
//
// ClusterConfig is what a program fills in; to_node_config() turns it into the node's own
// configuration and validates it, with errors naming the ClusterConfig field ("bind_address:").
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/kv/bitcoin.hpp"
#include "transport/config/node_config.hpp"
#include "transport/node/api.hpp"
#include "transport/log/log.hpp"

namespace anya {

// Static discovery: the voters the cluster starts with, each "ID@HOST:PORT" (the peer address).
struct StaticDiscovery {
  std::vector<std::string> nodes;
};
// How a node finds the cluster. Only static lists exist today; DNS, Kubernetes and multicast
// discovery will be further alternatives (DESIGN.md), so callers already write a variant.
using DiscoveryMethod = std::variant<StaticDiscovery>;

// How far a node's Bitcoin backend has synced: the best block's height and hash (the 32 bytes in
// the order `bitcoin-cli getbestblockhash` prints them).
using ChainView = engine::ChainView;

struct ClusterConfig {
  std::uint64_t node_id = 0;           // required: positive, unique in the cluster
  std::string cluster = "default";     // peers of another cluster name are refused
  DiscoveryMethod discovery = StaticDiscovery{};
  // Peer links listen here (an IP literal and a port). Invariant: never admin_address.
  std::string bind_address = "0.0.0.0:7800";
  // What the other members dial. Empty: this node's entry in the static list, else bind_address
  // (which must then not be 0.0.0.0).
  std::string advertise_address;
  // The admin HTTPS API. Empty: the bind host with the bind port + kAdminPortOffset.
  std::string admin_address;
  std::chrono::milliseconds heartbeat_interval{50};
  std::chrono::milliseconds election_timeout{300};
  // Each election waits election_timeout plus a random part of this. Unset: the node's default
  // (a third of election_timeout). Set: 1 ms to election_timeout.
  std::optional<std::chrono::milliseconds> election_jitter;
  std::filesystem::path data_dir;      // required: the log, hard state and snapshots
  std::filesystem::path tls_ca;        // required: PEM files (anya-ha certs, or
  std::filesystem::path tls_cert;      //   ensure_node_certificates below for tests)
  std::filesystem::path tls_key;
  std::filesystem::path tls_crl;       // optional: revoked certificates (PEM CRL)
  // Who may use the admin API (default deny), and the audit log every admin mutation is
  // written to first. Without audit_secret_file the admin API refuses every mutation.
  transport::auth::AuthConfig auth;
  std::filesystem::path audit_secret_file;  // the same file on every node of the cluster
  std::filesystem::path audit_file;         // empty: data_dir/audit.log
  bool fsync = true;                   // false only for tests: a crash may lose acknowledged data
  // Joining a running cluster: the node starts with no members, and join_cluster() asks one of
  // join_endpoints (admin API URLs "https://HOST:PORT" of current members) to add it. With no
  // endpoints, join_cluster() only waits for an operator (`anya-ha ctl members add`).
  bool join = false;
  std::vector<std::string> join_endpoints;
  // The bearer token the join request carries; the cluster's auth must give it members.write
  // (a node's own certificate is not an admin credential).
  std::string join_token;
  // Chain-gated leadership ([bitcoin] in docs/configuration.md): a node whose Bitcoin backend
  // is unknown or more than max_blocks_behind blocks below the height a quorum of voters holds
  // does not lead. Its view comes from chain_probe, called on a thread of the manager's every
  // chain_probe_interval (after the previous call returns; nullopt: the backend cannot say,
  // an exception counts as that too; it must return promptly, as shutdown waits for it), or
  // from chain_probe_command, a shell command printing {"height": N, "tip": "<64 hex>"} and
  // killed after chain_probe_timeout. At most one of the two; neither: no chain view.
  std::function<std::optional<ChainView>()> chain_probe;
  std::string chain_probe_command;
  std::chrono::milliseconds chain_probe_interval{1000};
  std::chrono::milliseconds chain_probe_timeout{2000};
  std::uint64_t max_blocks_behind = 2;
  // Health of the service this node protects ([health] in docs/configuration.md and
  // docs/health.md): HTTP, TCP and exec probes, resource limits and the aggregation rule. An
  // unhealthy node never campaigns, and an unhealthy leader hands leadership to a healthy,
  // caught-up voter. Checks in this program are added with ClusterManager::add_health_check.
  // Applied by initialize() (to_node_config() leaves it out).
  transport::HealthConfig health;
  std::string log_level = "warn";      // error, warn, info, debug (embedders rarely want info)
  std::shared_ptr<transport::LogSink> log_sink;  // null: stderr

  static constexpr std::uint16_t kAdminPortOffset = 100;
  static constexpr std::size_t kMaxJoinEndpoints = 16;

  // The node's configuration, validated. Errc::invalid_argument naming the ClusterConfig field.
  Result<transport::NodeConfig> to_node_config() const;
};

// One member as this node sees it.
struct NodeInfo {
  std::uint64_t id = 0;
  std::string address;                 // peer address
  bool voter = false;                  // false: a learner still catching up
  bool healthy = true;                 // the member's own health report
  bool reachable = false;              // a peer link to it is up (always true for this node)
  std::optional<std::chrono::milliseconds> last_seen;  // since last heard, if ever
};

struct ClusterStatus {
  std::uint64_t node_id = 0;
  std::string cluster;
  std::string role;                    // follower, pre-candidate, candidate, leader, learner
  std::uint64_t term = 0;
  std::optional<std::uint64_t> current_leader;
  bool quorum = false;                 // this node is part of a majority that hears each other
  bool ready = false;                  // quorum and caught up with the commit index
  std::uint64_t commit_index = 0;
  std::uint64_t fencing_token = 0;     // the current leadership's term; 0 if none
  std::vector<NodeInfo> nodes;
  // Chain-gated leadership: this node's chain height (unknown without a probe or while it
  // fails), the height a quorum of voters holds (if known), and whether this node is behind.
  std::optional<std::uint64_t> chain_height;
  std::optional<std::uint64_t> chain_quorum_height;
  bool chain_behind = false;
  // This node's health verdict on the service it protects, and why ("healthy: 2 of 2 probes
  // passing, ..." or "unhealthy: probe signer failing (3 consecutive failures: ...)"). Always
  // healthy without probes or limits.
  bool healthy = true;
  std::string health;

  bool is_leader() const { return current_leader == node_id; }
};

// The leader's lease, as the leader itself sees it (GET /v1/lease). Pass fencing_token with
// every request to a protected resource (fencing.hpp), which refuses tokens below the highest
// it has seen.
struct LeaseInfo {
  std::uint64_t holder = 0;            // the leader: this node (only the leader answers)
  std::uint64_t fencing_token = 0;     // this leadership's term; grows with every leadership
  bool valid = false;                  // the lease holds now, within the clock-drift bound
  std::chrono::milliseconds remaining{0};  // how long it holds without hearing more; 0 unless valid
};

// A health check in the embedding program: a callback probe (docs/health.md). `check` runs on
// a thread of the manager's every `interval` (from one run's start to the next; never two at
// once); ok passes, an error fails with its message as the reason, and so does an exception.
// One that has not returned after `timeout` counts as failed, and every interval it stays
// stuck counts again; it must return eventually, as shutdown waits for it.
struct HealthCheckOptions {
  std::string name;                    // 1..64 of [A-Za-z0-9._-], unique among the probes
  std::function<Status()> check;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};  // less than interval
  std::uint32_t fall = 3;              // failures in a row that turn it failing
  std::uint32_t rise = 2;              // successes in a row that turn it passing again
  std::uint32_t weight = 1;            // for health.aggregate = "weighted:W"
};

// The leader this node knows changed.
struct LeadershipEvent {
  std::optional<std::uint64_t> leader;  // none: no leader known (an election is running)
  std::uint64_t term = 0;
  bool is_leader = false;               // this node leads now
  bool was_leader = false;              // this node led before this change
  // Events discarded because the queue was full (kMaxQueuedEvents) since the last delivered one.
  std::uint64_t missed = 0;
};
using LeadershipHandler = std::function<void(const LeadershipEvent&)>;

class ClusterManager {
 public:
  static constexpr std::size_t kMaxQueuedEvents = 1024;
  static constexpr std::size_t kMaxHandlers = 64;
  // How long a call waits for the node thread to answer (a write also waits for its commit,
  // which the node bounds at 10 s).
  static constexpr std::chrono::milliseconds kCallTimeout{5000};
  static constexpr std::chrono::milliseconds kWriteTimeout{12000};
  static constexpr std::chrono::milliseconds kDefaultJoinTimeout{10000};

  explicit ClusterManager(ClusterConfig config);
  // Shuts down gracefully (hands leadership over if leader) when still running.
  ~ClusterManager();
  ClusterManager(const ClusterManager&) = delete;
  ClusterManager& operator=(const ClusterManager&) = delete;

  // Validates the configuration, recovers storage, listens on the peer and admin ports and
  // starts the node thread. Once only: a second call is Errc::invalid_argument.
  Status initialize();
  // Waits until this node is a voting member that knows a leader which is a member too. For a
  // joining node, first asks join_endpoints to add it. Errc::busy naming what is missing after
  // `timeout`.
  Status join_cluster(std::chrono::milliseconds timeout = kDefaultJoinTimeout);
  // A snapshot of this node's view, taken on the node thread.
  Result<ClusterStatus> get_status() const;
  // This node's lease and fencing token, if it leads; Errc::not_leader naming the leader
  // otherwise (a worker beside a follower must not act). Taken on the node thread, which first
  // reads the clock, so a node that was paused does not claim a lease that has run out.
  Result<LeaseInfo> lease() const;
  // Handlers run on the manager's event thread, in order, one at a time. They may call
  // get_status() or put(), but not shutdown() or the destructor (that would wait for itself).
  // Register before initialize() to see the first election. At most kMaxHandlers.
  Status on_leadership_change(LeadershipHandler handler);
  // Adds a health check of this program's (HealthCheckOptions), counted with the probes of
  // ClusterConfig::health. Before initialize(); Errc::invalid_argument naming the field
  // ("add_health_check: timeout: ...") otherwise or for a bad check.
  Status add_health_check(HealthCheckOptions check);

  // The replicated key-value store. Writes go to the leader only (Errc::not_leader naming the
  // leader otherwise) and return the write's revision once it is committed and applied.
  Result<std::uint64_t> put(const std::string& key, const std::string& value);
  Result<std::string> get(const std::string& key) const;

  // Exactly-once writes. Open a session once (open_session returns its client id, through the
  // leader); each write below may then carry ClientRef{id, seq} with a sequence number of the
  // caller's own (one per request). Retrying with the same pair after a timeout, an error of
  // unknown outcome or a failover applies the write at most once and answers the first outcome
  // (replayed = true). A session the cluster no longer holds (idle for a day, or evicted) is
  // Errc::conflict "session expired": open a new one. The session rule (how many requests in
  // flight, when a session is forgotten) is in docs/guarantees.md.
  Result<std::uint64_t> open_session();
  struct WriteOutcome {
    std::uint64_t revision = 0;  // the log index the write took effect at
    bool replayed = false;       // a retry: the first outcome, nothing applied again
  };
  Result<WriteOutcome> put(const std::string& key, const std::string& value,
                           const transport::ClientRef& client);

  // UTXO reservations (engine/kv/bitcoin.hpp has the rules): one owner per outpoint
  // ("TXID:VOUT") at a time, until its ttl runs out; spend is final. A refusal is
  // Errc::conflict naming the holder; a bad outpoint or owner is Errc::invalid_argument.
  Result<WriteOutcome> reserve_utxo(const std::string& outpoint, const std::string& owner,
                                    std::chrono::milliseconds ttl,
                                    std::optional<transport::ClientRef> client = std::nullopt);
  Result<WriteOutcome> release_utxo(const std::string& outpoint, const std::string& owner,
                                    std::optional<transport::ClientRef> client = std::nullopt);
  Result<WriteOutcome> spend_utxo(const std::string& outpoint, const std::string& owner,
                                  std::optional<transport::ClientRef> client = std::nullopt);
  // nullopt: free. Read from the leader (linearizable).
  Result<std::optional<engine::UtxoRecord>> get_utxo(const std::string& outpoint) const;

  // DLC contract records: created once with the oracle's nonce commitments, state changed only
  // from an expected state, one attestation per committed nonce, ever.
  Result<WriteOutcome> create_contract(const std::string& id, const std::string& state,
                                       const std::vector<std::string>& nonces,
                                       std::optional<transport::ClientRef> client = std::nullopt);
  Result<WriteOutcome> transition_contract(const std::string& id, const std::string& from,
                                           const std::string& to,
                                           std::optional<transport::ClientRef> client =
                                               std::nullopt);
  Result<WriteOutcome> attest_contract(const std::string& id, const std::string& nonce,
                                       const std::string& attestation,
                                       std::optional<transport::ClientRef> client = std::nullopt);
  Result<engine::DlcRecord> get_contract(const std::string& id) const;

  // Graceful stop: stop taking writes, hand leadership to a caught-up voter if leader (bounded
  // by two election timeouts), close links, join the threads. Idempotent.
  void shutdown();

  // The ports actually listened on (0 before initialize()).
  std::uint16_t peer_port() const;
  std::uint16_t admin_port() const;

 private:
  struct Impl;
  Result<WriteOutcome> submit(engine::Command command, std::optional<transport::ClientRef> client);
  Result<std::string> read_record(const std::string& key) const;  // not_found when absent
  std::unique_ptr<Impl> impl_;
};

// For tests, examples and quick starts, not production (use `anya-ha certs`): makes
// DIR/ca.crt + DIR/ca.key if missing and DIR/node-ID.crt + .key for `node_id` (valid for
// 127.0.0.1 and localhost), and fills the three TLS paths of `config`.
Status ensure_node_certificates(const std::filesystem::path& dir, ClusterConfig& config);

}  // namespace anya

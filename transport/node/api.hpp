// What the admin API (and the embedding API) can ask of a running node. The admin server speaks
// HTTP and JSON and knows nothing of Raft; the node implements this interface and knows nothing
// of HTTP. Tests and fuzz targets drive the admin server against a fake implementation.
//
// Every call runs on the node's io_context thread and answers through its callback exactly once,
// possibly later (a write answers once it commits and applies, or fails).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/kv/command.hpp"
#include "engine/progress/liveness.hpp"

namespace anya::transport {

struct MemberView {
  engine::NodeId id = engine::kNoNode;
  std::string address;                       // peer address
  bool voter = false;
  bool healthy = true;  // as it last reported; shown only while reachable (else unknown)
  bool reachable = false;
  std::optional<std::uint64_t> last_seen_ms;  // ms since last heard, if known
  engine::Index match_index = 0;
  // The member's Bitcoin chain height as it last reported it (known to the leader, and for this
  // node itself); nullopt if unknown.
  std::optional<std::uint64_t> chain_height{};
  // The failure detector's verdict: reachable, suspect, down, or unknown (this node cannot
  // tell: a follower sees only its leader).
  engine::Liveness liveness = engine::Liveness::unknown;
  std::optional<std::uint64_t> rtt_ms{};          // smoothed heartbeat round trip (leader's view)
  std::uint64_t liveness_transitions = 0;
};

// This node's Bitcoin backend and chain-gated leadership (engine/raft: Raft::chain_behind).
struct ChainStatusView {
  bool probing = false;                        // a chain probe has reported at least once
  std::optional<engine::ChainView> view;       // this node's, as its probe last reported it
  std::optional<std::uint64_t> quorum_height;  // the height a quorum of voters holds, if known
  bool behind = false;                         // gated: it neither campaigns nor stays leader
  std::uint64_t max_blocks_behind = 0;
  std::string probe_error;                     // why the last probe failed; empty if it worked
};

// One health probe of the service this node protects ([[health.probe]], docs/health.md).
struct ProbeStatusView {
  std::string name;
  std::string type;                          // http, tcp, exec, callback
  std::string state;                         // unknown, passing, failing
  std::uint32_t consecutive_successes = 0;   // results in a row; one of the two is 0
  std::uint32_t consecutive_failures = 0;
  std::uint32_t fall = 0;                    // the probe's thresholds, to read the two above
  std::uint32_t rise = 0;
  std::uint32_t weight = 1;
  std::uint64_t window_samples = 0;          // results in the rolling window (health.window)
  double error_ratio = 0;                    // failures / window_samples; 0 without samples
  std::optional<std::uint64_t> p50_ms;       // response time in the window (failures too)
  std::optional<std::uint64_t> p99_ms;
  std::string last_error;                    // the last failure's reason; empty: none yet
  std::optional<std::uint64_t> last_result_age_ms;  // since its last result; none: no result
};

// One configured resource limit against the latest sample.
struct ResourceLimitView {
  std::string resource;                      // cpu, memory, disk, fds
  std::string limit_key;                     // the [health] key: max_cpu_percent, min_disk_free
  std::optional<double> value;               // percent (bytes for min_disk_free); none: unknown
  double limit = 0;
  bool upper = true;                         // true: a maximum; false: a minimum
  bool over = false;                         // past the limit in the latest sample
  bool exceeded = false;                     // after resource_fall/rise: counts against the node
};

// The latest resource sample, whatever the limits (transport/health/resource_sampler.hpp).
struct ResourceLevelsView {
  std::optional<double> cpu_percent;         // the whole machine's, over the last interval
  std::optional<double> memory_used_percent;
  std::optional<std::uint64_t> data_dir_free_bytes;
  std::optional<double> data_dir_free_percent;
  std::optional<std::uint64_t> open_fds;
  std::optional<std::uint64_t> max_fds;
  std::optional<std::uint64_t> age_ms;       // since the sample; none: no sample yet
  std::string error;                         // why some values are unknown; empty: none
};

// This node's verdict on the service it protects (engine/health). monitored = false: no
// probes and no limits are configured, and the node is always healthy.
struct HealthStatusView {
  bool monitored = false;
  bool healthy = true;
  std::string aggregate;                     // "all", "any", "at_least:K", "weighted:W"
  std::string explanation;                   // one line: "unhealthy: probe ... failing (...)"
  std::vector<std::string> reasons;          // each thing against the node; empty: healthy
  std::vector<ProbeStatusView> probes;       // configuration order (bit i of the summary)
  std::vector<ResourceLimitView> limits;
  ResourceLevelsView resources;
  std::string summary_hex;                   // the 12-byte HealthSummary heartbeats will carry
};

struct StatusView {
  engine::NodeId node_id = engine::kNoNode;
  std::string cluster;
  std::string role;
  engine::Term term = 0;
  engine::NodeId leader = engine::kNoNode;
  std::string leader_admin;                  // the leader's admin endpoint, if known
  engine::Index commit_index = 0;
  engine::Index applied_index = 0;
  bool quorum = false;
  bool ready = false;                        // member of a quorum and caught up
  std::uint64_t config_version = 0;
  std::uint64_t fencing_token = 0;           // the current leadership's term; 0 if none
  std::vector<MemberView> members;
  ChainStatusView chain;
  HealthStatusView health;
};

// A failure the admin API turns into an HTTP status and {"error": CODE, "message": TEXT}.
// For not_leader, the leader's id and admin endpoint when known, so clients can follow.
struct ApiError {
  Status status;
  engine::NodeId leader = engine::kNoNode;
  std::string leader_admin{};
};

template <typename T>
struct ApiResult {
  std::optional<T> value;
  ApiError error;
  ApiResult(T v) : value(std::move(v)) {}             // NOLINT: implicit by design
  ApiResult(ApiError e) : error(std::move(e)) {}      // NOLINT
  bool ok() const { return value.has_value(); }
};
template <typename T>
using Reply = std::function<void(ApiResult<T>)>;

struct KvEntryView {
  std::string key;
  std::string value;
  engine::Index create_revision = 0;
  engine::Index mod_revision = 0;
  std::uint64_t version = 0;
  engine::ReadMode consistency = engine::ReadMode::linearizable;  // how it was read
  bool stale_possible = false;  // serializable: may miss writes acknowledged elsewhere
};

// Who sent a write, for exactly-once: the Anya-Client-Id and Anya-Client-Seq headers, or the
// embedding API's client. `id` is what opening the session returned (POST /v1/session,
// ClusterManager::open_session). A retry with the same pair returns the first outcome
// (engine/kv/kv.hpp).
struct ClientRef {
  std::uint64_t id = 0;
  std::uint64_t seq = 0;
};

struct KvWrite {
  enum class Op { put, cas, del } op = Op::put;
  std::string key;
  std::string value;
  // cas: the mod_revision expected (0: the key must not exist); del: optional precondition.
  std::optional<engine::Index> expected_revision;
  std::optional<ClientRef> client{};  // exactly-once: the writer and its request number
};

struct KvWriteResult {
  engine::Index revision = 0;  // the index of the write
  bool replayed = false;       // a retry: the first outcome, and nothing was applied again
};

struct ConfigView {
  std::uint64_t version = 0;
  std::string document;        // JSON text; empty before the first configuration
};

struct LeaseView {
  engine::NodeId holder = engine::kNoNode;  // the leader
  std::uint64_t fencing_token = 0;
  bool valid = false;                       // the lease holds now (engine/node's rule)
  std::uint64_t remaining_ms = 0;           // how long it holds without hearing more
  std::uint64_t valid_until_ms = 0;         // on the leader's monotonic clock; 0 unless valid
};

struct Empty {};

class NodeApi {
 public:
  virtual ~NodeApi() = default;
  virtual StatusView status() = 0;
  virtual bool alive() = 0;
  virtual std::string metrics_text() = 0;

  // `consistency` nullopt: the node's configured default (reads = ... in its configuration).
  virtual void kv_get(const std::string& key, std::optional<engine::ReadMode> consistency,
                      Reply<KvEntryView> reply) = 0;
  virtual void kv_write(KvWrite write, Reply<KvWriteResult> reply) = 0;
  // A UTXO reservation or DLC contract command (engine/kv/bitcoin.hpp), in `client`'s session if
  // given. The node stamps its wall clock into the command (reservation expiry, session idle
  // time). Answered once applied, like kv_write; an outcome other than ok is the error.
  virtual void record_write(engine::Command command, std::optional<ClientRef> client,
                            Reply<KvWriteResult> reply) = 0;
  // Opens a client session (engine::SessionOpen); the reply's revision is its client id.
  void open_session(Reply<KvWriteResult> reply) {
    record_write(engine::SessionOpen{}, std::nullopt, std::move(reply));
  }
  // Up to `limit` entries whose key starts with `prefix`, in key order, from this node's
  // applied state (serializable: a follower's may lag the leader's).
  virtual std::vector<KvEntryView> kv_scan(const std::string& prefix, std::size_t limit) = 0;

  virtual void members_add(engine::NodeId id, std::string address, bool learner,
                           Reply<Empty> reply) = 0;
  virtual void members_remove(engine::NodeId id, Reply<Empty> reply) = 0;

  virtual void config_get(Reply<ConfigView> reply) = 0;
  virtual void config_put(std::string document, std::optional<std::uint64_t> if_version,
                          Reply<ConfigView> reply) = 0;
  virtual void config_rollback(std::uint64_t version, std::optional<std::uint64_t> if_version,
                               Reply<ConfigView> reply) = 0;
  virtual void config_history(Reply<std::vector<ConfigView>> reply) = 0;

  virtual void leader_transfer(std::optional<engine::NodeId> to, Reply<engine::NodeId> reply) = 0;
  virtual void lease(Reply<LeaseView> reply) = 0;
};

}  // namespace anya::transport

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

namespace anya::transport {

struct MemberView {
  engine::NodeId id = engine::kNoNode;
  std::string address;                       // peer address
  bool voter = false;
  bool healthy = true;
  bool reachable = false;
  std::optional<std::uint64_t> last_seen_ms;  // ms since last heard, if known
  engine::Index match_index = 0;
  // The member's Bitcoin chain height as it last reported it (known to the leader, and for this
  // node itself); nullopt if unknown.
  std::optional<std::uint64_t> chain_height{};
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
// embedding API's client. A retry with the same pair returns the first outcome (engine/kv).
struct ClientRef {
  std::string id;
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

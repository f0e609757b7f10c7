// The node's configuration: what `anya-ha agent --config FILE` reads (TOML), validated as a whole
// before the node touches anything. Every field is documented in docs/configuration.md; every
// error names the file and the field ("node.toml: raft.election_timeout: ...") so an operator can
// fix it without reading code. Durations carry units ("50ms", "5s"), sizes too ("64MiB").
#pragma once

#include <cstdint>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "transport/auth/auth.hpp"

namespace anya::transport {

// host:port, as written in the file. Hosts are IPv4 literals or names; IPv6 is not supported yet.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const HostPort&, const HostPort&) = default;
};
Result<HostPort> parse_host_port(std::string_view text);

struct StaticMember {
  engine::NodeId id = engine::kNoNode;
  HostPort peer_address;

  friend bool operator==(const StaticMember&, const StaticMember&) = default;
};

// [bitcoin]: the Bitcoin backend beside this node, and chain-gated leadership. The probe tells
// the node how far its backend has synced; a node whose view is unknown or more than
// max_blocks_behind below the height a quorum of voters holds does not lead (engine/raft).
struct BitcoinConfig {
  // A shell command (run with /bin/sh -c) printing {"height": N, "tip": "<64 hex digits>"}.
  // Empty: no probe; this node never has a chain view (and gating stays off unless a quorum of
  // the voters do have one).
  std::string chain_probe;
  std::uint64_t max_blocks_behind = 2;
  std::uint64_t chain_probe_interval_ms = 1000;  // from one probe's end to the next's start
  std::uint64_t chain_probe_timeout_ms = 2000;   // a probe still running then is killed

  friend bool operator==(const BitcoinConfig&, const BitcoinConfig&) = default;
};

struct NodeConfig {
  engine::NodeId node_id = engine::kNoNode;
  std::string cluster;                      // name; peers of another cluster are refused
  std::filesystem::path data_dir;           // WAL, hard state, snapshots

  HostPort peer_listen;                     // TLS WebSocket links between members
  HostPort peer_advertise;                  // what the others dial; defaults to peer_listen
  HostPort admin_listen;                    // HTTPS admin API; never the peer port
  // Plain HTTP serving only /healthz, /readyz and /metrics, for load balancers, probes and
  // Prometheus without an admin credential. Off unless set.
  std::optional<HostPort> health_listen;

  std::filesystem::path tls_ca;             // the cluster CA every peer and client chains to
  std::filesystem::path tls_cert;           // this node's certificate (SAN anya-ha://node/ID)
  std::filesystem::path tls_key;
  std::filesystem::path tls_crl;            // optional: revoked certificates (PEM CRL)
  // Optional: the CA's key, so this node can sign joining nodes' certificates (POST /v1/join).
  std::filesystem::path tls_ca_key;

  // Who may do what on the admin API ([auth]); default deny.
  auth::AuthConfig auth;
  // The tamper-evident record of every mutation and refusal ([audit]). The secret keys its
  // HMAC chain and is the same on every node; empty: no audit log (embedding only: the TOML
  // file requires one).
  std::filesystem::path audit_file;         // default: DATA_DIR/audit.log
  std::filesystem::path audit_secret_file;

  std::uint64_t heartbeat_interval_ms = 50;
  std::uint64_t election_timeout_ms = 300;
  // Each election waits election_timeout plus a random part of this; unset: a third of the
  // timeout. Narrower than the paper's [T, 2T) so a stalled leader is replaced sooner; wide
  // enough that two followers rarely time out within one pre-vote round trip (about 1 ms here),
  // which is what it takes to split a vote when PreVote is on.
  std::optional<std::uint64_t> election_jitter_ms;
  std::uint64_t effective_election_jitter_ms() const {
    return election_jitter_ms.value_or(std::max<std::uint64_t>(election_timeout_ms / 3, 1));
  }
  bool pre_vote = true;
  bool check_quorum = true;
  std::uint64_t config_txn_deadline_ms = 5000;
  // How GET /v1/kv answers when the client does not say (?consistency=...).
  engine::ReadMode reads = engine::ReadMode::linearizable;
  // The bound on clock-rate error the lease relies on (raft.max_clock_drift, a ratio written
  // like 0.05), in parts per million.
  std::uint32_t max_clock_drift_ppm = 50'000;

  bool fsync = true;
  std::uint64_t segment_bytes = 64ull << 20;
  std::uint64_t snapshot_entries = 10000;   // entries applied between snapshots

  BitcoinConfig bitcoin;

  // Static discovery: the voters the cluster starts with. A node that joins a running
  // cluster (join = true) starts with none and learns the membership from the leader.
  std::vector<StaticMember> members;
  bool join = false;

  std::string log_level = "info";           // error, warn, info, debug

  // The cluster name hashed to the engine's 64-bit cluster id (FNV-1a; never 0).
  std::uint64_t cluster_id() const;
};

// Named bounds, checked by validate().
struct NodeConfigLimits {
  static constexpr std::uint64_t min_heartbeat_ms = 1;
  static constexpr std::uint64_t max_heartbeat_ms = 10'000;
  static constexpr std::uint64_t max_election_timeout_ms = 60'000;
  // Below three heartbeats per election timeout, one lost heartbeat starts an election.
  static constexpr std::uint64_t min_election_heartbeats = 3;
  static constexpr std::uint64_t min_segment_bytes = 1ull << 20;
  static constexpr std::uint64_t max_segment_bytes = 1ull << 30;
  static constexpr std::size_t max_members = 64;
  static constexpr std::size_t max_cluster_name_bytes = 64;
  static constexpr std::size_t max_file_bytes = 1u << 20;
  static constexpr std::size_t max_chain_probe_bytes = 4096;
  static constexpr std::uint64_t min_chain_probe_interval_ms = 10;
  static constexpr std::uint64_t max_chain_probe_interval_ms = 3'600'000;
  static constexpr std::uint64_t min_chain_probe_timeout_ms = 10;
  static constexpr std::uint64_t max_chain_probe_timeout_ms = 60'000;
};

// Parses `text` (the contents of `file`, used in messages and to resolve relative paths).
// Errc::invalid_argument naming the field (or the line and column of a syntax error).
Result<NodeConfig> parse_node_config(std::string_view text, const std::filesystem::path& file);
Result<NodeConfig> load_node_config(const std::filesystem::path& file);

// Cross-field checks; parse_node_config runs them. Messages name the field, without the file.
Status validate(const NodeConfig& config);

// The TOML text of `config`, with paths written relative to `dir` where they lie inside it.
// parse_node_config(render_node_config(c, d), d / "x.toml") gives back c.
std::string render_node_config(const NodeConfig& config, const std::filesystem::path& dir);

// "50ms", "5s", "2m", "1h", "250us" (rounded up to whole ms; 0 only if written as 0).
Result<std::uint64_t> parse_duration_ms(std::string_view text);
// "64MiB", "512KiB", "1GiB", "4096B" or a bare integer of bytes.
Result<std::uint64_t> parse_size_bytes(std::string_view text);
std::string format_duration_ms(std::uint64_t ms);
std::string format_size_bytes(std::uint64_t bytes);

}  // namespace anya::transport

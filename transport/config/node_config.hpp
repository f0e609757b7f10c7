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
#include "engine/health/evaluator.hpp"
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

// [discovery]: the methods that propose peers (docs/discovery.md). Discovery only proposes: a
// proposed peer still passes mutual TLS and the membership rules, and no method ever removes a
// member. The static list (discovery.members) is NodeConfig::members.
struct DnsSrvDiscoveryConfig {
  std::string domain;                     // required: the SRV name is SERVICE.DOMAIN
  std::string service = "_anya-ha._tcp";
  // Where queries go (an IPv4 address and port); unset: the first nameserver of
  // /etc/resolv.conf, port 53.
  std::optional<HostPort> nameserver;
  // The records' TTL says when to ask again, clamped to [min_refresh, max_refresh].
  std::uint64_t min_refresh_ms = 5'000;
  std::uint64_t max_refresh_ms = 300'000;
  std::uint64_t timeout_ms = 2'000;       // per query, UDP and TCP alike

  friend bool operator==(const DnsSrvDiscoveryConfig&, const DnsSrvDiscoveryConfig&) = default;
};

struct KubernetesDiscoveryConfig {
  enum class Mode { poll, watch };
  // https://HOST:PORT; empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
  std::string api_server;
  std::string namespace_name;             // empty: the service account's namespace file
  std::string service;                    // required: the headless service's name
  std::filesystem::path token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::filesystem::path ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string port_name;                  // the EndpointSlice port to use; empty: the only one
  Mode mode = Mode::poll;
  std::uint64_t interval_ms = 10'000;     // between polls; watch: before a re-list after errors
  std::uint64_t timeout_ms = 5'000;       // per request (a watch: per event gap)
  std::uint64_t node_id_offset = 1;       // node id = StatefulSet ordinal + this

  friend bool operator==(const KubernetesDiscoveryConfig&,
                         const KubernetesDiscoveryConfig&) = default;
};

struct MulticastDiscoveryConfig {
  std::string group = "239.255.42.99";    // an IPv4 multicast address
  std::uint16_t port = 7199;
  std::string interface = "0.0.0.0";      // the IPv4 address to send and join on; 0.0.0.0: any
  std::uint64_t interval_ms = 2'000;      // between announcements; peers expire after 3
  std::filesystem::path secret_file;      // required: the cluster's HMAC key, same on every node
  std::uint64_t replay_window_ms = 30'000;

  friend bool operator==(const MulticastDiscoveryConfig&,
                         const MulticastDiscoveryConfig&) = default;
};

struct DiscoveryConfig {
  std::vector<std::string> methods = {"static"};  // in order: the order breaks address ties
  DnsSrvDiscoveryConfig dns_srv;
  KubernetesDiscoveryConfig kubernetes;
  MulticastDiscoveryConfig multicast;

  bool uses(std::string_view method) const {
    return std::find(methods.begin(), methods.end(), method) != methods.end();
  }
  friend bool operator==(const DiscoveryConfig&, const DiscoveryConfig&) = default;
};

struct DiscoveryConfigLimits {
  static constexpr std::uint64_t min_refresh_ms = 100;
  static constexpr std::uint64_t max_refresh_ms = 86'400'000;  // a day
  static constexpr std::uint64_t min_timeout_ms = 10;
  static constexpr std::uint64_t max_timeout_ms = 300'000;
  static constexpr std::uint64_t min_interval_ms = 10;
  static constexpr std::uint64_t max_interval_ms = 3'600'000;
  static constexpr std::uint64_t min_replay_window_ms = 100;
  static constexpr std::uint64_t max_replay_window_ms = 3'600'000;
  static constexpr std::uint64_t max_node_id_offset = 1'000'000;
  static constexpr std::size_t max_dns_name_bytes = 253;
};

// [health]: the service this node protects, watched by probes and resource thresholds
// (docs/health.md). An unhealthy node never campaigns, and an unhealthy leader hands leadership
// to a healthy, caught-up voter (engine/raft). The rules live in engine/health; these are the
// targets the probes reach, which only transport/health needs.
struct ProbeUrl {
  bool https = false;
  std::string host;            // a name or an IPv4 literal
  std::uint16_t port = 0;      // default 80 or 443 when the URL has none
  std::string target = "/";    // path and query, as sent in the request line

  std::string to_string() const;
  friend bool operator==(const ProbeUrl&, const ProbeUrl&) = default;
};
// "http://HOST[:PORT][/PATH]" or "https://...". No user info, no fragment, no IPv6 yet.
Result<ProbeUrl> parse_probe_url(std::string_view text);

struct HealthProbeConfig {
  engine::health::ProbeSpec spec;     // name, type (spec.kind), interval, timeout, fall, ...
  ProbeUrl url;                       // http: required
  std::uint32_t expect_status = 200;  // http: the status that passes
  std::filesystem::path ca_file;      // https: verify against this CA file; empty: the system's
  HostPort address;                   // tcp: required
  std::vector<std::string> command;   // exec: argv (argv[0] looked up in PATH without a '/')
  // callback: nothing here; the embedding program registers the function by spec.name.

  friend bool operator==(const HealthProbeConfig&, const HealthProbeConfig&) = default;
};

struct HealthConfig {
  std::vector<HealthProbeConfig> probes;
  engine::health::Aggregation aggregate;
  engine::health::ResourceLimits limits;
  std::uint32_t resource_fall = 2;    // samples in a row over a limit to count as exceeded
  std::uint32_t resource_rise = 2;    // samples in a row under it to stop counting
  std::uint64_t resource_interval_ms = 5000;
  std::uint64_t window_ms = engine::health::ProbeLimits::default_window_ms;

  // The engine's view: what engine::health::HealthEvaluator is built from.
  engine::health::HealthPolicy policy() const;
  // Probes or thresholds configured: the node runs a health monitor.
  bool enabled() const { return !probes.empty() || limits.any(); }
  friend bool operator==(const HealthConfig&, const HealthConfig&) = default;
};

struct HealthConfigLimits {
  static constexpr std::uint64_t min_resource_interval_ms = 100;
  static constexpr std::uint64_t max_resource_interval_ms = 3'600'000;
  static constexpr std::uint64_t default_probe_timeout_ms = 2000;  // or half the interval
  static constexpr std::size_t max_url_bytes = 2048;
  static constexpr std::size_t max_command_args = 64;
  static constexpr std::size_t max_command_arg_bytes = 4096;
};

// Cross-field checks of [health]; validate() runs them. Messages name the field
// ("health.probe[1].timeout: ...").
Status validate_health(const HealthConfig& health);

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
  HealthConfig health;

  // Static discovery: the voters the cluster starts with. A node that joins a running
  // cluster (join = true) starts with none and learns the membership from the leader.
  std::vector<StaticMember> members;
  bool join = false;
  // The methods that propose peers besides that list (a joining node may take its seeds from
  // them; a member whose address changes is dialled at the new one).
  DiscoveryConfig discovery;

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

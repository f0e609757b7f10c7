// ClusterConfig -> NodeConfig, and certificates for tests and examples. The node's own
// validate() speaks in TOML field names ("raft.election_timeout"); an embedder never wrote a
// TOML file, so its messages are rewritten to the ClusterConfig field names here.
#include <algorithm>
#include <array>
#include <charconv>
#include <system_error>
#include <tuple>
#include <utility>

#include "transport/audit/audit_log.hpp"
#include "transport/embed/cluster_manager.hpp"
#include "transport/tls/certs.hpp"

namespace anya {

namespace fs = std::filesystem;
using transport::HostPort;
using transport::NodeConfig;

namespace {

constexpr int kCaValidityDays = 3650;
constexpr int kLeafValidityDays = 825;
// The node's default deadline for a configuration transaction; it must cover one election.
constexpr std::uint64_t kConfigTxnDeadlineMs = 5000;

Status invalid(std::string message) { return {Errc::invalid_argument, std::move(message)}; }

// TOML field names in the node's messages -> the ClusterConfig fields they came from.
// Longer names first: "bitcoin.chain_probe" is the start of the two after it.
constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kFieldNames{{
    {"bitcoin.chain_probe_interval", "chain_probe_interval"},
    {"bitcoin.chain_probe_timeout", "chain_probe_timeout"},
    {"bitcoin.chain_probe", "chain_probe_command"},
    {"bitcoin.max_blocks_behind", "max_blocks_behind"},
    {"raft.heartbeat_interval", "heartbeat_interval"},
    {"raft.election_timeout", "election_timeout"},
    {"raft.election_jitter", "election_jitter"},
    {"peer.listen", "bind_address"},
    {"peer.advertise", "advertise_address"},
    {"admin.listen", "admin_address"},
    {"discovery.members", "discovery.nodes"},
    {"discovery.join", "join"},
    {"log.level", "log_level"},
}};

std::string rename_fields(std::string message) {
  for (const auto& [from, to] : kFieldNames) {
    for (std::size_t at = message.find(from); at != std::string::npos;
         at = message.find(from, at + to.size())) {
      message.replace(at, from.size(), to);
    }
  }
  return message;
}

Result<HostPort> read_address(const std::string& field, const std::string& text) {
  Result<HostPort> hp = transport::parse_host_port(text);
  if (!hp) return Status(invalid(field + ": " + hp.status().message()));
  return hp;
}

Status read_static_nodes(const StaticDiscovery& d, NodeConfig& c) {
  if (d.nodes.size() > transport::NodeConfigLimits::max_members) {
    return invalid("discovery.nodes: more than " +
                   std::to_string(transport::NodeConfigLimits::max_members) + " nodes");
  }
  for (std::size_t i = 0; i < d.nodes.size(); i++) {
    const std::string field = "discovery.nodes[" + std::to_string(i) + "]";
    const std::string& text = d.nodes[i];
    const std::size_t at = text.find('@');
    if (at == std::string::npos) {
      return invalid(field + ": expected \"ID@HOST:PORT\", got \"" + text + "\"");
    }
    std::uint64_t id = 0;
    const char* end = text.data() + at;
    auto [ptr, ec] = std::from_chars(text.data(), end, id);
    if (at == 0 || ec != std::errc() || ptr != end || id == 0) {
      return invalid(field + ": node id must be a positive whole number, got \"" +
                     text.substr(0, at) + "\"");
    }
    Result<HostPort> hp = read_address(field, text.substr(at + 1));
    if (!hp) return hp.status();
    c.members.push_back({id, *hp});
  }
  return {};
}

Status read_addresses(const ClusterConfig& cc, NodeConfig& c) {
  Result<HostPort> bind = read_address("bind_address", cc.bind_address);
  if (!bind) return bind.status();
  c.peer_listen = *bind;
  if (!cc.advertise_address.empty()) {
    Result<HostPort> adv = read_address("advertise_address", cc.advertise_address);
    if (!adv) return adv.status();
    c.peer_advertise = *adv;
  } else {
    c.peer_advertise = c.peer_listen;
    for (const transport::StaticMember& m : c.members) {
      if (m.id == c.node_id) c.peer_advertise = m.peer_address;
    }
    if (c.peer_advertise.host == "0.0.0.0") {
      return invalid("advertise_address: required when bind_address listens on 0.0.0.0 and "
                     "this node is not in discovery.nodes (the others must know where to dial)");
    }
  }
  if (!cc.admin_address.empty()) {
    Result<HostPort> admin = read_address("admin_address", cc.admin_address);
    if (!admin) return admin.status();
    c.admin_listen = *admin;
  } else {
    const unsigned port = unsigned{c.peer_listen.port} + ClusterConfig::kAdminPortOffset;
    if (port > 65535) {
      return invalid("admin_address: bind_address's port + " +
                     std::to_string(ClusterConfig::kAdminPortOffset) +
                     " is above 65535; set admin_address");
    }
    c.admin_listen = {c.peer_listen.host, static_cast<std::uint16_t>(port)};
  }
  return {};
}

Status read_paths(const ClusterConfig& cc, NodeConfig& c) {
  if (cc.data_dir.empty()) return invalid("data_dir: required (where the node keeps its log)");
  c.data_dir = cc.data_dir;
  for (auto [field, from, to] : {std::tuple{"tls_ca", &cc.tls_ca, &c.tls_ca},
                                 std::tuple{"tls_cert", &cc.tls_cert, &c.tls_cert},
                                 std::tuple{"tls_key", &cc.tls_key, &c.tls_key}}) {
    if (from->empty()) return invalid(std::string(field) + ": required (a PEM file)");
    *to = *from;
  }
  c.tls_crl = cc.tls_crl;
  c.audit_secret_file = cc.audit_secret_file;
  c.audit_file = cc.audit_file.empty() ? cc.data_dir / "audit.log" : cc.audit_file;
  if (Status s = transport::auth::validate(cc.auth); !s) return s;
  c.auth = cc.auth;
  return {};
}

Status read_join(const ClusterConfig& cc) {
  if (cc.join_endpoints.size() > ClusterConfig::kMaxJoinEndpoints) {
    return invalid("join_endpoints: more than " +
                   std::to_string(ClusterConfig::kMaxJoinEndpoints) + " endpoints");
  }
  if (!cc.join && !cc.join_endpoints.empty()) {
    return invalid("join_endpoints: only used with join = true");
  }
  for (std::size_t i = 0; i < cc.join_endpoints.size(); i++) {
    if (cc.join_endpoints[i].rfind("https://", 0) != 0) {
      return invalid("join_endpoints[" + std::to_string(i) + "]: expected \"https://HOST:PORT\", "
                     "got \"" + cc.join_endpoints[i] + "\"");
    }
  }
  return {};
}

Status read_chain(const ClusterConfig& cc, NodeConfig& c) {
  if (cc.chain_probe && !cc.chain_probe_command.empty()) {
    return invalid("chain_probe: set either chain_probe (a callback) or chain_probe_command, "
                   "not both");
  }
  if (cc.chain_probe_interval.count() < 0) {
    return invalid("chain_probe_interval: must not be negative");
  }
  if (cc.chain_probe_timeout.count() < 0) {
    return invalid("chain_probe_timeout: must not be negative");
  }
  c.bitcoin.chain_probe = cc.chain_probe_command;
  c.bitcoin.chain_probe_interval_ms = static_cast<std::uint64_t>(cc.chain_probe_interval.count());
  c.bitcoin.chain_probe_timeout_ms = static_cast<std::uint64_t>(cc.chain_probe_timeout.count());
  c.bitcoin.max_blocks_behind = cc.max_blocks_behind;
  return {};
}

}  // namespace

Result<NodeConfig> ClusterConfig::to_node_config() const {
  NodeConfig c;
  if (node_id == 0) return Status(invalid("node_id: required (a positive whole number)"));
  c.node_id = node_id;
  c.cluster = cluster;
  if (const auto* s = std::get_if<StaticDiscovery>(&discovery); s != nullptr) {
    if (Status st = read_static_nodes(*s, c); !st) return st;
  }
  if (Status st = read_addresses(*this, c); !st) return st;
  if (Status st = read_paths(*this, c); !st) return st;
  if (Status st = read_join(*this); !st) return st;
  if (heartbeat_interval.count() < 0) {
    return Status(invalid("heartbeat_interval: must not be negative"));
  }
  if (election_timeout.count() < 0) {
    return Status(invalid("election_timeout: must not be negative"));
  }
  c.heartbeat_interval_ms = static_cast<std::uint64_t>(heartbeat_interval.count());
  c.election_timeout_ms = static_cast<std::uint64_t>(election_timeout.count());
  if (election_jitter) {
    if (election_jitter->count() < 0) {
      return Status(invalid("election_jitter: must not be negative"));
    }
    c.election_jitter_ms = static_cast<std::uint64_t>(election_jitter->count());
  }
  // Not exposed here: keep the node's default unless a long election timeout needs more.
  c.config_txn_deadline_ms = std::max(kConfigTxnDeadlineMs, c.election_timeout_ms);
  c.fsync = fsync;
  c.join = join;
  c.log_level = log_level;
  if (Status st = read_chain(*this, c); !st) return st;
  if (Status st = transport::validate(c); !st) {
    return Status(invalid(rename_fields(st.message())));
  }
  return c;
}

Status ensure_node_certificates(const fs::path& dir, ClusterConfig& config) {
  namespace tls = transport::tls;
  if (config.node_id == 0) return invalid("node_id: required before making its certificate");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return {Errc::io_error, dir.string() + ": cannot create: " + ec.message()};
  const fs::path secret = dir / "audit.secret";
  if (!fs::exists(secret, ec)) {
    if (Status s = transport::create_audit_secret(secret); !s) return s;
  }
  config.audit_secret_file = secret;
  const fs::path ca_cert = dir / "ca.crt", ca_key = dir / "ca.key";
  Result<tls::KeyPair> ca = fs::exists(ca_cert, ec) ? tls::read_pem_files(ca_cert, ca_key)
                                                     : tls::generate_ca("anya-ha CA",
                                                                        kCaValidityDays);
  if (!ca) return ca.status();
  if (!fs::exists(ca_cert, ec)) {
    if (Status s = tls::write_pem_files(ca_cert, ca_key, *ca); !s) return s;
  }
  const std::string stem = "node-" + std::to_string(config.node_id);
  const fs::path cert = dir / (stem + ".crt"), key = dir / (stem + ".key");
  if (!fs::exists(cert, ec)) {
    Result<tls::KeyPair> leaf = tls::issue(*ca, tls::Identity::node(config.node_id),
                                           {"localhost"}, {"127.0.0.1"}, kLeafValidityDays);
    if (!leaf) return leaf.status();
    if (Status s = tls::write_pem_files(cert, key, *leaf); !s) return s;
  }
  config.tls_ca = ca_cert;
  config.tls_cert = cert;
  config.tls_key = key;
  return {};
}

}  // namespace anya

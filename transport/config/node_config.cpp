#include "transport/config/node_config.hpp"

#include <toml++/toml.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace anya::transport {

namespace {

Status invalid(std::string message) { return {Errc::invalid_argument, std::move(message)}; }

Result<std::uint64_t> parse_u64(std::string_view digits) {
  std::uint64_t value = 0;
  const char* end = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (digits.empty() || ec != std::errc() || ptr != end) {
    return Status(Errc::invalid_argument, "\"" + std::string(digits) + "\" is not a number");
  }
  return value;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

// Reads one table, remembering which keys were used so that unknown keys (usually typos) are
// reported instead of silently ignored.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix)
      : table_(table), prefix_(std::move(prefix)) {}

  std::string field(std::string_view key) const { return prefix_ + std::string(key); }
  const toml::node* get(std::string_view key) {
    used_.insert(std::string(key));
    return table_.get(key);
  }
  bool has(std::string_view key) const { return table_.contains(key); }

  Status read_string(std::string_view key, std::string& out) {
    const toml::node* n = get(key);
    if (n == nullptr) return {};
    if (!n->is_string()) return invalid(field(key) + ": expected a string");
    out = **n->as_string();
    return {};
  }
  Status read_bool(std::string_view key, bool& out) {
    const toml::node* n = get(key);
    if (n == nullptr) return {};
    if (!n->is_boolean()) return invalid(field(key) + ": expected true or false");
    out = **n->as_boolean();
    return {};
  }
  Status read_u64(std::string_view key, std::uint64_t& out) {
    const toml::node* n = get(key);
    if (n == nullptr) return {};
    if (!n->is_integer()) return invalid(field(key) + ": expected a whole number");
    const std::int64_t v = **n->as_integer();
    if (v < 0) return invalid(field(key) + ": must not be negative");
    out = static_cast<std::uint64_t>(v);
    return {};
  }
  Status read_duration(std::string_view key, std::uint64_t& out_ms) {
    std::string text;
    if (const toml::node* n = table_.get(key); n != nullptr && !n->is_string()) {
      used_.insert(std::string(key));
      return invalid(field(key) + ": expected a duration string with a unit, e.g. \"50ms\"");
    }
    if (Status s = read_string(key, text); !s || !has(key)) return s;
    Result<std::uint64_t> ms = parse_duration_ms(text);
    if (!ms) return invalid(field(key) + ": " + ms.status().message());
    out_ms = *ms;
    return {};
  }
  Status read_size(std::string_view key, std::uint64_t& out_bytes) {
    const toml::node* n = get(key);
    if (n == nullptr) return {};
    if (n->is_integer() && **n->as_integer() >= 0) {
      out_bytes = static_cast<std::uint64_t>(**n->as_integer());
      return {};
    }
    if (!n->is_string()) return invalid(field(key) + ": expected a size, e.g. \"64MiB\"");
    Result<std::uint64_t> bytes = parse_size_bytes(**n->as_string());
    if (!bytes) return invalid(field(key) + ": " + bytes.status().message());
    out_bytes = *bytes;
    return {};
  }
  Status read_host_port(std::string_view key, HostPort& out) {
    std::string text;
    if (Status s = read_string(key, text); !s || !has(key)) return s;
    Result<HostPort> hp = parse_host_port(text);
    if (!hp) return invalid(field(key) + ": " + hp.status().message());
    out = *hp;
    return {};
  }
  Status read_path(std::string_view key, const std::filesystem::path& base,
                   std::filesystem::path& out) {
    std::string text;
    if (Status s = read_string(key, text); !s || !has(key)) return s;
    if (text.empty()) return invalid(field(key) + ": must not be empty");
    std::filesystem::path p(text);
    out = p.is_absolute() ? p : (base / p).lexically_normal();
    return {};
  }
  // Sub-table `key`, or an empty table when absent.
  Result<const toml::table*> table(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr) return &empty_;
    if (!n->is_table()) return Status(invalid(field(key) + ": expected a table [" +
                                              field(key) + "]"));
    return n->as_table();
  }
  Status no_unknown_keys() const {
    for (const auto& [key, value] : table_) {
      if (used_.count(std::string(key.str())) == 0) {
        return invalid(field(key.str()) + ": unknown field (see docs/configuration.md)");
      }
    }
    return {};
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  std::set<std::string> used_;
  static inline const toml::table empty_{};
};

Status read_members(TableReader& discovery, NodeConfig& c) {
  const toml::node* n = discovery.get("members");
  if (n == nullptr) return {};
  const std::string field = discovery.field("members");
  if (!n->is_array()) return invalid(field + ": expected a list like [\"1@10.0.0.1:7100\"]");
  const toml::array& list = *n->as_array();
  if (list.size() > NodeConfigLimits::max_members) {
    return invalid(field + ": more than " + std::to_string(NodeConfigLimits::max_members) +
                   " members");
  }
  for (std::size_t i = 0; i < list.size(); i++) {
    const std::string at = field + "[" + std::to_string(i) + "]";
    if (!list[i].is_string()) return invalid(at + ": expected \"ID@HOST:PORT\"");
    const std::string text = **list[i].as_string();
    const std::size_t sep = text.find('@');
    if (sep == std::string::npos) return invalid(at + ": expected \"ID@HOST:PORT\", got \"" +
                                                 text + "\"");
    Result<std::uint64_t> id = parse_u64(std::string_view(text).substr(0, sep));
    if (!id || *id == 0 || *id > engine::Limits::max_term) {
      return invalid(at + ": node id must be a positive whole number, got \"" +
                     text.substr(0, sep) + "\"");
    }
    Result<HostPort> hp = parse_host_port(std::string_view(text).substr(sep + 1));
    if (!hp) return invalid(at + ": " + hp.status().message());
    c.members.push_back({*id, *hp});
  }
  return {};
}

// [auth.roles] NAME = ["perm", ...]; [auth.clients] CLIENT = "role";
// [[auth.tokens]] name, sha256, role.
Status read_roles(TableReader& a, auth::AuthConfig& out) {
  Result<const toml::table*> roles = a.table("roles");
  if (!roles) return roles.status();
  for (const auto& [name, value] : **roles) {
    const std::string field = "auth.roles." + std::string(name.str());
    if (!value.is_array()) return invalid(field + ": expected a list of permissions");
    std::set<auth::Permission>& perms = out.custom_roles[std::string(name.str())];
    for (const toml::node& p : *value.as_array()) {
      std::optional<auth::Permission> perm;
      if (p.is_string()) perm = auth::parse_permission(**p.as_string());
      if (!perm) {
        std::string known;
        for (auth::Permission k : auth::all_permissions()) {
          known += (known.empty() ? "" : ", ") + std::string(auth::permission_name(k));
        }
        return invalid(field + ": unknown permission (known: " + known + ")");
      }
      perms.insert(*perm);
    }
  }
  return {};
}

Status read_tokens(TableReader& a, auth::AuthConfig& out) {
  const toml::node* n = a.get("tokens");
  if (n == nullptr) return {};
  if (!n->is_array_of_tables()) return invalid("auth.tokens: expected [[auth.tokens]] tables");
  const toml::array& list = *n->as_array();
  for (std::size_t i = 0; i < list.size(); ++i) {
    TableReader t(*list[i].as_table(), "auth.tokens[" + std::to_string(i) + "].");
    auth::StaticToken token;
    for (auto [key, dst] : {std::pair{"name", &token.name}, std::pair{"sha256", &token.sha256_hex},
                            std::pair{"role", &token.role}}) {
      if (Status s = t.read_string(key, *dst); !s) return s;
      if (!t.has(key)) return invalid(t.field(key) + ": missing");
    }
    if (Status s = t.no_unknown_keys(); !s) return s;
    out.tokens.push_back(std::move(token));
  }
  return {};
}

Status read_auth(TableReader& top, NodeConfig& c) {
  Result<const toml::table*> section = top.table("auth");
  if (!section) return section.status();
  TableReader a(**section, "auth.");
  if (Status s = read_roles(a, c.auth); !s) return s;
  Result<const toml::table*> clients = a.table("clients");
  if (!clients) return clients.status();
  for (const auto& [name, value] : **clients) {
    if (!value.is_string()) {
      return invalid("auth.clients." + std::string(name.str()) + ": expected a role name");
    }
    c.auth.client_roles[std::string(name.str())] = **value.as_string();
  }
  if (Status s = read_tokens(a, c.auth); !s) return s;
  if (Status s = a.no_unknown_keys(); !s) return s;
  return auth::validate(c.auth);
}

Status read_audit(TableReader& top, const std::filesystem::path& base, NodeConfig& c) {
  Result<const toml::table*> section = top.table("audit");
  if (!section) return section.status();
  TableReader a(**section, "audit.");
  if (Status s = a.read_path("secret_file", base, c.audit_secret_file); !s) return s;
  if (!a.has("secret_file")) {
    return invalid("audit.secret_file: missing (the cluster's audit secret, the same file on "
                   "every node; make one with `anya-ha audit init-secret FILE`)");
  }
  if (Status s = a.read_path("file", base, c.audit_file); !s) return s;
  if (!a.has("file")) c.audit_file = c.data_dir / "audit.log";
  return a.no_unknown_keys();
}

Status read_bitcoin(TableReader& top, NodeConfig& c) {
  Result<const toml::table*> section = top.table("bitcoin");
  if (!section) return section.status();
  TableReader b(**section, "bitcoin.");
  BitcoinConfig& out = c.bitcoin;
  if (Status s = b.read_string("chain_probe", out.chain_probe); !s) return s;
  if (b.has("chain_probe") && out.chain_probe.empty()) {
    return invalid("bitcoin.chain_probe: must not be empty (leave it out for no probe)");
  }
  if (Status s = b.read_u64("max_blocks_behind", out.max_blocks_behind); !s) return s;
  if (Status s = b.read_duration("chain_probe_interval", out.chain_probe_interval_ms); !s) {
    return s;
  }
  if (Status s = b.read_duration("chain_probe_timeout", out.chain_probe_timeout_ms); !s) {
    return s;
  }
  return b.no_unknown_keys();
}

Status validate_bitcoin(const BitcoinConfig& b) {
  if (b.chain_probe.size() > NodeConfigLimits::max_chain_probe_bytes) {
    return invalid("bitcoin.chain_probe: longer than " +
                   std::to_string(NodeConfigLimits::max_chain_probe_bytes) +
                   " bytes; put the command in a script");
  }
  if (b.chain_probe.find('\0') != std::string::npos) {
    return invalid("bitcoin.chain_probe: must not contain a NUL character");
  }
  if (b.max_blocks_behind > engine::kMaxBlocksBehind) {
    return invalid("bitcoin.max_blocks_behind: must be at most " +
                   std::to_string(engine::kMaxBlocksBehind));
  }
  if (b.chain_probe_interval_ms < NodeConfigLimits::min_chain_probe_interval_ms ||
      b.chain_probe_interval_ms > NodeConfigLimits::max_chain_probe_interval_ms) {
    return invalid("bitcoin.chain_probe_interval: must be between 10ms and 1h");
  }
  if (b.chain_probe_timeout_ms < NodeConfigLimits::min_chain_probe_timeout_ms ||
      b.chain_probe_timeout_ms > NodeConfigLimits::max_chain_probe_timeout_ms) {
    return invalid("bitcoin.chain_probe_timeout: must be between 10ms and 60s");
  }
  return {};
}

Status read_document(const toml::table& root, const std::filesystem::path& base, NodeConfig& c) {
  TableReader top(root, "");
  std::uint64_t id = 0;
  if (Status s = top.read_u64("node_id", id); !s) return s;
  if (!top.has("node_id")) return invalid("node_id: missing (a positive whole number)");
  c.node_id = id;
  if (Status s = top.read_string("cluster", c.cluster); !s) return s;
  if (!top.has("cluster")) return invalid("cluster: missing (the cluster's name)");
  if (Status s = top.read_path("data_dir", base, c.data_dir); !s) return s;
  if (!top.has("data_dir")) return invalid("data_dir: missing (where the node keeps its log)");

  Result<const toml::table*> peer = top.table("peer");
  if (!peer) return peer.status();
  TableReader p(**peer, "peer.");
  if (Status s = p.read_host_port("listen", c.peer_listen); !s) return s;
  if (!p.has("listen")) return invalid("peer.listen: missing (HOST:PORT for peer links)");
  c.peer_advertise = c.peer_listen;
  if (Status s = p.read_host_port("advertise", c.peer_advertise); !s) return s;
  if (Status s = p.no_unknown_keys(); !s) return s;

  Result<const toml::table*> admin = top.table("admin");
  if (!admin) return admin.status();
  TableReader a(**admin, "admin.");
  if (Status s = a.read_host_port("listen", c.admin_listen); !s) return s;
  if (!a.has("listen")) return invalid("admin.listen: missing (HOST:PORT for the admin API)");
  if (a.has("health_listen")) {
    c.health_listen.emplace();
    if (Status s = a.read_host_port("health_listen", *c.health_listen); !s) return s;
  }
  if (Status s = a.no_unknown_keys(); !s) return s;

  Result<const toml::table*> tls = top.table("tls");
  if (!tls) return tls.status();
  TableReader t(**tls, "tls.");
  for (auto [key, out] : {std::pair{"ca", &c.tls_ca}, std::pair{"cert", &c.tls_cert},
                          std::pair{"key", &c.tls_key}}) {
    if (Status s = t.read_path(key, base, *out); !s) return s;
    if (!t.has(key)) return invalid(t.field(key) + ": missing (a PEM file)");
  }
  if (Status s = t.read_path("crl", base, c.tls_crl); !s) return s;
  if (Status s = t.read_path("ca_key", base, c.tls_ca_key); !s) return s;
  if (Status s = t.no_unknown_keys(); !s) return s;
  if (Status s = read_auth(top, c); !s) return s;
  if (Status s = read_audit(top, base, c); !s) return s;

  Result<const toml::table*> raft = top.table("raft");
  if (!raft) return raft.status();
  TableReader r(**raft, "raft.");
  if (Status s = r.read_duration("heartbeat_interval", c.heartbeat_interval_ms); !s) return s;
  if (Status s = r.read_duration("election_timeout", c.election_timeout_ms); !s) return s;
  if (r.has("election_jitter")) {
    std::uint64_t jitter = 0;
    if (Status s = r.read_duration("election_jitter", jitter); !s) return s;
    c.election_jitter_ms = jitter;
  }
  if (Status s = r.read_bool("pre_vote", c.pre_vote); !s) return s;
  if (Status s = r.read_bool("check_quorum", c.check_quorum); !s) return s;
  if (Status s = r.read_duration("config_txn_deadline", c.config_txn_deadline_ms); !s) return s;
  std::string reads = engine::read_mode_name(c.reads);
  if (Status s = r.read_string("reads", reads); !s) return s;
  Result<engine::ReadMode> mode = engine::parse_read_mode(reads);
  if (!mode) return invalid("raft.reads: " + mode.status().message());
  c.reads = *mode;
  if (const toml::node* n = r.get("max_clock_drift")) {
    const std::optional<double> ratio = n->value<double>();
    if (!ratio || !(*ratio >= 0.0) || *ratio >= 0.5) {
      return invalid("raft.max_clock_drift: expected a ratio from 0 to below 0.5, e.g. 0.05");
    }
    c.max_clock_drift_ppm = static_cast<std::uint32_t>(*ratio * 1e6 + 0.5);
  }
  if (Status s = r.no_unknown_keys(); !s) return s;

  Result<const toml::table*> storage = top.table("storage");
  if (!storage) return storage.status();
  TableReader st(**storage, "storage.");
  if (Status s = st.read_bool("fsync", c.fsync); !s) return s;
  if (Status s = st.read_size("segment_size", c.segment_bytes); !s) return s;
  if (Status s = st.read_u64("snapshot_entries", c.snapshot_entries); !s) return s;
  if (Status s = st.no_unknown_keys(); !s) return s;

  Result<const toml::table*> discovery = top.table("discovery");
  if (!discovery) return discovery.status();
  TableReader d(**discovery, "discovery.");
  std::string method = "static";
  if (Status s = d.read_string("method", method); !s) return s;
  if (method != "static") {
    return invalid("discovery.method: \"" + method + "\" is not supported; use \"static\"");
  }
  if (Status s = read_members(d, c); !s) return s;
  if (Status s = d.read_bool("join", c.join); !s) return s;
  if (Status s = d.no_unknown_keys(); !s) return s;

  if (Status s = read_bitcoin(top, c); !s) return s;

  Result<const toml::table*> log = top.table("log");
  if (!log) return log.status();
  TableReader l(**log, "log.");
  if (Status s = l.read_string("level", c.log_level); !s) return s;
  if (Status s = l.no_unknown_keys(); !s) return s;
  return top.no_unknown_keys();
}

Status validate_addresses(const NodeConfig& c) {
  if (c.admin_listen.port == c.peer_listen.port && c.admin_listen.host == c.peer_listen.host) {
    return invalid("admin.listen: must differ from peer.listen (" + c.peer_listen.to_string() +
                   "); the admin API never shares the peer port");
  }
  std::set<engine::NodeId> ids;
  std::set<std::string> addresses;
  for (const StaticMember& m : c.members) {
    if (!ids.insert(m.id).second) {
      return invalid("discovery.members: node " + std::to_string(m.id) + " is listed twice");
    }
    if (!addresses.insert(m.peer_address.to_string()).second) {
      return invalid("discovery.members: address " + m.peer_address.to_string() +
                     " is listed twice");
    }
    if (m.id == c.node_id && m.peer_address != c.peer_advertise) {
      return invalid("discovery.members: this node (" + std::to_string(c.node_id) +
                     ") is listed at " + m.peer_address.to_string() +
                     " but peer.advertise is " + c.peer_advertise.to_string());
    }
  }
  if (!c.join && ids.count(c.node_id) == 0) {
    return invalid("discovery.members: must include this node (" + std::to_string(c.node_id) +
                   ") unless discovery.join = true");
  }
  if (c.join && !c.members.empty() && ids.count(c.node_id) != 0) {
    return invalid("discovery.join: a joining node must not be one of discovery.members");
  }
  return {};
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status(invalid("\"" + std::string(text) + "\" is not HOST:PORT"));
  }
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.find(':') != std::string::npos || hp.host.front() == '[') {
    return Status(invalid("\"" + std::string(text) + "\": IPv6 addresses are not supported"));
  }
  for (char ch : hp.host) {
    if (!is_name_char(ch)) {
      return Status(invalid("\"" + std::string(text) + "\": bad character in host"));
    }
  }
  Result<std::uint64_t> port = parse_u64(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) {
    return Status(invalid("\"" + std::string(text) + "\": port must be 1 to 65535"));
  }
  hp.port = static_cast<std::uint16_t>(*port);
  return hp;
}

Result<std::uint64_t> parse_duration_ms(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
    digits++;
  }
  if (digits == 0) {
    return Status(invalid("\"" + std::string(text) + "\" is not a duration like \"50ms\""));
  }
  Result<std::uint64_t> value = parse_u64(text.substr(0, digits));
  if (!value) return value.status();
  const std::string_view unit = text.substr(digits);
  std::uint64_t per_unit_us = 0;
  if (unit == "us") per_unit_us = 1;
  else if (unit == "ms") per_unit_us = 1000;
  else if (unit == "s") per_unit_us = 1'000'000;
  else if (unit == "m") per_unit_us = 60'000'000;
  else if (unit == "h") per_unit_us = 3'600'000'000;
  else if (unit.empty() && *value == 0) return std::uint64_t{0};
  else {
    return Status(invalid("\"" + std::string(text) +
                          "\" needs a unit: us, ms, s, m or h (e.g. \"50ms\")"));
  }
  constexpr std::uint64_t kMaxMs = std::uint64_t{1} << 40;  // ~35 years; plenty
  if (*value > kMaxMs * 1000 / per_unit_us) {
    return Status(invalid("\"" + std::string(text) + "\" is too long"));
  }
  return (*value * per_unit_us + 999) / 1000;
}

Result<std::uint64_t> parse_size_bytes(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
    digits++;
  }
  if (digits == 0) {
    return Status(invalid("\"" + std::string(text) + "\" is not a size like \"64MiB\""));
  }
  Result<std::uint64_t> value = parse_u64(text.substr(0, digits));
  if (!value) return value.status();
  const std::string_view unit = text.substr(digits);
  unsigned shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "KiB") shift = 10;
  else if (unit == "MiB") shift = 20;
  else if (unit == "GiB") shift = 30;
  else {
    return Status(invalid("\"" + std::string(text) + "\": unit must be B, KiB, MiB or GiB"));
  }
  if (*value > (std::uint64_t{1} << (62 - shift))) {
    return Status(invalid("\"" + std::string(text) + "\" is too large"));
  }
  return *value << shift;
}

std::string format_duration_ms(std::uint64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_size_bytes(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

std::uint64_t NodeConfig::cluster_id() const {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char ch : cluster) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h == 0 ? 1 : h;
}

Status validate(const NodeConfig& c) {
  if (c.node_id == engine::kNoNode || c.node_id > engine::Limits::max_term) {
    return invalid("node_id: must be a positive whole number below 2^62");
  }
  if (c.cluster.empty() || c.cluster.size() > NodeConfigLimits::max_cluster_name_bytes) {
    return invalid("cluster: must be 1 to 64 characters");
  }
  for (char ch : c.cluster) {
    if (!is_name_char(ch)) return invalid("cluster: only letters, digits, '.', '_' and '-'");
  }
  if (c.heartbeat_interval_ms < NodeConfigLimits::min_heartbeat_ms ||
      c.heartbeat_interval_ms > NodeConfigLimits::max_heartbeat_ms) {
    return invalid("raft.heartbeat_interval: must be between 1ms and 10s");
  }
  if (c.election_timeout_ms > NodeConfigLimits::max_election_timeout_ms) {
    return invalid("raft.election_timeout: must be at most 60s");
  }
  if (c.election_timeout_ms < NodeConfigLimits::min_election_heartbeats * c.heartbeat_interval_ms) {
    return invalid("raft.election_timeout: must be at least 3 heartbeat intervals (" +
                   format_duration_ms(3 * c.heartbeat_interval_ms) + ")");
  }
  if (c.election_jitter_ms &&
      (*c.election_jitter_ms == 0 || *c.election_jitter_ms > c.election_timeout_ms)) {
    return invalid("raft.election_jitter: must be between 1ms and raft.election_timeout (" +
                   format_duration_ms(c.election_timeout_ms) + ")");
  }
  if (c.config_txn_deadline_ms < c.election_timeout_ms) {
    return invalid("raft.config_txn_deadline: must be at least one election timeout (" +
                   format_duration_ms(c.election_timeout_ms) + ")");
  }
  if (c.segment_bytes < NodeConfigLimits::min_segment_bytes ||
      c.segment_bytes > NodeConfigLimits::max_segment_bytes) {
    return invalid("storage.segment_size: must be between 1MiB and 1GiB");
  }
  if (c.snapshot_entries == 0) return invalid("storage.snapshot_entries: must be at least 1");
  if (Status s = validate_bitcoin(c.bitcoin); !s) return s;
  if (c.log_level != "error" && c.log_level != "warn" && c.log_level != "info" &&
      c.log_level != "debug") {
    return invalid("log.level: must be error, warn, info or debug");
  }
  return validate_addresses(c);
}

Result<NodeConfig> parse_node_config(std::string_view text, const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  if (text.size() > NodeConfigLimits::max_file_bytes) {
    return Status(invalid(name + ": larger than 1 MiB; is this the right file?"));
  }
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << name << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": " << e.description();
    return Status(invalid(out.str()));
  }
  NodeConfig config;
  const std::filesystem::path base = file.has_parent_path() ? file.parent_path() : ".";
  if (Status s = read_document(root, base, config); !s) {
    return Status(invalid(name + ": " + s.message()));
  }
  if (Status s = validate(config); !s) return Status(invalid(name + ": " + s.message()));
  return config;
}

Result<NodeConfig> load_node_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status(invalid(file.string() + ": cannot open the configuration file"));
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > NodeConfigLimits::max_file_bytes) {
      return Status(invalid(file.string() + ": larger than 1 MiB; is this the right file?"));
    }
  }
  return parse_node_config(text, file);
}

namespace {
// A TOML basic string: quotes, backslashes and control characters escaped, so any path or
// name (even one with a carriage return in it) renders to a file that parses back the same.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}
std::string relative_to(const std::filesystem::path& p, const std::filesystem::path& dir) {
  std::filesystem::path rel = p.lexically_relative(dir);
  if (!rel.empty() && *rel.begin() != "..") return rel.string();
  return p.string();
}

void render_auth(std::ostream& out, const auth::AuthConfig& a) {
  out << "\n[auth.clients]\n";
  for (const auto& [client, role] : a.client_roles) {
    out << quoted(client) << " = " << quoted(role) << "\n";
  }
  out << "\n[auth.roles]\n";
  for (const auto& [name, perms] : a.custom_roles) {
    out << quoted(name) << " = [";
    const char* sep = "";
    for (auth::Permission p : perms) {
      out << sep << quoted(auth::permission_name(p));
      sep = ", ";
    }
    out << "]\n";
  }
  for (const auth::StaticToken& t : a.tokens) {
    out << "\n[[auth.tokens]]\nname = " << quoted(t.name)
        << "\nsha256 = " << quoted(t.sha256_hex) << "\nrole = " << quoted(t.role) << "\n";
  }
}

void render_bitcoin(std::ostream& out, const BitcoinConfig& b) {
  out << "\n[bitcoin]\n";
  if (!b.chain_probe.empty()) out << "chain_probe = " << quoted(b.chain_probe) << "\n";
  out << "max_blocks_behind = " << b.max_blocks_behind
      << "\nchain_probe_interval = " << quoted(format_duration_ms(b.chain_probe_interval_ms))
      << "\nchain_probe_timeout = " << quoted(format_duration_ms(b.chain_probe_timeout_ms))
      << "\n";
}

}  // namespace

std::string render_node_config(const NodeConfig& c, const std::filesystem::path& dir) {
  std::ostringstream out;
  out << "# anya-ha node configuration; every field: docs/configuration.md\n"
      << "node_id = " << c.node_id << "\n"
      << "cluster = " << quoted(c.cluster) << "\n"
      << "data_dir = " << quoted(relative_to(c.data_dir, dir)) << "\n\n"
      << "[peer]\nlisten = " << quoted(c.peer_listen.to_string()) << "\n"
      << "advertise = " << quoted(c.peer_advertise.to_string()) << "\n\n"
      << "[admin]\nlisten = " << quoted(c.admin_listen.to_string()) << "\n";
  if (c.health_listen) out << "health_listen = " << quoted(c.health_listen->to_string()) << "\n";
  out << "\n[tls]\nca = " << quoted(relative_to(c.tls_ca, dir)) << "\n"
      << "cert = " << quoted(relative_to(c.tls_cert, dir)) << "\n"
      << "key = " << quoted(relative_to(c.tls_key, dir)) << "\n";
  if (!c.tls_crl.empty()) out << "crl = " << quoted(relative_to(c.tls_crl, dir)) << "\n";
  if (!c.tls_ca_key.empty()) {
    out << "ca_key = " << quoted(relative_to(c.tls_ca_key, dir)) << "\n";
  }
  out << "\n"
      << "[raft]\nheartbeat_interval = " << quoted(format_duration_ms(c.heartbeat_interval_ms))
      << "\nelection_timeout = " << quoted(format_duration_ms(c.election_timeout_ms))
      << "\nelection_jitter = " << quoted(format_duration_ms(c.effective_election_jitter_ms()))
      << "\npre_vote = " << (c.pre_vote ? "true" : "false")
      << "\ncheck_quorum = " << (c.check_quorum ? "true" : "false")
      << "\nconfig_txn_deadline = " << quoted(format_duration_ms(c.config_txn_deadline_ms))
      << "\nreads = " << quoted(engine::read_mode_name(c.reads))
      << "\nmax_clock_drift = " << c.max_clock_drift_ppm / 1e6
      << "\n\n[storage]\nfsync = " << (c.fsync ? "true" : "false")
      << "\nsegment_size = " << quoted(format_size_bytes(c.segment_bytes))
      << "\nsnapshot_entries = " << c.snapshot_entries << "\n";
  render_bitcoin(out, c.bitcoin);
  out << "\n[discovery]\nmethod = \"static\"\n"
      << "join = " << (c.join ? "true" : "false") << "\nmembers = [";
  for (std::size_t i = 0; i < c.members.size(); i++) {
    out << (i ? ", " : "")
        << quoted(std::to_string(c.members[i].id) + "@" + c.members[i].peer_address.to_string());
  }
  out << "]\n\n[log]\nlevel = " << quoted(c.log_level) << "\n\n[audit]\nfile = "
      << quoted(relative_to(c.audit_file, dir))
      << "\nsecret_file = " << quoted(relative_to(c.audit_secret_file, dir)) << "\n";
  render_auth(out, c.auth);
  return out.str();
}

}  // namespace anya::transport

#include "transport/config/node_config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
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

// Letters, digits, '-' and '_' in labels of 1 to 63 bytes, at most 253 bytes in all; a trailing
// dot is allowed. Underscores appear in SRV service labels ("_anya-ha._tcp").
bool valid_dns_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > DiscoveryConfigLimits::max_dns_name_bytes) return false;
  std::size_t label = 0;
  for (char ch : name) {
    if (ch == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (std::isalnum(static_cast<unsigned char>(ch)) == 0 && ch != '-' && ch != '_') return false;
    if (++label > 63) return false;
  }
  return label != 0;
}

// A lower-case RFC 1123 label: what Kubernetes accepts as a namespace or service name.
bool valid_k8s_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

// Dotted-quad IPv4 ("239.255.42.99"), each part 0..255 without leading zeros.
std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view text) {
  std::array<std::uint8_t, 4> out{};
  for (std::size_t i = 0; i < 4; i++) {
    const std::size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos || dot == 0 || dot > 3) return std::nullopt;
    const std::string_view part = text.substr(0, dot);
    if (part.size() > 1 && part.front() == '0') return std::nullopt;
    Result<std::uint64_t> n = parse_u64(part);
    if (!n || *n > 255) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(*n);
    text = i < 3 ? text.substr(dot + 1) : std::string_view();
  }
  return out;
}

bool known_discovery_method(std::string_view name) {
  return name == "static" || name == "dns_srv" || name == "kubernetes" || name == "multicast";
}

Status read_string_list(TableReader& t, std::string_view key, std::vector<std::string>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return {};
  if (!n->is_array()) return invalid(t.field(key) + ": expected a list of strings");
  out.clear();
  for (const toml::node& item : *n->as_array()) {
    if (!item.is_string()) return invalid(t.field(key) + ": expected a list of strings");
    out.push_back(**item.as_string());
  }
  return {};
}

Status read_dns_srv(TableReader& d, DnsSrvDiscoveryConfig& out) {
  Result<const toml::table*> section = d.table("dns_srv");
  if (!section) return section.status();
  TableReader s(**section, "discovery.dns_srv.");
  if (Status st = s.read_string("domain", out.domain); !st) return st;
  if (Status st = s.read_string("service", out.service); !st) return st;
  if (s.has("nameserver")) {
    out.nameserver.emplace();
    if (Status st = s.read_host_port("nameserver", *out.nameserver); !st) return st;
  }
  if (Status st = s.read_duration("min_refresh", out.min_refresh_ms); !st) return st;
  if (Status st = s.read_duration("max_refresh", out.max_refresh_ms); !st) return st;
  if (Status st = s.read_duration("timeout", out.timeout_ms); !st) return st;
  return s.no_unknown_keys();
}

Status read_kubernetes(TableReader& d, const std::filesystem::path& base,
                       KubernetesDiscoveryConfig& out) {
  Result<const toml::table*> section = d.table("kubernetes");
  if (!section) return section.status();
  TableReader k(**section, "discovery.kubernetes.");
  if (Status st = k.read_string("api_server", out.api_server); !st) return st;
  if (Status st = k.read_string("namespace", out.namespace_name); !st) return st;
  if (Status st = k.read_string("service", out.service); !st) return st;
  if (Status st = k.read_path("token_file", base, out.token_file); !st) return st;
  if (Status st = k.read_path("ca_file", base, out.ca_file); !st) return st;
  if (Status st = k.read_string("port_name", out.port_name); !st) return st;
  std::string mode = out.mode == KubernetesDiscoveryConfig::Mode::watch ? "watch" : "poll";
  if (Status st = k.read_string("mode", mode); !st) return st;
  if (mode != "poll" && mode != "watch") {
    return invalid("discovery.kubernetes.mode: \"" + mode + "\": expected \"poll\" or \"watch\"");
  }
  out.mode = mode == "watch" ? KubernetesDiscoveryConfig::Mode::watch
                             : KubernetesDiscoveryConfig::Mode::poll;
  if (Status st = k.read_duration("interval", out.interval_ms); !st) return st;
  if (Status st = k.read_duration("timeout", out.timeout_ms); !st) return st;
  if (Status st = k.read_u64("node_id_offset", out.node_id_offset); !st) return st;
  return k.no_unknown_keys();
}

Status read_multicast(TableReader& d, const std::filesystem::path& base,
                      MulticastDiscoveryConfig& out) {
  Result<const toml::table*> section = d.table("multicast");
  if (!section) return section.status();
  TableReader m(**section, "discovery.multicast.");
  if (Status st = m.read_string("group", out.group); !st) return st;
  std::uint64_t port = out.port;
  if (Status st = m.read_u64("port", port); !st) return st;
  if (port == 0 || port > 65535) return invalid("discovery.multicast.port: must be 1 to 65535");
  out.port = static_cast<std::uint16_t>(port);
  if (Status st = m.read_string("interface", out.interface); !st) return st;
  if (Status st = m.read_duration("interval", out.interval_ms); !st) return st;
  if (Status st = m.read_path("secret_file", base, out.secret_file); !st) return st;
  if (Status st = m.read_duration("replay_window", out.replay_window_ms); !st) return st;
  return m.no_unknown_keys();
}

// [discovery]: method (one, the older spelling) or methods (a list), the static members, join,
// and one sub-table per method. A sub-table of a method not in the list is refused: it would be
// silently ignored otherwise.
Status read_discovery(TableReader& top, const std::filesystem::path& base, NodeConfig& c) {
  Result<const toml::table*> discovery = top.table("discovery");
  if (!discovery) return discovery.status();
  TableReader d(**discovery, "discovery.");
  if (d.has("method") && d.has("methods")) {
    return invalid("discovery.method: give either method or methods, not both");
  }
  if (d.has("method")) {
    std::string method;
    if (Status s = d.read_string("method", method); !s) return s;
    if (!known_discovery_method(method)) {
      return invalid("discovery.method: \"" + method + "\" is not supported; use static, "
                     "dns_srv, kubernetes or multicast");
    }
    c.discovery.methods = {method};
  }
  if (Status s = read_string_list(d, "methods", c.discovery.methods); !s) return s;
  if (Status s = read_members(d, c); !s) return s;
  if (Status s = d.read_bool("join", c.join); !s) return s;
  if (Status s = read_dns_srv(d, c.discovery.dns_srv); !s) return s;
  if (Status s = read_kubernetes(d, base, c.discovery.kubernetes); !s) return s;
  if (Status s = read_multicast(d, base, c.discovery.multicast); !s) return s;
  for (const char* method : {"dns_srv", "kubernetes", "multicast"}) {
    if (d.has(method) && !c.discovery.uses(method)) {
      return invalid(std::string("discovery.") + method + ": configured but \"" + method +
                     "\" is not in discovery.methods");
    }
  }
  return d.no_unknown_keys();
}

Status check_range_ms(const std::string& field, std::uint64_t ms, std::uint64_t min_ms,
                      std::uint64_t max_ms) {
  if (ms >= min_ms && ms <= max_ms) return {};
  return invalid(field + ": must be between " + format_duration_ms(min_ms) + " and " +
                 format_duration_ms(max_ms));
}

Status validate_dns_srv(const DnsSrvDiscoveryConfig& s) {
  using L = DiscoveryConfigLimits;
  if (s.domain.empty()) {
    return invalid("discovery.dns_srv.domain: missing (the SRV name is SERVICE.DOMAIN)");
  }
  if (!valid_dns_name(s.domain)) return invalid("discovery.dns_srv.domain: not a DNS name");
  if (!valid_dns_name(s.service) || s.service.front() != '_') {
    return invalid("discovery.dns_srv.service: expected a service label like \"_anya-ha._tcp\"");
  }
  if (s.service.size() + 1 + s.domain.size() > L::max_dns_name_bytes) {
    return invalid("discovery.dns_srv.domain: SERVICE.DOMAIN is longer than 253 bytes");
  }
  if (s.nameserver && !parse_ipv4(s.nameserver->host)) {
    return invalid("discovery.dns_srv.nameserver: expected an IPv4 address and port, like "
                   "\"127.0.0.1:53\"");
  }
  if (Status st = check_range_ms("discovery.dns_srv.min_refresh", s.min_refresh_ms,
                                 L::min_refresh_ms, L::max_refresh_ms); !st) {
    return st;
  }
  if (Status st = check_range_ms("discovery.dns_srv.max_refresh", s.max_refresh_ms,
                                 s.min_refresh_ms, L::max_refresh_ms); !st) {
    return invalid(st.message() + " (from discovery.dns_srv.min_refresh)");
  }
  return check_range_ms("discovery.dns_srv.timeout", s.timeout_ms, L::min_timeout_ms,
                        L::max_timeout_ms);
}

Status validate_kubernetes(const KubernetesDiscoveryConfig& k) {
  using L = DiscoveryConfigLimits;
  if (k.service.empty()) {
    return invalid("discovery.kubernetes.service: missing (the headless service's name)");
  }
  if (!valid_k8s_name(k.service)) {
    return invalid("discovery.kubernetes.service: not a Kubernetes name (a-z, 0-9, '-')");
  }
  if (!k.namespace_name.empty() && !valid_k8s_name(k.namespace_name)) {
    return invalid("discovery.kubernetes.namespace: not a Kubernetes name (a-z, 0-9, '-')");
  }
  if (!k.api_server.empty()) {
    const std::string_view scheme = "https://";
    if (k.api_server.rfind(scheme, 0) != 0 ||
        !parse_host_port(std::string_view(k.api_server).substr(scheme.size()))) {
      return invalid("discovery.kubernetes.api_server: expected https://HOST:PORT");
    }
  }
  if (k.port_name.size() > 63) return invalid("discovery.kubernetes.port_name: too long");
  if (k.node_id_offset > L::max_node_id_offset) {
    return invalid("discovery.kubernetes.node_id_offset: must be at most 1000000");
  }
  if (Status st = check_range_ms("discovery.kubernetes.interval", k.interval_ms,
                                 L::min_refresh_ms, L::max_interval_ms); !st) {
    return st;
  }
  return check_range_ms("discovery.kubernetes.timeout", k.timeout_ms, 100, L::max_timeout_ms);
}

Status validate_multicast(const MulticastDiscoveryConfig& m) {
  using L = DiscoveryConfigLimits;
  const std::optional<std::array<std::uint8_t, 4>> group = parse_ipv4(m.group);
  if (!group || (*group)[0] < 224 || (*group)[0] > 239) {
    return invalid("discovery.multicast.group: expected an IPv4 multicast address "
                   "(224.0.0.0 to 239.255.255.255), like \"239.255.42.99\"");
  }
  if (!parse_ipv4(m.interface)) {
    return invalid("discovery.multicast.interface: expected an IPv4 address (0.0.0.0: any)");
  }
  if (m.secret_file.empty()) {
    return invalid("discovery.multicast.secret_file: missing (the cluster's announcement key, "
                   "the same file on every node)");
  }
  if (Status st = check_range_ms("discovery.multicast.interval", m.interval_ms,
                                 L::min_interval_ms, L::max_interval_ms); !st) {
    return st;
  }
  return check_range_ms("discovery.multicast.replay_window", m.replay_window_ms,
                        L::min_replay_window_ms, L::max_replay_window_ms);
}

Status validate_discovery(const DiscoveryConfig& d) {
  if (d.methods.empty()) return invalid("discovery.methods: must name at least one method");
  std::set<std::string> seen;
  for (const std::string& m : d.methods) {
    if (!known_discovery_method(m)) {
      return invalid("discovery.methods: \"" + m + "\" is not supported; use static, dns_srv, "
                     "kubernetes or multicast");
    }
    if (!seen.insert(m).second) return invalid("discovery.methods: \"" + m + "\" is listed twice");
  }
  if (d.uses("dns_srv")) {
    if (Status s = validate_dns_srv(d.dns_srv); !s) return s;
  }
  if (d.uses("kubernetes")) {
    if (Status s = validate_kubernetes(d.kubernetes); !s) return s;
  }
  if (d.uses("multicast")) {
    if (Status s = validate_multicast(d.multicast); !s) return s;
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

// ---- [health] ---------------------------------------------------------------------------------

// A number written as an integer or a float ("90" or "92.5").
Status read_number(TableReader& t, std::string_view key, std::optional<double>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return {};
  if (n->is_integer()) {
    out = static_cast<double>(**n->as_integer());
  } else if (n->is_floating_point()) {
    out = **n->as_floating_point();
  } else {
    return invalid(t.field(key) + ": expected a number, e.g. 90");
  }
  return {};
}

Status read_u32(TableReader& t, std::string_view key, std::uint32_t& out) {
  std::uint64_t value = out;
  if (Status s = t.read_u64(key, value); !s) return s;
  if (value > std::numeric_limits<std::uint32_t>::max()) {
    return invalid(t.field(key) + ": too large");
  }
  out = static_cast<std::uint32_t>(value);
  return {};
}

Status read_command(TableReader& t, std::vector<std::string>& out) {
  const toml::node* n = t.get("command");
  if (n == nullptr) {
    return invalid(t.field("command") + ": missing (the program and its arguments, e.g. "
                                        "[\"pgrep\", \"bitcoind\"])");
  }
  if (!n->is_array()) {
    return invalid(t.field("command") + ": expected a list like [\"/usr/bin/check\", \"-q\"] "
                                        "(no shell: write [\"sh\", \"-c\", \"...\"] for one)");
  }
  for (const toml::node& item : *n->as_array()) {
    if (!item.is_string()) return invalid(t.field("command") + ": expected a list of strings");
    out.push_back(**item.as_string());
  }
  return {};
}

// The keys that belong to one probe type; elsewhere they are refused, naming their type.
Status read_probe_target(TableReader& t, const std::filesystem::path& base,
                         HealthProbeConfig& p) {
  using engine::health::ProbeKind;
  const std::pair<const char*, ProbeKind> owned[] = {
      {"url", ProbeKind::http}, {"expect_status", ProbeKind::http}, {"ca_file", ProbeKind::http},
      {"address", ProbeKind::tcp}, {"command", ProbeKind::exec}};
  for (const auto& [key, owner] : owned) {
    if (owner != p.spec.kind && t.has(key)) {
      return invalid(t.field(key) + ": only for type = \"" +
                     engine::health::probe_kind_name(owner) + "\"");
    }
  }
  switch (p.spec.kind) {
    case ProbeKind::http: {
      std::string url;
      if (Status s = t.read_string("url", url); !s) return s;
      if (!t.has("url")) return invalid(t.field("url") + ": missing (http://HOST:PORT/PATH)");
      Result<ProbeUrl> parsed = parse_probe_url(url);
      if (!parsed) return invalid(t.field("url") + ": " + parsed.status().message());
      p.url = *parsed;
      if (Status s = read_u32(t, "expect_status", p.expect_status); !s) return s;
      return t.read_path("ca_file", base, p.ca_file);
    }
    case ProbeKind::tcp:
      if (!t.has("address")) return invalid(t.field("address") + ": missing (HOST:PORT)");
      return t.read_host_port("address", p.address);
    case ProbeKind::exec:
      return read_command(t, p.command);
    case ProbeKind::callback:
      break;
  }
  ANYA_ASSERT(false);  // read_probe refuses callback probes in the file
  return {};
}

Status read_probe(const toml::table& table, std::size_t index, const std::filesystem::path& base,
                  HealthProbeConfig& p) {
  TableReader t(table, "health.probe[" + std::to_string(index) + "].");
  if (Status s = t.read_string("name", p.spec.name); !s) return s;
  if (!t.has("name")) return invalid(t.field("name") + ": missing (e.g. \"signer-http\")");
  std::string type;
  if (Status s = t.read_string("type", type); !s) return s;
  if (!t.has("type")) return invalid(t.field("type") + ": missing (http, tcp or exec)");
  const std::optional<engine::health::ProbeKind> kind = engine::health::parse_probe_kind(type);
  if (kind == engine::health::ProbeKind::callback) {
    return invalid(t.field("type") + ": callback probes are registered by a program that "
                                     "embeds the node (ClusterManager::add_health_check)");
  }
  if (!kind) return invalid(t.field("type") + ": \"" + type + "\": expected http, tcp or exec");
  p.spec.kind = *kind;
  if (Status s = t.read_duration("interval", p.spec.interval_ms); !s) return s;
  p.spec.timeout_ms = std::min(HealthConfigLimits::default_probe_timeout_ms,
                               p.spec.interval_ms / 2);
  if (Status s = t.read_duration("timeout", p.spec.timeout_ms); !s) return s;
  if (Status s = read_u32(t, "fall", p.spec.fall); !s) return s;
  if (Status s = read_u32(t, "rise", p.spec.rise); !s) return s;
  if (Status s = read_u32(t, "weight", p.spec.weight); !s) return s;
  if (Status s = read_probe_target(t, base, p); !s) return s;
  return t.no_unknown_keys();
}

Status read_health_limits(TableReader& h, engine::health::ResourceLimits& l) {
  if (Status s = read_number(h, "max_cpu_percent", l.max_cpu_percent); !s) return s;
  if (Status s = read_number(h, "max_memory_percent", l.max_memory_percent); !s) return s;
  if (Status s = read_number(h, "min_disk_free_percent", l.min_disk_free_percent); !s) return s;
  if (h.has("min_disk_free")) {
    std::uint64_t bytes = 0;
    if (Status s = h.read_size("min_disk_free", bytes); !s) return s;
    l.min_disk_free_bytes = bytes;
  }
  return read_number(h, "max_fd_percent", l.max_fd_percent);
}

// [health] and its [[health.probe]] tables. Cross-field rules are validate_health's.
Status read_health(TableReader& top, const std::filesystem::path& base, NodeConfig& c) {
  Result<const toml::table*> section = top.table("health");
  if (!section) return section.status();
  TableReader h(**section, "health.");
  HealthConfig& out = c.health;
  std::string aggregate = engine::health::aggregation_text(out.aggregate);
  if (Status s = h.read_string("aggregate", aggregate); !s) return s;
  Result<engine::health::Aggregation> rule =
      engine::health::parse_aggregation(aggregate, "health.aggregate");
  if (!rule) return rule.status();
  out.aggregate = *rule;
  if (Status s = h.read_duration("resource_interval", out.resource_interval_ms); !s) return s;
  if (Status s = h.read_duration("window", out.window_ms); !s) return s;
  if (Status s = read_u32(h, "resource_fall", out.resource_fall); !s) return s;
  if (Status s = read_u32(h, "resource_rise", out.resource_rise); !s) return s;
  if (Status s = read_health_limits(h, out.limits); !s) return s;
  if (const toml::node* n = h.get("probe")) {
    if (!n->is_array_of_tables()) return invalid("health.probe: expected [[health.probe]] tables");
    const toml::array& list = *n->as_array();
    if (list.size() > engine::health::ProbeLimits::max_probes) {
      return invalid("health.probe: at most " +
                     std::to_string(engine::health::ProbeLimits::max_probes) + " probes (" +
                     std::to_string(list.size()) + " given)");
    }
    for (std::size_t i = 0; i < list.size(); i++) {
      HealthProbeConfig probe;
      if (Status s = read_probe(*list[i].as_table(), i, base, probe); !s) return s;
      out.probes.push_back(std::move(probe));
    }
  }
  return h.no_unknown_keys();
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

  if (Status s = read_discovery(top, base, c); !s) return s;

  if (Status s = read_bitcoin(top, c); !s) return s;
  if (Status s = read_health(top, base, c); !s) return s;

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

// ---- [health] ---------------------------------------------------------------------------------

Result<ProbeUrl> parse_probe_url(std::string_view text) {
  const auto bad = [text](const std::string& why) {
    return Status(invalid("\"" + std::string(text) + "\": " + why));
  };
  if (text.size() > HealthConfigLimits::max_url_bytes) return bad("longer than 2048 bytes");
  ProbeUrl u;
  std::string_view rest;
  if (text.rfind("http://", 0) == 0) {
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    u.https = true;
    rest = text.substr(8);
  } else {
    return bad("expected http://HOST[:PORT][/PATH] or https://...");
  }
  const std::size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  const std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("user@host is not supported");
  if (target.find('#') != std::string_view::npos) return bad("a fragment (#...) is never sent");
  if (!authority.empty() && authority.front() == '[') return bad("IPv6 is not supported yet");
  const std::size_t colon = authority.rfind(':');
  u.host = std::string(authority.substr(0, colon));
  if (u.host.empty() || !std::all_of(u.host.begin(), u.host.end(), is_name_char)) {
    return bad("expected a host name or an IPv4 address after the scheme");
  }
  u.port = u.https ? 443 : 80;
  if (colon != std::string_view::npos) {
    Result<std::uint64_t> port = parse_u64(authority.substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) return bad("port must be 1 to 65535");
    u.port = static_cast<std::uint16_t>(*port);
  }
  u.target = target.empty() ? "/" : target.front() == '?' ? "/" + std::string(target)
                                                          : std::string(target);
  for (char ch : u.target) {
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7F) {
      return bad("the path has a space or a control character; percent-encode it");
    }
  }
  return u;
}

std::string ProbeUrl::to_string() const {
  return std::string(https ? "https://" : "http://") + host + ":" + std::to_string(port) + target;
}

engine::health::HealthPolicy HealthConfig::policy() const {
  engine::health::HealthPolicy p;
  for (const HealthProbeConfig& probe : probes) p.probes.push_back(probe.spec);
  p.aggregation = aggregate;
  p.limits = limits;
  p.resource_fall = resource_fall;
  p.resource_rise = resource_rise;
  p.window_ms = window_ms;
  return p;
}

namespace {

Status validate_command(const std::vector<std::string>& argv, const std::string& field) {
  if (argv.empty()) return invalid(field + ": must name a program");
  if (argv.size() > HealthConfigLimits::max_command_args) {
    return invalid(field + ": more than " +
                   std::to_string(HealthConfigLimits::max_command_args) + " arguments");
  }
  if (argv[0].empty()) return invalid(field + "[0]: must not be empty");
  for (std::size_t i = 0; i < argv.size(); i++) {
    const std::string at = field + "[" + std::to_string(i) + "]";
    if (argv[i].size() > HealthConfigLimits::max_command_arg_bytes) {
      return invalid(at + ": longer than 4096 bytes; put the command in a script");
    }
    if (argv[i].find('\0') != std::string::npos) {
      return invalid(at + ": must not contain a NUL character");
    }
  }
  return {};
}

Status validate_probe_target(const HealthProbeConfig& p, const std::string& prefix) {
  using engine::health::ProbeKind;
  switch (p.spec.kind) {
    case ProbeKind::http:
      if (p.url.host.empty() || p.url.port == 0) return invalid(prefix + "url: missing");
      if (p.expect_status < 100 || p.expect_status > 599) {
        return invalid(prefix + "expect_status: must be an HTTP status, 100 to 599");
      }
      if (!p.ca_file.empty() && !p.url.https) {
        return invalid(prefix + "ca_file: only for https URLs");
      }
      return {};
    case ProbeKind::tcp:
      if (p.address.host.empty() || p.address.port == 0) {
        return invalid(prefix + "address: missing (HOST:PORT)");
      }
      return {};
    case ProbeKind::exec:
      return validate_command(p.command, prefix + "command");
    case ProbeKind::callback:
      return {};  // the embedding program registers the function by name
  }
  ANYA_ASSERT(false);
  return {};
}

}  // namespace

Status validate_health(const HealthConfig& h) {
  if (Status s = engine::health::validate_health_policy(h.policy(), "health."); !s) return s;
  if (h.resource_interval_ms < HealthConfigLimits::min_resource_interval_ms ||
      h.resource_interval_ms > HealthConfigLimits::max_resource_interval_ms) {
    return invalid("health.resource_interval: must be between 100ms and 1h");
  }
  for (std::size_t i = 0; i < h.probes.size(); i++) {
    const std::string prefix = "health.probe[" + std::to_string(i) + "].";
    if (Status s = validate_probe_target(h.probes[i], prefix); !s) return s;
  }
  return {};
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
  if (Status s = validate_health(c.health); !s) return s;
  if (Status s = validate_discovery(c.discovery); !s) return s;
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

// A TOML float that reads back as the same double: "90.0", "92.5".
std::string toml_number(double value) {
  char buffer[40];
  for (int precision : {15, 17}) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

void render_probe(std::ostream& out, const HealthProbeConfig& p,
                  const std::filesystem::path& dir) {
  using engine::health::ProbeKind;
  out << "\n[[health.probe]]\nname = " << quoted(p.spec.name)
      << "\ntype = " << quoted(engine::health::probe_kind_name(p.spec.kind)) << "\n";
  switch (p.spec.kind) {
    case ProbeKind::http:
      out << "url = " << quoted(p.url.to_string()) << "\nexpect_status = " << p.expect_status
          << "\n";
      if (!p.ca_file.empty()) out << "ca_file = " << quoted(relative_to(p.ca_file, dir)) << "\n";
      break;
    case ProbeKind::tcp:
      out << "address = " << quoted(p.address.to_string()) << "\n";
      break;
    case ProbeKind::exec: {
      out << "command = [";
      const char* sep = "";
      for (const std::string& arg : p.command) {
        out << sep << quoted(arg);
        sep = ", ";
      }
      out << "]\n";
      break;
    }
    case ProbeKind::callback:
      ANYA_ASSERT(false);  // render_health skips them
  }
  out << "interval = " << quoted(format_duration_ms(p.spec.interval_ms))
      << "\ntimeout = " << quoted(format_duration_ms(p.spec.timeout_ms))
      << "\nfall = " << p.spec.fall << "\nrise = " << p.spec.rise
      << "\nweight = " << p.spec.weight << "\n";
}

void render_health(std::ostream& out, const HealthConfig& h, const std::filesystem::path& dir) {
  const engine::health::ResourceLimits& l = h.limits;
  out << "\n[health]\naggregate = " << quoted(engine::health::aggregation_text(h.aggregate))
      << "\nresource_interval = " << quoted(format_duration_ms(h.resource_interval_ms))
      << "\nwindow = " << quoted(format_duration_ms(h.window_ms))
      << "\nresource_fall = " << h.resource_fall << "\nresource_rise = " << h.resource_rise
      << "\n";
  if (l.max_cpu_percent) out << "max_cpu_percent = " << toml_number(*l.max_cpu_percent) << "\n";
  if (l.max_memory_percent) {
    out << "max_memory_percent = " << toml_number(*l.max_memory_percent) << "\n";
  }
  if (l.min_disk_free_percent) {
    out << "min_disk_free_percent = " << toml_number(*l.min_disk_free_percent) << "\n";
  }
  if (l.min_disk_free_bytes) {
    out << "min_disk_free = " << quoted(format_size_bytes(*l.min_disk_free_bytes)) << "\n";
  }
  if (l.max_fd_percent) out << "max_fd_percent = " << toml_number(*l.max_fd_percent) << "\n";
  for (const HealthProbeConfig& p : h.probes) {
    // A callback probe is a function in the embedding program: no file can say it.
    if (p.spec.kind == engine::health::ProbeKind::callback) continue;
    render_probe(out, p, dir);
  }
}

// The sub-table of each method in use (the others are at their defaults and not written).
void render_discovery(std::ostream& out, const DiscoveryConfig& d,
                      const std::filesystem::path& dir) {
  const auto ms = [](std::uint64_t v) { return quoted(format_duration_ms(v)); };
  if (d.uses("dns_srv")) {
    const DnsSrvDiscoveryConfig& s = d.dns_srv;
    out << "\n[discovery.dns_srv]\ndomain = " << quoted(s.domain)
        << "\nservice = " << quoted(s.service);
    if (s.nameserver) out << "\nnameserver = " << quoted(s.nameserver->to_string());
    out << "\nmin_refresh = " << ms(s.min_refresh_ms) << "\nmax_refresh = "
        << ms(s.max_refresh_ms) << "\ntimeout = " << ms(s.timeout_ms) << "\n";
  }
  if (d.uses("kubernetes")) {
    const KubernetesDiscoveryConfig& k = d.kubernetes;
    out << "\n[discovery.kubernetes]\n";
    if (!k.api_server.empty()) out << "api_server = " << quoted(k.api_server) << "\n";
    if (!k.namespace_name.empty()) out << "namespace = " << quoted(k.namespace_name) << "\n";
    if (!k.port_name.empty()) out << "port_name = " << quoted(k.port_name) << "\n";
    out << "service = " << quoted(k.service)
        << "\ntoken_file = " << quoted(relative_to(k.token_file, dir))
        << "\nca_file = " << quoted(relative_to(k.ca_file, dir)) << "\nmode = "
        << (k.mode == KubernetesDiscoveryConfig::Mode::watch ? "\"watch\"" : "\"poll\"")
        << "\ninterval = " << ms(k.interval_ms) << "\ntimeout = " << ms(k.timeout_ms)
        << "\nnode_id_offset = " << k.node_id_offset << "\n";
  }
  if (d.uses("multicast")) {
    const MulticastDiscoveryConfig& m = d.multicast;
    out << "\n[discovery.multicast]\ngroup = " << quoted(m.group) << "\nport = " << m.port
        << "\ninterface = " << quoted(m.interface) << "\ninterval = " << ms(m.interval_ms)
        << "\nsecret_file = " << quoted(relative_to(m.secret_file, dir))
        << "\nreplay_window = " << ms(m.replay_window_ms) << "\n";
  }
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
  render_health(out, c.health, dir);
  out << "\n[discovery]\nmethods = [";
  for (std::size_t i = 0; i < c.discovery.methods.size(); i++) {
    out << (i ? ", " : "") << quoted(c.discovery.methods[i]);
  }
  out << "]\njoin = " << (c.join ? "true" : "false") << "\nmembers = [";
  for (std::size_t i = 0; i < c.members.size(); i++) {
    out << (i ? ", " : "")
        << quoted(std::to_string(c.members[i].id) + "@" + c.members[i].peer_address.to_string());
  }
  out << "]\n";
  render_discovery(out, c.discovery, dir);
  out << "\n[log]\nlevel = " << quoted(c.log_level) << "\n\n[audit]\nfile = "
      << quoted(relative_to(c.audit_file, dir))
      << "\nsecret_file = " << quoted(relative_to(c.audit_secret_file, dir)) << "\n";
  render_auth(out, c.auth);
  return out.str();
}

}  // namespace anya::transport

#include "transport/auth/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <boost/json.hpp>
#include <cstdio>

namespace anya::transport::auth {
namespace {

constexpr std::array<const char*, kPermissionCount> kPermissionNames = {
    "health.read", "metrics.read", "status.read",  "kv.read",          "kv.write",
    "members.read", "members.write", "config.read", "config.write",    "leader.transfer",
    "lease.read",  "tokens.manage", "node.join",   "records.read",    "records.write",
    "session.open"};
static_assert(static_cast<std::size_t>(Permission::session_open) + 1 == kPermissionCount);

bool is_read(Permission p) {
  switch (p) {
    case Permission::health_read:
    case Permission::metrics_read:
    case Permission::status_read:
    case Permission::kv_read:
    case Permission::members_read:
    case Permission::config_read:
    case Permission::records_read:
    case Permission::lease_read: return true;
    default: return false;
  }
}

bool builtin_allows(std::string_view role, Permission p) {
  // node.join belongs to one-time join tokens alone: an admin's credential never signs a node
  // certificate by itself.
  if (role == "admin") return p != Permission::node_join;
  if (role == "operator") {
    return is_read(p) || p == Permission::kv_write || p == Permission::records_write ||
           p == Permission::session_open || p == Permission::leader_transfer;
  }
  if (role == "viewer") return is_read(p);
  if (role == kJoinRole) return p == Permission::node_join;
  return false;
}

bool is_builtin(std::string_view role) {
  for (std::string_view r : kBuiltinRoles) {
    if (r == role) return true;
  }
  return false;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.';
}

// Why `name` is not a usable role/token/client name, or empty.
std::string name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxNameBytes) {
    return "is longer than " + std::to_string(kMaxNameBytes) + " characters";
  }
  for (char c : name) {
    if (!is_name_char(c)) return "has a character outside [A-Za-z0-9._-]";
  }
  return {};
}

bool is_lower_hex(std::string_view s, std::size_t size) {
  if (s.size() != size) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

Status validate_roles(const AuthConfig& c) {
  if (c.custom_roles.size() > kMaxRoles) {
    return {Errc::invalid_argument,
            "auth.roles: more than " + std::to_string(kMaxRoles) + " roles"};
  }
  for (const auto& [name, permissions] : c.custom_roles) {
    if (auto p = name_problem(name); !p.empty()) {
      return {Errc::invalid_argument, "auth.roles: role name '" + name + "' " + p};
    }
    if (is_builtin(name)) {
      return {Errc::invalid_argument,
              "auth.roles." + name + ": is a built-in role and cannot be redefined"};
    }
    if (permissions.empty()) {
      return {Errc::invalid_argument, "auth.roles." + name + ".permissions: is empty"};
    }
  }
  return Status::ok();
}

}  // namespace

const char* permission_name(Permission p) {
  const auto i = static_cast<std::size_t>(p);
  ANYA_ASSERT(i < kPermissionCount);
  return kPermissionNames[i];
}

std::optional<Permission> parse_permission(std::string_view name) {
  for (std::size_t i = 0; i < kPermissionCount; ++i) {
    if (name == kPermissionNames[i]) return static_cast<Permission>(i);
  }
  return std::nullopt;
}

std::vector<Permission> all_permissions() {
  std::vector<Permission> out;
  for (std::size_t i = 0; i < kPermissionCount; ++i) out.push_back(static_cast<Permission>(i));
  return out;
}

Status validate(const AuthConfig& c) {
  if (Status s = validate_roles(c); !s) return s;
  const auto role_known = [&](const std::string& r) {
    return is_builtin(r) || c.custom_roles.count(r) > 0;
  };
  if (c.client_roles.size() > kMaxBindings) {
    return {Errc::invalid_argument, "auth.clients: more than " + std::to_string(kMaxBindings)};
  }
  for (const auto& [client, role] : c.client_roles) {
    if (auto p = name_problem(client); !p.empty()) {
      return {Errc::invalid_argument, "auth.clients: client name '" + client + "' " + p};
    }
    if (!role_known(role)) {
      return {Errc::invalid_argument,
              "auth.clients." + client + ": unknown role '" + role + "'"};
    }
  }
  std::set<std::string> names, hashes;
  for (std::size_t i = 0; i < c.tokens.size(); ++i) {
    const StaticToken& t = c.tokens[i];
    const std::string field = "auth.tokens[" + std::to_string(i) + "]";
    if (auto p = name_problem(t.name); !p.empty()) {
      return {Errc::invalid_argument, field + ".name: " + p};
    }
    if (!is_lower_hex(t.sha256_hex, 64)) {
      return {Errc::invalid_argument,
              field + ".sha256: expected 64 lowercase hex characters (sha256sum of the token)"};
    }
    if (!role_known(t.role)) {
      return {Errc::invalid_argument, field + ".role: unknown role '" + t.role + "'"};
    }
    if (!names.insert(t.name).second) {
      return {Errc::invalid_argument, field + ".name: '" + t.name + "' is used twice"};
    }
    if (!hashes.insert(t.sha256_hex).second) {
      return {Errc::invalid_argument, field + ".sha256: the same token is listed twice"};
    }
  }
  return Status::ok();
}

Authorizer::Authorizer(AuthConfig config, TokenLookup lookup)
    : config_(std::move(config)), lookup_(std::move(lookup)) {
  ANYA_ASSERT(validate(config_).is_ok());
}

bool Authorizer::role_exists(std::string_view role) const {
  return is_builtin(role) || config_.custom_roles.count(std::string(role)) > 0;
}

bool Authorizer::role_allows(std::string_view role, Permission permission) const {
  if (is_builtin(role)) return builtin_allows(role, permission);
  auto it = config_.custom_roles.find(std::string(role));
  return it != config_.custom_roles.end() && it->second.count(permission) > 0;
}

AuthOutcome Authorizer::identify_token(std::string_view token,
                                       std::uint64_t now_unix_ms) const {
  AuthOutcome out;
  out.kind = AuthOutcome::Kind::unauthenticated;
  if (token.empty() || token.size() > kMaxTokenBytes) {
    out.reason = "bearer token is empty or longer than " + std::to_string(kMaxTokenBytes);
    return out;
  }
  if (auto parsed = parse_runtime_token(token)) {
    std::optional<TokenRecord> record = lookup_ ? lookup_(parsed->id) : std::nullopt;
    if (!record || !constant_time_equal(sha256_hex(parsed->secret), record->sha256_hex)) {
      out.reason = "unknown or revoked token " + parsed->id;
      return out;
    }
    if (record->expires_unix_ms != 0 && now_unix_ms >= record->expires_unix_ms) {
      out.reason = "token " + parsed->id + " (" + record->name + ") has expired";
      return out;
    }
    out.kind = AuthOutcome::Kind::ok;
    out.principal = {"token:" + record->name, record->role};
    return out;
  }
  const std::string hash = sha256_hex(token);
  for (const StaticToken& t : config_.tokens) {
    if (constant_time_equal(hash, t.sha256_hex)) {
      out.kind = AuthOutcome::Kind::ok;
      out.principal = {"token:" + t.name, t.role};
      return out;
    }
  }
  out.reason = "unknown bearer token";
  return out;
}

AuthOutcome Authorizer::identify(const Caller& caller, std::uint64_t now_unix_ms) const {
  ANYA_ASSERT(!(caller.client_name && caller.node_id));
  AuthOutcome out;
  if (!caller.authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (caller.authorization.rfind(kBearer, 0) != 0) {
      out.kind = AuthOutcome::Kind::unauthenticated;
      out.reason = "Authorization header: expected 'Bearer TOKEN'";
      return out;
    }
    return identify_token(std::string_view(caller.authorization).substr(kBearer.size()),
                          now_unix_ms);
  }
  if (caller.node_id) {
    out.kind = AuthOutcome::Kind::forbidden;
    out.principal = {"node:" + std::to_string(*caller.node_id), ""};
    out.reason = "a node certificate is not an admin credential";
    return out;
  }
  if (caller.client_name) {
    out.principal.actor = "client:" + *caller.client_name;
    auto it = config_.client_roles.find(*caller.client_name);
    if (it == config_.client_roles.end()) {
      out.kind = AuthOutcome::Kind::forbidden;
      out.reason = "client " + *caller.client_name + " is bound to no role (auth.clients)";
      return out;
    }
    out.principal.role = it->second;
    return out;
  }
  out.kind = AuthOutcome::Kind::unauthenticated;
  out.reason = "no credential: present a client certificate or a bearer token";
  return out;
}

AuthOutcome Authorizer::check(const Caller& caller, Permission permission,
                              std::uint64_t now_unix_ms) const {
  AuthOutcome out = identify(caller, now_unix_ms);
  if (out.kind != AuthOutcome::Kind::ok) return out;
  ANYA_ASSERT(role_exists(out.principal.role) || !out.principal.role.empty());
  if (!role_allows(out.principal.role, permission)) {
    out.kind = AuthOutcome::Kind::forbidden;
    out.reason = out.principal.actor + " (role " + out.principal.role + ") lacks permission " +
                 permission_name(permission);
  }
  return out;
}

std::optional<ParsedToken> parse_runtime_token(std::string_view token) {
  if (token.rfind(kTokenPrefix, 0) != 0) return std::nullopt;
  token.remove_prefix(kTokenPrefix.size());
  if (token.size() != kTokenIdHexChars + 1 + kTokenSecretHexChars) return std::nullopt;
  if (token[kTokenIdHexChars] != '.') return std::nullopt;
  ParsedToken out{std::string(token.substr(0, kTokenIdHexChars)),
                  std::string(token.substr(kTokenIdHexChars + 1))};
  if (!is_lower_hex(out.id, kTokenIdHexChars)) return std::nullopt;
  if (!is_lower_hex(out.secret, kTokenSecretHexChars)) return std::nullopt;
  return out;
}

std::string sha256_hex(std::string_view text) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  const int ok = EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(),
                            nullptr);
  ANYA_ASSERT(ok == 1);
  ANYA_ASSERT(size == digest.size());
  return hex(digest.data(), digest.size());
}

Result<NewToken> generate_token() {
  std::array<unsigned char, kTokenIdHexChars / 2 + kTokenSecretHexChars / 2> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return {Errc::io_error, "cannot draw random bytes for a token"};
  }
  NewToken out;
  out.id = hex(bytes.data(), kTokenIdHexChars / 2);
  const std::string secret = hex(bytes.data() + kTokenIdHexChars / 2, kTokenSecretHexChars / 2);
  out.token = std::string(kTokenPrefix) + out.id + "." + secret;
  out.sha256_hex = sha256_hex(secret);
  ANYA_ASSERT(parse_runtime_token(out.token).has_value());
  return out;
}

std::string encode_token_record(const TokenRecord& r) {
  boost::json::object o{{"name", r.name},
                        {"role", r.role},
                        {"sha256", r.sha256_hex},
                        {"expires_unix_ms", r.expires_unix_ms},
                        {"created_by", r.created_by}};
  return boost::json::serialize(o);
}

std::optional<TokenRecord> decode_token_record(std::string_view id, std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const boost::json::object& o = v.as_object();
  const auto str = [&](std::string_view field) -> std::optional<std::string> {
    const boost::json::value* f = o.if_contains(field);
    if (f == nullptr || !f->is_string()) return std::nullopt;
    return std::string(f->as_string());
  };
  const boost::json::value* expires = o.if_contains("expires_unix_ms");
  auto name = str("name"), role = str("role"), hash = str("sha256"), by = str("created_by");
  if (!name || !role || !hash || !by || expires == nullptr) return std::nullopt;
  TokenRecord r{std::string(id), *name, *role, *hash, 0, *by};
  if (expires->is_uint64()) r.expires_unix_ms = expires->as_uint64();
  else if (expires->is_int64() && expires->as_int64() >= 0) {
    r.expires_unix_ms = static_cast<std::uint64_t>(expires->as_int64());
  } else {
    return std::nullopt;
  }
  return r;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace anya::transport::auth

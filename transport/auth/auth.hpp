// Who may do what on the admin plane: permissions, roles, and the authorizer that maps a
// caller's credential to a role. Pure logic (no sockets, no clock reads): the admin server hands
// in what the TLS handshake proved and the Authorization header, the router asks for the
// permission its endpoint table names (router.cpp, `endpoint_permission`), and this decides.
//
// The model, in the order an operator meets it:
// - A permission is one verb on one area ("kv.write"). Built-in roles: viewer (every read),
//   operator (viewer + KV writes + leadership transfer), admin (everything). Custom roles list
//   their permissions in the configuration.
// - A caller is identified by a client certificate (its SAN anya-ha://client/NAME, bound in the
//   configuration as "client:NAME") or a bearer token. Static tokens live in the configuration
//   as a SHA-256 hash only; tokens made at run time (`ctl token create`) live in the replicated
//   store, also as a hash, and are found through a lookup the node provides.
// - Default deny: a certificate bound to no role, an unknown or expired token, and a node
//   certificate (nodes speak on the peer plane only) are refused. No credential at all is 401;
//   a known caller without the permission is 403.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::transport::auth {

enum class Permission : std::uint8_t {
  health_read,      // /healthz, /readyz on the admin listener
  metrics_read,     // /metrics
  status_read,      // /v1/status
  kv_read,
  kv_write,
  members_read,
  members_write,
  config_read,
  config_write,
  leader_transfer,
  lease_read,
  tokens_manage,    // create, list and revoke tokens
  node_join,        // spend a one-time join token for a new node's certificate
  records_read,     // UTXO reservations and DLC contracts: read
  records_write,    // reserve, release, spend; create, transition, attest
  session_open,     // open a client session for exactly-once writes (POST /v1/session)
};
inline constexpr std::size_t kPermissionCount = 16;

const char* permission_name(Permission p);
std::optional<Permission> parse_permission(std::string_view name);
std::vector<Permission> all_permissions();

// "join" is the role of one-time join tokens (`ctl token create --join`): node.join only.
inline constexpr std::string_view kBuiltinRoles[] = {"viewer", "operator", "admin", "join"};
inline constexpr std::string_view kJoinRole = "join";
inline constexpr std::size_t kMaxRoles = 64;
inline constexpr std::size_t kMaxBindings = 1024;
inline constexpr std::size_t kMaxNameBytes = 64;  // role, token and client names

// A configured token: only the SHA-256 of its secret is kept.
struct StaticToken {
  std::string name;
  std::string sha256_hex;  // 64 lowercase hex characters
  std::string role;
  friend bool operator==(const StaticToken&, const StaticToken&) = default;
};

// The [auth] section of a node's configuration.
struct AuthConfig {
  std::map<std::string, std::set<Permission>> custom_roles;
  std::map<std::string, std::string> client_roles;  // client name -> role
  std::vector<StaticToken> tokens;
  friend bool operator==(const AuthConfig&, const AuthConfig&) = default;
};

// Role names exist, names are well formed, no custom role shadows a built-in one, token hashes
// are 64 hex characters, no two tokens share a name or a hash. Messages name the field.
Status validate(const AuthConfig& config);

// What the transport proved about a caller. At most one of the certificate fields is set.
struct Caller {
  std::optional<std::string> client_name;  // a client certificate's name
  std::optional<std::uint64_t> node_id;    // a node certificate
  std::string authorization;               // the Authorization header, as sent
  std::string source;                      // the peer's IP address, for the record
};

// A token made at run time, as stored in the replicated store under kTokenKeyPrefix + id.
struct TokenRecord {
  std::string id;          // 16 hex characters, public (the part before the secret)
  std::string name;
  std::string role;
  std::string sha256_hex;  // of the secret
  std::uint64_t expires_unix_ms = 0;  // 0: never
  std::string created_by;  // the actor that made it
};
inline constexpr std::string_view kReservedKeyPrefix = "_anya/";
inline constexpr std::string_view kTokenKeyPrefix = "_anya/tokens/";
// The stored form (JSON) and back; nullopt if `text` is not a token record.
std::string encode_token_record(const TokenRecord& record);
std::optional<TokenRecord> decode_token_record(std::string_view id, std::string_view text);

// Who the caller turned out to be.
struct Principal {
  std::string actor;  // "client:ops", "token:ci", for the audit record and the log
  std::string role;
};

struct AuthOutcome {
  enum class Kind { ok, unauthenticated, forbidden } kind = Kind::ok;
  Principal principal;  // set when ok or forbidden (forbidden: known caller, no permission)
  std::string reason;   // for the refusal's message, the log and the audit record
};

class Authorizer {
 public:
  using TokenLookup = std::function<std::optional<TokenRecord>(std::string_view id)>;

  // `config` must have passed validate().
  explicit Authorizer(AuthConfig config, TokenLookup lookup = {});

  // Decides whether `caller` may use `permission`, at wall-clock time `now_unix_ms` (token
  // expiry). A bearer token, when sent, is the credential even over a client certificate.
  AuthOutcome check(const Caller& caller, Permission permission,
                    std::uint64_t now_unix_ms) const;
  bool role_allows(std::string_view role, Permission permission) const;
  bool role_exists(std::string_view role) const;
  const AuthConfig& config() const { return config_; }

 private:
  AuthOutcome identify(const Caller& caller, std::uint64_t now_unix_ms) const;
  AuthOutcome identify_token(std::string_view token, std::uint64_t now_unix_ms) const;

  AuthConfig config_;
  TokenLookup lookup_;
};

// Tokens made at run time read "anya.ID.SECRET": ID is 16 hex characters (public, the store's
// key), SECRET 64 hex characters (32 random bytes). Configured tokens are any string of 16 to
// 256 printable characters; only its SHA-256 is written down.
inline constexpr std::string_view kTokenPrefix = "anya.";
inline constexpr std::size_t kTokenIdHexChars = 16;
inline constexpr std::size_t kTokenSecretHexChars = 64;
inline constexpr std::size_t kMinStaticTokenBytes = 16;
inline constexpr std::size_t kMaxTokenBytes = 256;

struct ParsedToken {
  std::string id;
  std::string secret;
};
// The ID and SECRET of a run-time token, or nullopt if `token` is not one.
std::optional<ParsedToken> parse_runtime_token(std::string_view token);
// Lowercase hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);
// A fresh run-time token (RAND_bytes) and its record's id and hash.
struct NewToken {
  std::string token;  // shown to the caller once, never stored
  std::string id;
  std::string sha256_hex;
};
Result<NewToken> generate_token();
// Constant-time comparison of two equal-length strings (false if lengths differ).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace anya::transport::auth

// The admin API's request handling, without sockets: a parsed HTTP request goes in, a response
// comes out through a callback (once the node has answered, which for a write is after it
// commits). The HTTPS server (server.hpp) owns the connections; tests and the fuzz target drive
// the router directly against a fake NodeApi.
//
// Endpoints and JSON fields are DESIGN.md's outside contract. Errors are
// {"error": CODE, "message": TEXT}; a request that needs the leader, sent to a follower, gets
// 421 with "leader" and "leader_admin" so a client can follow.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "transport/auth/auth.hpp"
#include "transport/node/api.hpp"

namespace anya::transport {

struct AdminRequest {
  std::string method;   // "GET", "PUT", ...
  std::string target;   // path and query, as sent: "/v1/kv/a%2Fb?prev_revision=3"
  std::string if_match; // the If-Match header, if any
  std::string body;
  auth::Caller caller{};           // what the connection proved, and the Authorization header
  std::string idempotency_key{};   // the Idempotency-Key header, if any
  std::string client_id{};         // the Anya-Client-Id header, if any (exactly-once writes)
  std::string client_seq{};        // the Anya-Client-Seq header, if any
  std::uint64_t now_unix_ms = 0;   // wall clock when it arrived (token expiry)
};

// Exactly-once writes: a client names itself and numbers its requests; a retry repeats both.
inline constexpr const char* kClientIdHeader = "Anya-Client-Id";
inline constexpr const char* kClientSeqHeader = "Anya-Client-Seq";

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // a 405's Allow header: the methods the endpoint answers
};

struct AdminLimits {
  static constexpr std::size_t max_body_bytes = 1u << 20;
  static constexpr std::size_t max_target_bytes = 4096;
  static constexpr std::size_t max_json_depth = 32;
};

// The one table of endpoints: the permission each method on each path needs. Rows match a path
// exactly, by prefix (/v1/kv/KEY, an empty KEY being the router's 400), or as a child: longer
// than the prefix (DELETE /v1/members/ID; DELETE /v1/members/ is a 405). Every endpoint
// the router answers is here, and nothing else is answered (a test walks it for every role).
struct EndpointRule {
  std::string_view method;
  std::string_view path;
  enum class Match : std::uint8_t { exact, prefix, child } match;
  auth::Permission permission;
  bool mutates;  // written to the audit log before it runs
  // Served to anyone, without a credential: GET /v1/ca (the CA certificate is public, and a
  // joining node checks it against the pin it was given) and GET /v1/audit/head.
  bool anonymous = false;
};
std::span<const EndpointRule> admin_endpoints();
const EndpointRule* find_endpoint(std::string_view method, std::string_view path);

// Keys under auth::kReservedKeyPrefix hold the cluster's own records (run-time tokens, audit
// chain heads); /v1/kv refuses them. GET /v1/audit/heads lists the heads.
inline constexpr std::string_view kAuditHeadKeyPrefix = "_anya/audit/";

// One line of the audit trail, as the router knows it; the sink adds time, node and term.
struct AuditEvent {
  std::string actor;    // "client:ops", "token:ci", "anonymous"
  std::string role;
  std::string action;   // the permission used ("kv.write"), auth.unauthenticated or .forbidden
  std::string target;   // METHOD PATH (a key name, a member id; never a value)
  std::string outcome;  // "requested", "ok", "refused", "failed: CODE"
  std::string detail;
  std::string source;   // the caller's address
};
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Durable before it returns ok. A mutation whose "requested" record fails is refused.
  virtual Status record(const AuditEvent& event) = 0;
};

// What a node that may issue node certificates (tls.ca_key set) offers joining nodes, and the CA
// certificate every node serves at GET /v1/ca.
class CertificateIssuer {
 public:
  virtual ~CertificateIssuer() = default;
  // A node certificate for `node` over the key in `csr_pem` (transport/tls sign_request).
  virtual Result<std::string> issue_node(std::string_view csr_pem, engine::NodeId node,
                                         const std::vector<std::string>& dns_names,
                                         const std::vector<std::string>& ip_addresses) const = 0;
};
// What the node offers beyond NodeApi, to anyone (the public endpoints) or to joining nodes.
struct NodeServices {
  std::string ca_pem;                         // served at GET /v1/ca
  const CertificateIssuer* issuer = nullptr;  // null: this node does not sign (POST /v1/join 400)
  // {"node", "seq", "mac"} of this node's audit chain head, served at GET /v1/audit/head (a MAC
  // reveals nothing without the secret), so the leader can record every member's head.
  std::function<std::string()> audit_head{};
};

// Mutating requests that carry an `Idempotency-Key` header are remembered per caller (client
// certificate, token or source) with their answer: a client that retries after a timeout gets
// the first answer again, and the write is not applied twice. Bounded in entries and time; one
// node's memory (a retry sent to another node after a failover is not caught here).
class ReplayGuard {
 public:
  static constexpr std::size_t kMaxEntries = 10'000;
  static constexpr std::uint64_t kKeepMs = 10 * 60 * 1000;
  static constexpr std::size_t kMaxKeyBytes = 128;

  enum class Verdict { fresh, in_flight, replay, mismatch };
  // `fingerprint`: a hash of method, target and body; the same key with another request is a
  // mismatch. Callers guard authorized requests only, so entries are bounded by what
  // credentialed clients send (kMaxEntries in all, each a few hundred bytes plus its answer).
  Verdict begin(const std::string& caller, const std::string& key,
                const std::string& fingerprint, std::uint64_t now_ms, AdminResponse* replay);
  void finish(const std::string& caller, const std::string& key, const AdminResponse& answer);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string fingerprint;
    std::uint64_t at_ms = 0;
    std::optional<AdminResponse> answer;  // nullopt while the first request runs
  };
  void expire(std::uint64_t now_ms);
  std::map<std::pair<std::string, std::string>, Entry> entries_;
  std::multimap<std::uint64_t, std::pair<std::string, std::string>> by_time_;
};

// serve_admin_request with a replay guard: the `idempotency_key` of `request` (if any) is
// checked before anything runs. 409 while the first is still running, 422 if the key was used
// for another request.
void serve_admin_request_once(const AdminRequest& request, NodeApi& node,
                              const auth::Authorizer& authorizer, AuditSink& audit,
                              ReplayGuard& guard, std::function<void(AdminResponse)> respond,
                              const NodeServices* join = nullptr);

// Authenticates and authorizes `request` against the endpoint table, writes mutations to the
// audit sink first (fail closed: 503 if it cannot), then routes. Refusals: 401 (no or bad
// credential), 403 (a known caller without the permission), each audited.
// POST /v1/join {"node_id", "csr", "ip": [...], "dns": [...]} with a one-time join token (role
// join): the token is spent first (a compare-and-delete through the log, so it works once even
// when two nodes are asked at once), then `join` signs the request for a node id that is not a
// member. GET /v1/ca answers `join`'s CA certificate to anyone.
void serve_admin_request(const AdminRequest& request, NodeApi& node,
                         const auth::Authorizer& authorizer, AuditSink& audit,
                         std::function<void(AdminResponse)> respond,
                         const NodeServices* join = nullptr);

// Handles one request without any authorization (serve_admin_request's last step; the
// unauthenticated health listener's, for the paths it serves; tests and the fuzz target).
// `respond` is called exactly once, possibly later. An unknown path gets
// 404; a known path asked with a method it does not answer gets 405 (`method_not_allowed`).
void route_admin_request(const AdminRequest& request, NodeApi& node,
                         std::function<void(AdminResponse)> respond);

// The HTTP status for an error code (not_leader -> 421, conflict -> 409, ...).
int http_status_for(Errc code);
// {"error": CODE, "message": TEXT[, "leader": ID, "leader_admin": URL]}
AdminResponse error_response(const ApiError& error);
// Percent-decoding of a path segment or query value; nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace anya::transport

#include "transport/admin/router.hpp"

#include "transport/admin/health_json.hpp"
#include "transport/admin/json_util.hpp"
#include "transport/admin/records.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace anya::transport {

namespace json = boost::json;

namespace {
constexpr std::size_t kMaxMembersListed = 1024;
}
using engine::NodeId;

namespace {

json::value member_json(const MemberView& m) {
  json::object o;
  o["id"] = m.id;
  o["address"] = m.address;
  o["voter"] = m.voter;
  // What a member last reported of its health is news only while it is known alive: a member
  // that is down, suspect or out of sight is never shown healthy.
  const bool alive = m.liveness == engine::Liveness::reachable;
  o["health"] = !alive ? "unknown" : m.healthy ? "healthy" : "unhealthy";
  o["reachability"] = engine::liveness_name(m.liveness);
  o["reachable"] = m.reachable;
  if (m.rtt_ms) o["rtt_ms"] = *m.rtt_ms;
  else o["rtt_ms"] = nullptr;
  if (m.last_seen_ms) o["last_seen_ms"] = *m.last_seen_ms;
  else o["last_seen_ms"] = nullptr;
  o["match_index"] = m.match_index;
  if (m.chain_height) o["chain_height"] = *m.chain_height;
  else o["chain_height"] = nullptr;
  return o;
}

// This node's view of the Bitcoin chain and whether it is gated by it (null: unknown).
json::value chain_json(const ChainStatusView& c) {
  static constexpr char kHex[] = "0123456789abcdef";
  json::object o;
  o["height"] = c.view ? json::value(c.view->height) : json::value(nullptr);
  if (c.view) {
    std::string tip;
    for (std::uint8_t b : c.view->tip) tip += {kHex[b >> 4], kHex[b & 0xF]};
    o["tip"] = tip;
  } else {
    o["tip"] = nullptr;
  }
  o["quorum_height"] = c.quorum_height ? json::value(*c.quorum_height) : json::value(nullptr);
  if (c.view && c.quorum_height) {
    o["blocks_behind"] = *c.quorum_height > c.view->height ? *c.quorum_height - c.view->height : 0;
  } else {
    o["blocks_behind"] = nullptr;
  }
  o["behind"] = c.behind;
  o["max_blocks_behind"] = c.max_blocks_behind;
  o["probing"] = c.probing;
  o["probe_error"] = c.probe_error.empty() ? json::value(nullptr) : json::value(c.probe_error);
  return o;
}

json::value status_json(const StatusView& s) {
  json::object o;
  o["node_id"] = s.node_id;
  o["cluster_id"] = s.cluster;
  o["role"] = s.role;
  o["term"] = s.term;
  if (s.leader == engine::kNoNode) o["leader"] = nullptr;
  else o["leader"] = s.leader;
  o["leader_admin"] = s.leader_admin;
  o["commit_index"] = s.commit_index;
  o["applied_index"] = s.applied_index;
  o["quorum"] = s.quorum;
  o["config_version"] = s.config_version;
  o["fencing_token"] = s.fencing_token;
  json::array members;
  for (const MemberView& m : s.members) members.push_back(member_json(m));
  o["members"] = std::move(members);
  o["chain"] = chain_json(s.chain);
  o["health"] = health_json(s.health);
  return o;
}

// A configuration document is JSON text; it is returned as JSON, not as a string.
json::value config_json(const ConfigView& c) {
  json::object o;
  o["version"] = c.version;
  boost::system::error_code ec;
  json::value doc = c.document.empty() ? json::value(nullptr) : json::parse(c.document, ec);
  o["document"] = ec ? json::value(c.document) : doc;
  return o;
}

void route_kv(const AdminRequest& req, std::string_view path, std::string_view query,
              NodeApi& node, const std::function<void(AdminResponse)>& respond) {
  std::optional<std::string> key = percent_decode(path);
  if (!key || key->empty()) return respond(bad_request("key: missing or badly escaped"));
  if (!valid_utf8(*key)) return respond(bad_request("key: not valid UTF-8"));
  if (key->starts_with(auth::kReservedKeyPrefix)) {
    return respond(json_response(
        403, json::object{{"error", "forbidden"},
                          {"message", "key: names under " + std::string(auth::kReservedKeyPrefix) +
                                          " are the cluster's own (tokens); use /v1/tokens"}}));
  }
  auto write_done = replying<KvWriteResult>(respond, [](const KvWriteResult& w) {
    json::object body{{"revision", w.revision}};
    if (w.replayed) body["replayed"] = true;
    return json_response(200, std::move(body));
  });
  Result<std::optional<ClientRef>> client = client_of(req);
  if (!client) return respond(bad_request(client.status().message()));
  if (req.method == "GET") {
    std::optional<engine::ReadMode> consistency;
    if (query.rfind("consistency=", 0) == 0) {
      Result<engine::ReadMode> mode = engine::parse_read_mode(query.substr(12));
      if (!mode) return respond(bad_request("consistency: " + mode.status().message()));
      consistency = *mode;
    } else if (!query.empty()) {
      return respond(bad_request("unknown query parameter: " + std::string(query)));
    }
    return node.kv_get(*key, consistency, replying<KvEntryView>(respond, [](const KvEntryView& e) {
      json::object body{{"key", e.key},
                        {"value", e.value},
                        {"create_revision", e.create_revision},
                        {"mod_revision", e.mod_revision},
                        {"version", e.version},
                        {"consistency", engine::read_mode_name(e.consistency)}};
      if (e.stale_possible) body["stale_possible"] = true;
      return json_response(200, std::move(body));
    }));
  }
  if (req.method == "PUT") {
    std::string error;
    std::optional<json::object> body = parse_object(req.body, error);
    if (!body || !only_fields(*body, {"value", "prev_revision"}, error)) {
      return respond(bad_request(error));
    }
    const json::value* value = body->if_contains("value");
    if (value == nullptr || !value->is_string()) {
      return respond(bad_request("value: missing or not a string"));
    }
    std::optional<std::uint64_t> prev;
    if (!read_u64(*body, "prev_revision", prev, error)) return respond(bad_request(error));
    KvWrite w;
    w.op = prev ? KvWrite::Op::cas : KvWrite::Op::put;
    w.key = std::move(*key);
    w.value = std::string(value->as_string());
    w.expected_revision = prev;
    w.client = *client;
    return node.kv_write(std::move(w), std::move(write_done));
  }
  ANYA_ASSERT(req.method == "DELETE");  // allowed_methods() let nothing else through
  KvWrite w;
  w.op = KvWrite::Op::del;
  w.key = std::move(*key);
  w.client = *client;
  if (query.rfind("prev_revision=", 0) == 0) {
    std::optional<std::uint64_t> prev = parse_u64(query.substr(14));
    if (!prev || *prev == 0) return respond(bad_request("prev_revision: expected a revision"));
    w.expected_revision = prev;
  } else if (!query.empty()) {
    return respond(bad_request("unknown query parameter: " + std::string(query)));
  }
  return node.kv_write(std::move(w), std::move(write_done));
}

void route_members(const AdminRequest& req, std::string_view rest, NodeApi& node,
                   const std::function<void(AdminResponse)>& respond) {
  auto empty_done = replying<Empty>(respond, [](const Empty&) {
    return json_response(200, json::object{{"ok", true}});
  });
  if (rest.empty() && req.method == "GET") {
    json::array members;
    for (const MemberView& m : node.status().members) members.push_back(member_json(m));
    return respond(json_response(200, json::object{{"members", std::move(members)}}));
  }
  if (rest.empty() && req.method == "POST") {
    std::string error;
    std::optional<json::object> body = parse_object(req.body, error);
    if (!body || !only_fields(*body, {"id", "address", "learner"}, error)) {
      return respond(bad_request(error));
    }
    std::optional<std::uint64_t> id;
    if (!read_u64(*body, "id", id, error)) return respond(bad_request(error));
    if (!id || *id == 0) return respond(bad_request("id: missing or 0"));
    const json::value* address = body->if_contains("address");
    if (address == nullptr || !address->is_string()) {
      return respond(bad_request("address: missing or not a string (HOST:PORT)"));
    }
    const json::value* learner = body->if_contains("learner");
    if (learner != nullptr && !learner->is_bool()) {
      return respond(bad_request("learner: expected true or false"));
    }
    return node.members_add(*id, std::string(address->as_string()),
                            learner != nullptr && learner->as_bool(), std::move(empty_done));
  }
  ANYA_ASSERT(req.method == "DELETE");  // /v1/members/{id}: allowed_methods() saw to it
  std::optional<std::uint64_t> id = parse_u64(rest);
  if (!id || *id == 0) return respond(bad_request("member id: expected a positive number"));
  return node.members_remove(*id, std::move(empty_done));
}

void route_config(const AdminRequest& req, std::string_view rest, NodeApi& node,
                  const std::function<void(AdminResponse)>& respond) {
  auto config_done = replying<ConfigView>(respond, [](const ConfigView& c) {
    return json_response(200, config_json(c));
  });
  if (rest.empty() && req.method == "GET") return node.config_get(std::move(config_done));
  if (rest.empty() && req.method == "PUT") {
    std::string error;
    if (!parse_object(req.body, error)) return respond(bad_request("document: " + error));
    std::optional<std::uint64_t> if_version;
    if (!req.if_match.empty()) {
      std::string tag = req.if_match;
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
        tag = tag.substr(1, tag.size() - 2);
      }
      if_version = parse_u64(tag);
      if (!if_version) return respond(bad_request("If-Match: expected a version number"));
    }
    return node.config_put(req.body, if_version, std::move(config_done));
  }
  if (rest == "/rollback") {
    std::string error;
    std::optional<json::object> body = parse_object(req.body, error);
    if (!body || !only_fields(*body, {"version", "if_version"}, error)) {
      return respond(bad_request(error));
    }
    std::optional<std::uint64_t> version, if_version;
    if (!read_u64(*body, "version", version, error) ||
        !read_u64(*body, "if_version", if_version, error)) {
      return respond(bad_request(error));
    }
    if (!version || *version == 0) return respond(bad_request("version: missing or 0"));
    return node.config_rollback(*version, if_version, std::move(config_done));
  }
  ANYA_ASSERT(rest == "/history" && req.method == "GET");  // allowed_methods() saw to it
  return node.config_history(replying<std::vector<ConfigView>>(
      respond, [](const std::vector<ConfigView>& h) {
        json::array versions;
        for (const ConfigView& c : h) versions.push_back(config_json(c));
        return json_response(200, json::object{{"versions", std::move(versions)}});
      }));
}

void route_v1(const AdminRequest& req, std::string_view path, std::string_view query,
              NodeApi& node, const std::function<void(AdminResponse)>& respond) {
  if (path == "/v1/status") {
    return respond(json_response(200, status_json(node.status())));
  }
  if (path.rfind("/v1/kv/", 0) == 0) return route_kv(req, path.substr(7), query, node, respond);
  if (path.starts_with("/v1/utxo/") || path == "/v1/dlc" || path.starts_with("/v1/dlc/") ||
      path == "/v1/session") {
    return route_records(req, path, node, respond);
  }
  if (path == "/v1/members" || path.rfind("/v1/members/", 0) == 0) {
    std::string_view rest = path.substr(11);
    if (!rest.empty()) rest.remove_prefix(1);
    return route_members(req, rest, node, respond);
  }
  if (path == "/v1/config" || path.rfind("/v1/config/", 0) == 0) {
    return route_config(req, path.substr(10), node, respond);
  }
  if (path == "/v1/leader/transfer") {
    std::optional<std::uint64_t> to;
    if (!req.body.empty()) {
      std::string error;
      std::optional<json::object> body = parse_object(req.body, error);
      if (!body || !only_fields(*body, {"to"}, error) || !read_u64(*body, "to", to, error)) {
        return respond(bad_request(error));
      }
    }
    return node.leader_transfer(to, replying<NodeId>(respond, [](const NodeId& target) {
      return json_response(200, json::object{{"transferring_to", target}});
    }));
  }
  if (path == "/v1/audit/heads") {
    json::array heads;
    for (const KvEntryView& e : node.kv_scan(std::string(kAuditHeadKeyPrefix), kMaxMembersListed)) {
      boost::system::error_code ec;
      json::value v = json::parse(e.value, ec);
      if (ec || !v.is_object()) continue;
      v.as_object()["node"] = e.key.substr(kAuditHeadKeyPrefix.size());
      heads.push_back(std::move(v));
    }
    return respond(json_response(200, json::object{{"heads", std::move(heads)}}));
  }
  if (path == "/v1/lease") {
    return node.lease(replying<LeaseView>(respond, [](const LeaseView& l) {
      return json_response(200, json::object{{"holder", l.holder},
                                             {"fencing_token", l.fencing_token},
                                             {"valid", l.valid},
                                             {"valid_until_ms", l.valid_until_ms},
                                             {"remaining_ms", l.remaining_ms}});
    }));
  }
  if (path == "/v1/tokens" || path.rfind("/v1/tokens/", 0) == 0 || path == "/v1/ca" ||
      path == "/v1/join" || path == "/v1/audit/head") {
    return respond(error_response(ApiError{
        Status(Errc::unsupported, std::string(path) + " is served only by the admin listener")}));
  }
  ANYA_ASSERT(!"allowed_methods() lists a /v1 path that route_v1 does not handle");
}

bool path_matches(const EndpointRule& e, std::string_view path) {
  switch (e.match) {
    case EndpointRule::Match::exact: return path == e.path;
    case EndpointRule::Match::prefix: return path.starts_with(e.path);
    case EndpointRule::Match::child: return path.size() > e.path.size() && path.starts_with(e.path);
  }
  return false;
}

bool method_listed(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    const std::size_t comma = allow.find(", ");
    if (allow.substr(0, comma) == method) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 2);
  }
  return false;
}

// The methods the endpoint table lists for `path`, as an Allow header lists them; empty for an
// unknown path. The routers above rely on it: a request reaches them only with a listed method.
std::string allowed_methods(std::string_view path) {
  std::string out;
  for (const EndpointRule& e : admin_endpoints()) {
    if (!path_matches(e, path) || method_listed(out, e.method)) continue;
    if (!out.empty()) out += ", ";
    out += e.method;
  }
  return out;
}

}  // namespace

namespace {
using auth::Permission;
// GET, PUT and DELETE of one key are kv.*; listing or changing members, the configuration and
// tokens are the admin's; health and metrics are reads anyone bound to a role may do.
constexpr auto kExact = EndpointRule::Match::exact;
constexpr auto kPrefix = EndpointRule::Match::prefix;
constexpr auto kChild = EndpointRule::Match::child;
constexpr EndpointRule kEndpoints[] = {
    {"GET", "/healthz", kExact, Permission::health_read, false},
    {"GET", "/readyz", kExact, Permission::health_read, false},
    {"GET", "/metrics", kExact, Permission::metrics_read, false},
    {"GET", "/v1/status", kExact, Permission::status_read, false},
    {"GET", "/v1/kv/", kPrefix, Permission::kv_read, false},
    {"PUT", "/v1/kv/", kPrefix, Permission::kv_write, true},
    {"DELETE", "/v1/kv/", kPrefix, Permission::kv_write, true},
    {"GET", "/v1/members", kExact, Permission::members_read, false},
    {"POST", "/v1/members", kExact, Permission::members_write, true},
    {"GET", "/v1/members/", kExact, Permission::members_read, false},
    {"POST", "/v1/members/", kExact, Permission::members_write, true},
    {"DELETE", "/v1/members/", kChild, Permission::members_write, true},
    {"GET", "/v1/config", kExact, Permission::config_read, false},
    {"PUT", "/v1/config", kExact, Permission::config_write, true},
    {"POST", "/v1/config/rollback", kExact, Permission::config_write, true},
    {"GET", "/v1/config/history", kExact, Permission::config_read, false},
    {"POST", "/v1/leader/transfer", kExact, Permission::leader_transfer, true},
    {"GET", "/v1/lease", kExact, Permission::lease_read, false},
    {"GET", "/v1/utxo/", kChild, Permission::records_read, false},
    {"POST", "/v1/utxo/", kChild, Permission::records_write, true},
    {"POST", "/v1/dlc", kExact, Permission::records_write, true},
    {"GET", "/v1/dlc/", kChild, Permission::records_read, false},
    {"POST", "/v1/dlc/", kChild, Permission::records_write, true},
    {"POST", "/v1/session", kExact, Permission::session_open, true},
    {"GET", "/v1/tokens", kExact, Permission::tokens_manage, false},
    {"POST", "/v1/tokens", kExact, Permission::tokens_manage, true},
    {"DELETE", "/v1/tokens/", kChild, Permission::tokens_manage, true},
    {"GET", "/v1/ca", kExact, Permission::health_read, false, /*anonymous=*/true},
    {"GET", "/v1/audit/head", kExact, Permission::health_read, false, /*anonymous=*/true},
    {"GET", "/v1/audit/heads", kExact, Permission::status_read, false},
    {"POST", "/v1/join", kExact, Permission::node_join, true},
};
}  // namespace

std::span<const EndpointRule> admin_endpoints() { return kEndpoints; }

const EndpointRule* find_endpoint(std::string_view method, std::string_view path) {
  for (const EndpointRule& e : kEndpoints) {
    if (path_matches(e, path) && e.method == method) return &e;
  }
  return nullptr;
}

int http_status_for(Errc code) {
  switch (code) {
    case Errc::ok: return 200;
    case Errc::invalid_argument:
    case Errc::malformed:
    case Errc::unsupported: return 400;
    case Errc::not_found: return 404;
    case Errc::conflict: return 409;
    case Errc::not_leader: return 421;
    case Errc::busy: return 503;
    case Errc::io_error:
    case Errc::corrupt: return 500;
  }
  return 500;
}

AdminResponse error_response(const ApiError& error) {
  ANYA_ASSERT(!error.status.is_ok());
  json::object o;
  o["error"] = errc_name(error.status.code());
  o["message"] = json_safe(error.status.message());
  if (error.status.code() == Errc::not_leader) {
    if (error.leader == engine::kNoNode) o["leader"] = nullptr;
    else o["leader"] = error.leader;
    o["leader_admin"] = error.leader_admin;
  }
  return json_response(http_status_for(error.status.code()), o);
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); i++) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;  // needs two hex digits after '%'
    unsigned value = 0;
    auto [p, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || p != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

void route_admin_request(const AdminRequest& req, NodeApi& node,
                         std::function<void(AdminResponse)> respond) {
  if (req.target.size() > AdminLimits::max_target_bytes) {
    return respond(bad_request("request target longer than 4096 bytes"));
  }
  if (req.body.size() > AdminLimits::max_body_bytes) {
    return respond(bad_request("request body larger than 1 MiB"));
  }
  const std::size_t q = req.target.find('?');
  const std::string_view path = std::string_view(req.target).substr(0, q);
  const std::string_view query =
      q == std::string::npos ? std::string_view() : std::string_view(req.target).substr(q + 1);
  const std::string allow = allowed_methods(path);
  if (allow.empty()) {
    return respond(error_response(ApiError{Status(
        Errc::not_found, "no such endpoint: " + req.method + " " + std::string(path))}));
  }
  if (!method_listed(allow, req.method)) {
    AdminResponse r = json_response(
        405, json::object{{"error", "method_not_allowed"},
                          {"message", json_safe("method " + req.method + " not allowed on " +
                                                std::string(path) + " (it answers " +
                                                std::string(allow) + ")")}});
    r.allow = std::string(allow);
    return respond(std::move(r));
  }
  if (path == "/healthz") {
    const bool alive = node.alive();
    return respond(json_response(alive ? 200 : 503,
                                 json::object{{"status", alive ? "ok" : "stopped"}}));
  }
  if (path == "/readyz") {
    const StatusView s = node.status();
    json::object o{{"ready", s.ready}, {"quorum", s.quorum}, {"role", s.role}};
    if (!s.ready) {
      o["reason"] = !s.quorum ? "not part of a quorum" : "applying committed entries";
    }
    return respond(json_response(s.ready ? 200 : 503, o));
  }
  if (path == "/metrics") {
    return respond(AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                 node.metrics_text(), {}});
  }
  route_v1(req, path, query, node, respond);
}

namespace {

constexpr std::uint64_t kMaxTokenTtlSeconds = 10ull * 365 * 24 * 3600;
constexpr std::size_t kMaxListedTokens = 1000;

AdminResponse auth_refusal(const auth::AuthOutcome& outcome) {
  const bool unauthenticated = outcome.kind == auth::AuthOutcome::Kind::unauthenticated;
  return json_response(unauthenticated ? 401 : 403,
                       json::object{{"error", unauthenticated ? "unauthenticated" : "forbidden"},
                                    {"message", json_safe(outcome.reason)}});
}

json::value token_json(const auth::TokenRecord& r) {
  return json::object{{"id", r.id},
                      {"name", r.name},
                      {"role", r.role},
                      {"expires_unix_ms", r.expires_unix_ms},
                      {"created_by", r.created_by}};
}

// POST /v1/tokens {"name", "role", "ttl_seconds"}: a token is made here and stored (as a hash)
// by a create-only write under kTokenKeyPrefix; the secret is in this answer and nowhere else.
void create_token(const AdminRequest& req, NodeApi& node, const auth::Authorizer& authorizer,
                  const auth::Principal& by, const std::function<void(AdminResponse)>& respond) {
  std::string error;
  std::optional<json::object> body = parse_object(req.body, error);
  if (!body || !only_fields(*body, {"name", "role", "ttl_seconds"}, error)) {
    return respond(bad_request(error));
  }
  const json::value* name = body->if_contains("name");
  const json::value* role = body->if_contains("role");
  if (name == nullptr || !name->is_string() || name->as_string().empty() ||
      name->as_string().size() > auth::kMaxNameBytes) {
    return respond(bad_request("name: missing, or not a string of 1 to 64 characters"));
  }
  if (role == nullptr || !role->is_string() ||
      !authorizer.role_exists(std::string_view(role->as_string()))) {
    return respond(bad_request("role: missing or not a role of this cluster"));
  }
  // Nobody hands out more than they hold (node.join aside: join tokens are what admins make).
  for (auth::Permission p : auth::all_permissions()) {
    if (p != auth::Permission::node_join &&
        authorizer.role_allows(std::string_view(role->as_string()), p) &&
        !authorizer.role_allows(by.role, p)) {
      return respond(json_response(
          403, json::object{{"error", "forbidden"},
                            {"message", "role: " + std::string(role->as_string()) + " has " +
                                            auth::permission_name(p) + ", which " + by.actor +
                                            " does not"}}));
    }
  }
  std::optional<std::uint64_t> ttl;
  if (!read_u64(*body, "ttl_seconds", ttl, error)) return respond(bad_request(error));
  if (ttl && (*ttl == 0 || *ttl > kMaxTokenTtlSeconds)) {
    return respond(bad_request("ttl_seconds: must be 1 to " + std::to_string(kMaxTokenTtlSeconds)));
  }
  Result<auth::NewToken> token = auth::generate_token();
  if (!token) return respond(error_response(ApiError{token.status()}));
  auth::TokenRecord record{token->id, std::string(name->as_string()),
                           std::string(role->as_string()), token->sha256_hex,
                           ttl ? req.now_unix_ms + *ttl * 1000 : 0, by.actor};
  KvWrite w{KvWrite::Op::cas, std::string(auth::kTokenKeyPrefix) + record.id,
            auth::encode_token_record(record), 0};
  node.kv_write(std::move(w), replying<KvWriteResult>(respond, [record, secret = token->token](
                                                                  const KvWriteResult&) {
    json::value out = token_json(record);
    out.as_object()["token"] = secret;
    return json_response(201, out);
  }));
}

void route_tokens(const AdminRequest& req, std::string_view path, NodeApi& node,
                  const auth::Authorizer& authorizer, const auth::Principal& by,
                  const std::function<void(AdminResponse)>& respond) {
  if (path == "/v1/tokens" && req.method == "GET") {
    json::array tokens;
    for (const KvEntryView& e : node.kv_scan(std::string(auth::kTokenKeyPrefix),
                                             kMaxListedTokens)) {
      const std::string id = e.key.substr(auth::kTokenKeyPrefix.size());
      if (auto r = auth::decode_token_record(id, e.value)) tokens.push_back(token_json(*r));
    }
    return respond(json_response(200, json::object{{"tokens", std::move(tokens)}}));
  }
  if (path == "/v1/tokens") return create_token(req, node, authorizer, by, respond);
  ANYA_ASSERT(req.method == "DELETE");  // the endpoint table saw to it
  const std::string_view id = path.substr(std::string_view("/v1/tokens/").size());
  if (!auth::parse_runtime_token(std::string(auth::kTokenPrefix) + std::string(id) + "." +
                                 std::string(auth::kTokenSecretHexChars, '0'))) {
    return respond(bad_request("token id: expected 16 lowercase hex characters"));
  }
  KvWrite w{KvWrite::Op::del, std::string(auth::kTokenKeyPrefix) + std::string(id), {}, {}};
  node.kv_write(std::move(w), replying<KvWriteResult>(respond, [](const KvWriteResult&) {
    return json_response(200, json::object{{"revoked", true}});
  }));
}

constexpr std::size_t kMaxJoinSans = 16;

// ["10.0.0.4", ...] -> strings; false (with `error`) if present but not a list of strings.
bool read_strings(const json::object& o, std::string_view field, std::vector<std::string>& out,
                  std::string& error) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return true;
  if (!v->is_array() || v->as_array().size() > kMaxJoinSans) {
    error = std::string(field) + ": expected a list of at most 16 strings";
    return false;
  }
  for (const json::value& e : v->as_array()) {
    if (!e.is_string()) {
      error = std::string(field) + ": expected a list of strings";
      return false;
    }
    out.emplace_back(e.as_string());
  }
  return true;
}

// The one-time token is spent before anything is signed: a compare-and-delete at the revision
// it was read at, so a token used twice, even at once through two nodes, signs once.
void join_node(const AdminRequest& req, NodeApi& node, const auth::Principal& by,
               const NodeServices* join, const std::function<void(AdminResponse)>& respond) {
  if (join == nullptr || join->issuer == nullptr) {
    return respond(bad_request("this node cannot issue certificates (tls.ca_key is not set "
                               "here); send the join to a node that has the CA key"));
  }
  constexpr std::string_view kBearer = "Bearer ";
  const std::string_view authorization = req.caller.authorization;
  const std::optional<auth::ParsedToken> token =
      authorization.starts_with(kBearer)
          ? auth::parse_runtime_token(authorization.substr(kBearer.size()))
          : std::nullopt;
  if (by.role != auth::kJoinRole || !token) {
    return respond(json_response(403, json::object{
        {"error", "forbidden"},
        {"message", "joining needs a one-time join token (anya-ha ctl token create --join)"}}));
  }
  std::string error;
  std::optional<json::object> body = parse_object(req.body, error);
  std::vector<std::string> ips, dns;
  std::optional<std::uint64_t> id;
  if (!body || !only_fields(*body, {"node_id", "csr", "ip", "dns"}, error) ||
      !read_u64(*body, "node_id", id, error) || !read_strings(*body, "ip", ips, error) ||
      !read_strings(*body, "dns", dns, error)) {
    return respond(bad_request(error));
  }
  const json::value* csr = body->if_contains("csr");
  if (!id || *id == 0 || *id > engine::kMaxNodeId) {
    return respond(bad_request("node_id: missing or outside 1.." +
                               std::to_string(engine::kMaxNodeId)));
  }
  if (csr == nullptr || !csr->is_string()) return respond(bad_request("csr: missing (PEM)"));
  for (const MemberView& m : node.status().members) {
    if (m.id == *id) {
      return respond(error_response(ApiError{Status(
          Errc::conflict, "node_id: node " + std::to_string(*id) +
                              " is already a member; a joining node needs an id of its own")}));
    }
  }
  const std::string key = std::string(auth::kTokenKeyPrefix) + token->id;
  const std::vector<KvEntryView> found = node.kv_scan(key, 1);
  if (found.empty() || found[0].key != key) {
    return respond(error_response(ApiError{Status(Errc::conflict, "join token already used")}));
  }
  // Signed first (no side effect, and a bad request is refused before the token is touched),
  // handed out only once the token is spent.
  Result<std::string> cert = join->issuer->issue_node(std::string(csr->as_string()), *id, dns,
                                                      ips);
  if (!cert) return respond(error_response(ApiError{cert.status()}));
  KvWrite spend{KvWrite::Op::del, key, {}, found[0].mod_revision};
  node.kv_write(std::move(spend), [join, id = *id, cert = std::move(*cert),
                                   respond](ApiResult<KvWriteResult> r) {
    if (!r.ok()) {
      if (r.error.status.code() == Errc::conflict || r.error.status.code() == Errc::not_found) {
        return respond(error_response(ApiError{Status(Errc::conflict, "join token already used")}));
      }
      return respond(error_response(r.error));
    }
    respond(json_response(201, json::object{{"node_id", id},
                                            {"certificate", cert},
                                            {"ca", join->ca_pem}}));
  });
}

// The "message" of an error answer (messages name fields and ids, never values).
std::string error_message_of(const AdminResponse& r) {
  boost::system::error_code ec;
  const json::value v = json::parse(r.body, ec);
  const json::value* m = !ec && v.is_object() ? v.as_object().if_contains("message") : nullptr;
  return m != nullptr && m->is_string() ? std::string(m->as_string()) : std::string();
}

AuditEvent audit_event(const AdminRequest& req, std::string_view path,
                       const auth::AuthOutcome& outcome, std::string action) {
  AuditEvent e;
  e.actor = outcome.principal.actor.empty() ? "anonymous" : outcome.principal.actor;
  e.role = outcome.principal.role;
  e.action = std::move(action);
  e.target = req.method + " " + std::string(path);
  e.source = req.caller.source;
  return e;
}

}  // namespace

void serve_admin_request(const AdminRequest& req, NodeApi& node,
                         const auth::Authorizer& authorizer, AuditSink& audit,
                         std::function<void(AdminResponse)> respond, const NodeServices* join) {
  const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  const EndpointRule* rule = find_endpoint(req.method == "HEAD" ? "GET" : req.method, path);
  if (rule == nullptr) return route_admin_request(req, node, std::move(respond));  // 404, 405
  if (rule->anonymous) {
    ANYA_ASSERT(!rule->mutates);
    if (path == "/v1/audit/head" && join != nullptr && join->audit_head) {
      return respond(AdminResponse{200, "application/json", join->audit_head() + "\n", {}});
    }
    if (path == "/v1/ca" && join != nullptr && !join->ca_pem.empty()) {
      return respond(json_response(200, json::object{{"ca", join->ca_pem}}));
    }
    return respond(error_response(
        ApiError{Status(Errc::unsupported, std::string(path) + ": not kept by this node")}));
  }
  const auth::AuthOutcome outcome =
      authorizer.check(req.caller, rule->permission, req.now_unix_ms);
  if (outcome.kind != auth::AuthOutcome::Kind::ok) {
    AuditEvent e = audit_event(req, path, outcome,
                               outcome.kind == auth::AuthOutcome::Kind::unauthenticated
                                   ? "auth.unauthenticated"
                                   : "auth.forbidden");
    e.outcome = "refused";
    e.detail = outcome.reason;
    (void)audit.record(e);  // a refusal is refused whether or not it could be recorded
    return respond(auth_refusal(outcome));
  }
  if (rule->mutates) {
    AuditEvent e = audit_event(req, path, outcome, auth::permission_name(rule->permission));
    e.outcome = "requested";
    if (Status s = audit.record(e); !s) {
      return respond(error_response(
          ApiError{Status(Errc::busy, "refused: the audit log cannot record it: " + s.message())}));
    }
    respond = [respond = std::move(respond), &audit, e](AdminResponse r) mutable {
      e.outcome = r.status < 300 ? "ok" : "failed: " + std::to_string(r.status);
      if (r.status >= 300) e.detail = error_message_of(r);
      (void)audit.record(e);
      respond(std::move(r));
    };
  }
  if (path == "/v1/tokens" || path.starts_with("/v1/tokens/")) {
    return route_tokens(req, path, node, authorizer, outcome.principal, respond);
  }
  if (path == "/v1/join") return join_node(req, node, outcome.principal, join, respond);
  route_admin_request(req, node, std::move(respond));
}

void ReplayGuard::expire(std::uint64_t now_ms) {
  while (!by_time_.empty() &&
         (by_time_.begin()->first + kKeepMs <= now_ms || entries_.size() > kMaxEntries)) {
    auto it = entries_.find(by_time_.begin()->second);
    if (it != entries_.end() && it->second.at_ms == by_time_.begin()->first) entries_.erase(it);
    by_time_.erase(by_time_.begin());
  }
}

ReplayGuard::Verdict ReplayGuard::begin(const std::string& caller, const std::string& key,
                                        const std::string& fingerprint, std::uint64_t now_ms,
                                        AdminResponse* replay) {
  ANYA_ASSERT(replay != nullptr);
  expire(now_ms);
  auto [it, fresh] = entries_.try_emplace({caller, key});
  if (fresh) {
    it->second = Entry{fingerprint, now_ms, std::nullopt};
    by_time_.emplace(now_ms, it->first);
    return Verdict::fresh;
  }
  if (it->second.fingerprint != fingerprint) return Verdict::mismatch;
  if (!it->second.answer) return Verdict::in_flight;
  *replay = *it->second.answer;
  return Verdict::replay;
}

void ReplayGuard::finish(const std::string& caller, const std::string& key,
                         const AdminResponse& answer) {
  auto it = entries_.find({caller, key});
  if (it == entries_.end()) return;  // expired meanwhile
  // Only an answer that says what happened is kept: after a 5xx or a not_leader the client may
  // try again with the same key.
  if (answer.status >= 500 || answer.status == 421) {
    entries_.erase(it);
    return;
  }
  it->second.answer = answer;
}

void serve_admin_request_once(const AdminRequest& req, NodeApi& node,
                              const auth::Authorizer& authorizer, AuditSink& audit,
                              ReplayGuard& guard, std::function<void(AdminResponse)> respond,
                              const NodeServices* join) {
  if (req.idempotency_key.empty() || req.method == "GET" || req.method == "HEAD") {
    return serve_admin_request(req, node, authorizer, audit, std::move(respond), join);
  }
  if (req.idempotency_key.size() > ReplayGuard::kMaxKeyBytes) {
    return respond(bad_request("Idempotency-Key: longer than 128 bytes"));
  }
  const std::string caller = req.caller.authorization.empty()
                                 ? (req.caller.client_name ? "client:" + *req.caller.client_name
                                                           : "source:" + req.caller.source)
                                 : "token:" + auth::sha256_hex(req.caller.authorization);
  // Only an authorized mutation is remembered: a stranger cannot fill the guard.
  const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  const EndpointRule* rule = find_endpoint(req.method, path);
  if (rule == nullptr || rule->anonymous ||
      authorizer.check(req.caller, rule->permission, req.now_unix_ms).kind !=
          auth::AuthOutcome::Kind::ok) {
    return serve_admin_request(req, node, authorizer, audit, std::move(respond), join);
  }
  const std::string fingerprint =
      auth::sha256_hex(req.method + " " + req.target + "\n" + req.body);
  AdminResponse replay;
  switch (guard.begin(caller, req.idempotency_key, fingerprint, req.now_unix_ms, &replay)) {
    case ReplayGuard::Verdict::replay:
      return respond(std::move(replay));
    case ReplayGuard::Verdict::in_flight:
      return respond(json_response(
          409, json::object{{"error", "conflict"},
                            {"message", "Idempotency-Key: the first request with this key is "
                                        "still running; ask again for its answer"}}));
    case ReplayGuard::Verdict::mismatch:
      return respond(json_response(
          422, json::object{{"error", "invalid_argument"},
                            {"message", "Idempotency-Key: already used for another request"}}));
    case ReplayGuard::Verdict::fresh:
      break;
  }
  serve_admin_request(
      req, node, authorizer, audit,
      [&guard, caller, key = req.idempotency_key, respond = std::move(respond)](AdminResponse r) {
        guard.finish(caller, key, r);
        respond(std::move(r));
      },
      join);
}

}  // namespace anya::transport

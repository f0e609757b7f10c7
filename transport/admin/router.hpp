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
#include <string>

#include "transport/node/api.hpp"

namespace anya::transport {

struct AdminRequest {
  std::string method;   // "GET", "PUT", ...
  std::string target;   // path and query, as sent: "/v1/kv/a%2Fb?prev_revision=3"
  std::string if_match; // the If-Match header, if any
  std::string body;
};

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

// Handles one request. `respond` is called exactly once, possibly later. An unknown path gets
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

// The admin API's HTTPS listener: TLS 1.3; a client certificate from the cluster CA, or none
// and a bearer token on each request (the authorizer decides what either may do), HTTP/1.1
// keep-alive, one
// request at a time per connection, bounded header and body sizes and timeouts. Requests go to
// the router (router.hpp); this file only moves bytes. Runs on the node's io_context thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/log/log.hpp"
#include "transport/admin/router.hpp"
#include "transport/node/api.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace anya::transport {

struct AdminServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: pick a free port (tests)
  std::shared_ptr<boost::asio::ssl::context> tls;
  // From accept to a finished TLS handshake, the first byte included: ample for a client, and
  // a connection that never speaks gives its slot back soon.
  std::uint64_t handshake_timeout_ms = 3000;
  std::uint64_t idle_timeout_ms = 60000;
  // Admission (transport/net/connection_gate.hpp). Connections still in their handshake are
  // capped in total and per client address; at a cap one of them (the oldest, from the address
  // holding the most) is closed to admit the newcomer, so idle connections cannot lock a
  // client out. Only when all max_connections
  // are past their handshake is a newcomer refused (accepted and closed at once).
  std::size_t max_connections = 256;
  std::size_t max_unauthenticated = 64;
  std::size_t max_unauthenticated_per_source = 32;
  // Who may do what, and where mutations and refusals are recorded. Both set in production;
  // without an authorizer every request is served (tests of the transport alone).
  const auth::Authorizer* authorizer = nullptr;
  AuditSink* audit = nullptr;
  const NodeServices* join = nullptr;  // GET /v1/ca, POST /v1/join
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, NodeApi& node, AdminServerOptions options, Logger log);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Errc::io_error naming the address if it cannot listen.
  Status start();
  std::uint16_t port() const;
  // New TLS context for connections accepted from now on (a reload).
  void set_tls(std::shared_ptr<boost::asio::ssl::context> tls);
  // Stops accepting and closes every connection.
  void stop();

  // For metrics: connections the gate refused, evicted or saw time out, by reason
  // ("evicted_unauthenticated", "refused_full", "handshake_timeout", "idle_timeout"), and the
  // connections open now (handshaking or not).
  std::map<std::string, std::uint64_t> refusals() const;
  std::size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace anya::transport

// The admin API's HTTPS listener: TLS 1.3 with client certificates required (any identity the
// cluster CA signed: an operator's client certificate or a node's), HTTP/1.1 keep-alive, one
// request at a time per connection, bounded header and body sizes and timeouts. Requests go to
// the router (router.hpp); this file only moves bytes. Runs on the node's io_context thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/log/log.hpp"
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
  std::uint64_t handshake_timeout_ms = 5000;
  std::uint64_t idle_timeout_ms = 60000;
  std::size_t max_connections = 256;  // more are accepted and closed at once
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
  // Stops accepting and closes every connection.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace anya::transport

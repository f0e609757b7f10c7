// The optional unauthenticated listener (admin.health_listen): plain HTTP/1.1 serving only
// GET/HEAD /healthz, /readyz and /metrics, so load balancers, Kubernetes probes and Prometheus
// can use them without an admin credential (as etcd's --listen-metrics-urls does). Everything
// else gets 404 and never reaches the node. It is off unless configured; bind it to an address
// only the monitoring network reaches.
//
// Bounded like the admin listener: at most `max_connections` at once (past it the oldest is
// closed, so a flood cannot keep a probe out), a deadline to send a request, no request body.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/log/log.hpp"
#include "transport/node/api.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport {

struct HealthServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: pick a free port (tests)
  std::uint64_t request_timeout_ms = 5000;  // to send a whole request, and between requests
  std::size_t max_connections = 64;
};

class HealthServer {
 public:
  HealthServer(boost::asio::io_context& io, NodeApi& node, HealthServerOptions options,
               Logger log);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  Status start();  // Errc::io_error naming the address if it cannot listen
  std::uint16_t port() const;
  void stop();
  // "evicted_oldest", "not_served" (a path outside the three).
  const std::map<std::string, std::uint64_t>& refusals() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The paths the health listener serves.
bool is_health_path(std::string_view path);

}  // namespace anya::transport

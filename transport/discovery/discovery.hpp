// The Discovery service: runs the configured methods ([discovery] methods) on the node's
// io_context, merges what they report (engine/discovery/discovered_peers.hpp: by node id,
// moves followed, a failed method keeps what it had) and tells the node what changed. It also
// keeps the metrics and the status an operator reads:
//   anya_discovery_peers{method}                   peers the method proposes now
//   anya_discovery_errors_total{method,reason}     failed reports and refused inputs, by reason
//   anya_discovery_last_success_seconds{method}    seconds since the method last worked (NaN:
//                                                  never)
//   anya_discovery_known_peers                     peers in the merged view
// Discovery only proposes: the node dials what it proposes for members (and, while joining,
// for seeds); every link still passes mutual TLS, and no member is ever added or removed here.
//
// One thread: the io_context's. stop() before the io_context is destroyed.
#pragma once

#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "engine/discovery/discovered_peers.hpp"
#include "transport/config/node_config.hpp"
#include "transport/discovery/method.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport {
namespace metrics {
class Registry;
}

namespace discovery {

struct DiscoveryOptions {
  engine::NodeId self = engine::kNoNode;
  std::string cluster;
  HostPort advertise;                  // announced by multicast
  std::vector<StaticMember> members;   // the static method's list
  DiscoveryConfig config;
  std::function<const char*(const char*)> getenv;  // default: the process's environment
};

using ChangesFn = std::function<void(const std::vector<engine::discovery::PeerChange>&)>;

class Discovery {
 public:
  static constexpr std::uint64_t kHousekeepingMs = 1000;  // expiry and the age gauges

  // `registry` may be null (no metrics).
  Discovery(boost::asio::io_context& io, DiscoveryOptions options, Logger log,
            metrics::Registry* registry);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Builds and starts every method. Errors name the field (a secret file that cannot be read,
  // no nameserver, no API server address); then nothing runs.
  Status start(ChangesFn on_change);
  // Builds the methods from `methods` instead of the configuration (tests).
  Status start_with(std::vector<std::unique_ptr<Method>> methods, ChangesFn on_change);
  void stop();

  const engine::discovery::DiscoveredPeers& peers() const;
  // True when a method other than the static list runs: only then does the node dial members
  // at discovered addresses (with the static list alone it behaves exactly as before).
  bool follows() const { return follows_; }
  // {"methods": [{"method", "ok", "peers", "last_success_ms_ago", "consecutive_failures",
  //   "last_error", "last_reason"}], "peers": [{"id", "address", "method", "methods"}]}
  boost::json::value status_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool follows_ = false;
};

// The static list as a method: it reports `members` once, at start.
std::unique_ptr<Method> make_static_method(boost::asio::io_context& io,
                                           std::vector<StaticMember> members);

}  // namespace discovery
}  // namespace anya::transport

// Multicast announcements: every interval (with ±10% jitter, so nodes started together do not
// stay in step) the node sends one datagram to GROUP:PORT (TTL 1: it never leaves the link;
// IP_MULTICAST_LOOP on, so nodes on one host hear each other) saying "node N of cluster C
// listens for peers at ADDRESS", authenticated with the cluster secret (announcement.hpp). It
// hears the others' on the same group; what engine/discovery/announcement_filter.hpp accepts
// becomes an incremental report, expiring after three intervals. What it refuses is counted by
// reason (drops(): "malformed", "wrong_cluster", "bad_mac", "outside_window", "replayed"; its
// own announcements, looped back, are not counted) and logged at most once a minute per reason.
#pragma once

#include <functional>
#include <memory>

#include "transport/discovery/method.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport::discovery {

struct MulticastOptions {
  std::string cluster;
  engine::NodeId self = engine::kNoNode;
  std::string advertise;                 // HOST:PORT of this node's peer listener
  std::string group = "239.255.42.99";
  std::uint16_t port = 7199;
  std::string interface = "0.0.0.0";
  std::uint64_t interval_ms = 2000;
  std::string secret;                    // at least kMinSecretBytes
  std::uint64_t replay_window_ms = 30'000;
  // This node's wall clock, ms since the epoch (tests skew it); default: the system clock.
  std::function<std::uint64_t()> wall_clock_ms;
};

inline constexpr std::uint64_t kAnnouncementLifetimeIntervals = 3;

std::unique_ptr<Method> make_multicast_method(boost::asio::io_context& io,
                                              MulticastOptions options, Logger log);

}  // namespace anya::transport::discovery

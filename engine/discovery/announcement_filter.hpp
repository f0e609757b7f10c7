// Which multicast announcements a node believes. An announcement says "node N of cluster C
// listens for peers at ADDRESS" at wall-clock time T with a random nonce, and carries an
// HMAC-SHA256 of the cluster secret over all of it (transport/discovery/announcement.hpp checks
// the MAC and hands the verdict in). Pure: the time and the MAC's verdict are arguments.
//
// Dropped, each counted by its own reason, in this order:
//   wrong_cluster  another cluster's name (checked first: a neighbour cluster sharing the group
//                  is a configuration matter, not an attack, and says so in the metrics);
//   bad_mac        not made with this cluster's secret (a stranger on the LAN);
//   outside_window T further than the replay window from this node's clock, either way;
//   replayed       the same (node, nonce) again within the window;
//   own            this node's own announcement, looped back.
// A replay inside the window is caught by the nonce memory, which is bounded: past
// kMaxRememberedNonces the oldest nonces are forgotten. An authentic announcement replayed
// after that can only re-propose an address the node itself announced within the window.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "engine/base/types.hpp"

namespace anya::engine::discovery {

struct Announcement {
  std::string cluster;
  NodeId node = kNoNode;
  std::string address;            // HOST:PORT of its peer listener
  std::uint64_t timestamp_ms = 0; // sender's wall clock, ms since the Unix epoch
  std::uint64_t nonce = 0;

  friend bool operator==(const Announcement&, const Announcement&) = default;
};

enum class Verdict { accepted, wrong_cluster, bad_mac, outside_window, replayed, own };
const char* verdict_name(Verdict verdict);

class AnnouncementFilter {
 public:
  static constexpr std::size_t kMaxRememberedNonces = 4096;

  AnnouncementFilter(std::string cluster, NodeId self, std::uint64_t replay_window_ms);

  // `mac_ok`: the MAC verified with this cluster's secret. `now_wall_ms`: this node's wall
  // clock (ms since the epoch). Remembers the nonce of every announcement it accepts.
  Verdict check(const Announcement& a, bool mac_ok, std::uint64_t now_wall_ms);
  std::size_t remembered() const { return by_time_.size(); }

 private:
  void forget_before(std::uint64_t oldest_ms);

  std::string cluster_;
  NodeId self_;
  std::uint64_t window_ms_;
  // (timestamp, node, nonce), oldest first; Invariant: the same keys as seen_.
  std::set<std::tuple<std::uint64_t, NodeId, std::uint64_t>> by_time_;
  std::set<std::pair<NodeId, std::uint64_t>> seen_;
};

}  // namespace anya::engine::discovery

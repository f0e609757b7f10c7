#include "engine/discovery/announcement_filter.hpp"

#include <tuple>

namespace anya::engine::discovery {

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::accepted: return "accepted";
    case Verdict::wrong_cluster: return "wrong_cluster";
    case Verdict::bad_mac: return "bad_mac";
    case Verdict::outside_window: return "outside_window";
    case Verdict::replayed: return "replayed";
    case Verdict::own: return "own";
  }
  return "?";
}

AnnouncementFilter::AnnouncementFilter(std::string cluster, NodeId self,
                                       std::uint64_t replay_window_ms)
    : cluster_(std::move(cluster)), self_(self), window_ms_(replay_window_ms) {
  ANYA_ASSERT(!cluster_.empty());
  ANYA_ASSERT(self_ != kNoNode);
  ANYA_ASSERT(window_ms_ > 0);
}

void AnnouncementFilter::forget_before(std::uint64_t oldest_ms) {
  while (!by_time_.empty() && std::get<0>(*by_time_.begin()) < oldest_ms) {
    const auto& [t, node, nonce] = *by_time_.begin();
    seen_.erase({node, nonce});
    by_time_.erase(by_time_.begin());
  }
}

Verdict AnnouncementFilter::check(const Announcement& a, bool mac_ok, std::uint64_t now_wall_ms) {
  if (a.cluster != cluster_) return Verdict::wrong_cluster;
  if (!mac_ok) return Verdict::bad_mac;
  const std::uint64_t age_ms =
      a.timestamp_ms > now_wall_ms ? a.timestamp_ms - now_wall_ms : now_wall_ms - a.timestamp_ms;
  if (age_ms > window_ms_) return Verdict::outside_window;
  forget_before(now_wall_ms > window_ms_ ? now_wall_ms - window_ms_ : 0);
  if (seen_.count({a.node, a.nonce}) != 0) return Verdict::replayed;
  if (a.node == self_) return Verdict::own;
  if (by_time_.size() >= kMaxRememberedNonces) {
    const auto& [t, node, nonce] = *by_time_.begin();
    seen_.erase({node, nonce});
    by_time_.erase(by_time_.begin());
  }
  seen_.insert({a.node, a.nonce});
  by_time_.insert({a.timestamp_ms, a.node, a.nonce});
  ANYA_ASSERT(seen_.size() == by_time_.size());
  return Verdict::accepted;
}

}  // namespace anya::engine::discovery

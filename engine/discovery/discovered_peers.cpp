#include "engine/discovery/discovered_peers.hpp"

#include <algorithm>
#include <set>

namespace anya::engine::discovery {

namespace {
std::string cut(std::string text) {
  if (text.size() > DiscoveryLimits::max_error_bytes) {
    text.resize(DiscoveryLimits::max_error_bytes - 3);
    text += "...";
  }
  return text;
}
}  // namespace

MethodReport MethodReport::success(std::string method, std::vector<Proposal> peers) {
  MethodReport r;
  r.method = std::move(method);
  r.ok = true;
  r.peers = std::move(peers);
  return r;
}

MethodReport MethodReport::announcement(std::string method, Proposal peer) {
  MethodReport r = success(std::move(method), {std::move(peer)});
  r.incremental = true;
  return r;
}

MethodReport MethodReport::failure(std::string method, std::string reason, std::string error) {
  ANYA_ASSERT(!reason.empty());
  MethodReport r;
  r.method = std::move(method);
  r.reason = std::move(reason);
  r.error = std::move(error);
  return r;
}

const char* change_kind_name(PeerChange::Kind kind) {
  switch (kind) {
    case PeerChange::Kind::added: return "added";
    case PeerChange::Kind::address_changed: return "address_changed";
    case PeerChange::Kind::removed: return "removed";
  }
  return "?";
}

DiscoveredPeers::DiscoveredPeers(std::vector<std::string> methods) : names_(std::move(methods)) {
  ANYA_ASSERT(!names_.empty());
  ANYA_ASSERT(names_.size() <= DiscoveryLimits::max_methods);
  ANYA_ASSERT(std::set<std::string>(names_.begin(), names_.end()).size() == names_.size());
  methods_.resize(names_.size());
  for (const std::string& name : names_) {
    MethodStatus s;
    s.method = name;
    statuses_.push_back(std::move(s));
  }
}

const MethodStatus* DiscoveredPeers::status(const std::string& method) const {
  for (const MethodStatus& s : statuses_) {
    if (s.method == method) return &s;
  }
  return nullptr;
}

std::size_t DiscoveredPeers::entries(const std::string& method) const {
  const auto it = std::find(names_.begin(), names_.end(), method);
  return it == names_.end() ? 0 : methods_[static_cast<std::size_t>(it - names_.begin())]
                                      .entries.size();
}

std::optional<std::string> DiscoveredPeers::last_known(NodeId id) const {
  const auto it = remembered_.find(id);
  if (it == remembered_.end()) return std::nullopt;
  return it->second.second;
}

Status DiscoveredPeers::check(const MethodReport& report) const {
  if (report.peers.size() > DiscoveryLimits::max_peers_per_report) {
    return {Errc::invalid_argument, std::to_string(report.peers.size()) + " peers, more than " +
                                        std::to_string(DiscoveryLimits::max_peers_per_report)};
  }
  std::map<NodeId, const std::string*> seen;
  for (const Proposal& p : report.peers) {
    if (p.id == kNoNode || p.id > kMaxNodeId) {
      return {Errc::invalid_argument, "node id " + std::to_string(p.id) + " is out of range"};
    }
    if (p.address.empty() || p.address.size() > DiscoveryLimits::max_address_bytes ||
        p.address.find(':') == std::string::npos) {
      return {Errc::invalid_argument, "node " + std::to_string(p.id) + ": address \"" +
                                          cut(p.address) + "\" is not HOST:PORT"};
    }
    auto [it, fresh] = seen.emplace(p.id, &p.address);
    if (!fresh && *it->second != p.address) {
      return {Errc::invalid_argument, "node " + std::to_string(p.id) + " is proposed at two "
                                      "addresses (" + *it->second + " and " + p.address + ")"};
    }
  }
  return {};
}

void DiscoveredPeers::fail(std::size_t index, const std::string& reason, const std::string& error,
                           std::uint64_t now_ms) {
  ANYA_ASSERT(index < statuses_.size());
  ANYA_ASSERT(!reason.empty());
  MethodStatus& s = statuses_[index];
  s.failures++;
  s.consecutive_failures++;
  s.last_failure_ms = now_ms;
  s.last_reason = reason;
  s.last_error = cut(error.empty() ? reason : error);
}

void DiscoveredPeers::put(Method& method, const Proposal& p, std::uint64_t now_ms) {
  auto [entry, fresh] = method.entries.try_emplace(p.id);
  Entry& e = entry->second;
  if (fresh || e.address != p.address) {
    auto [seen, first] = method.seen.try_emplace(p.id, Seen{p.address, 0});
    // A move is a different address than this method last reported for the node; its first
    // report of the node is not one.
    if (!first && seen->second.address != p.address) seen->second = {p.address, now_ms};
    e.address = p.address;
    e.since_ms = seen->second.since_ms;
  }
  e.expires_ms = p.expires_ms;
  e.priority = p.priority;
  e.weight = p.weight;
  if (method.seen.size() > DiscoveryLimits::max_seen_per_method) {
    std::erase_if(method.seen, [&](const auto& kv) { return method.entries.count(kv.first) == 0; });
  }
  ANYA_ASSERT(method.seen.count(p.id) == 1);
}

std::vector<PeerChange> DiscoveredPeers::apply(const MethodReport& report,
                                               std::uint64_t now_ms) {
  const auto found = std::find(names_.begin(), names_.end(), report.method);
  ANYA_ASSERT(found != names_.end());
  const auto index = static_cast<std::size_t>(found - names_.begin());
  if (!report.ok) {
    fail(index, report.reason, report.error, now_ms);
    return {};  // a failed method keeps its entries, so the view cannot change
  }
  if (Status s = check(report); !s) {
    const bool too_many = report.peers.size() > DiscoveryLimits::max_peers_per_report;
    fail(index, too_many ? "too_many_peers" : "invalid", s.message(), now_ms);
    return {};
  }
  Method& method = methods_[index];
  if (report.incremental) {
    for (const Proposal& p : report.peers) {
      if (p.expires_ms > now_ms) put(method, p, now_ms);
    }
  } else {
    std::map<NodeId, Entry> previous = std::move(method.entries);
    method.entries.clear();
    for (const Proposal& p : report.peers) {
      if (auto old = previous.find(p.id); old != previous.end()) {
        method.entries.emplace(p.id, old->second);
      }
      put(method, p, now_ms);
    }
  }
  MethodStatus& s = statuses_[index];
  s.successes++;
  s.consecutive_failures = 0;
  s.last_success_ms = now_ms;
  s.last_error.clear();
  s.last_reason.clear();
  s.peers = method.entries.size();
  return remerge();
}

std::vector<PeerChange> DiscoveredPeers::expire(std::uint64_t now_ms) {
  bool any = false;
  for (std::size_t i = 0; i < methods_.size(); i++) {
    std::map<NodeId, Entry>& entries = methods_[i].entries;
    const std::size_t before = entries.size();
    std::erase_if(entries, [now_ms](const auto& kv) { return kv.second.expires_ms <= now_ms; });
    statuses_[i].peers = entries.size();
    any = any || entries.size() != before;
  }
  return any ? remerge() : std::vector<PeerChange>{};
}

std::vector<PeerChange> DiscoveredPeers::remerge() {
  std::map<NodeId, PeerView> next;
  for (std::size_t i = 0; i < methods_.size(); i++) {
    for (const auto& [id, e] : methods_[i].entries) {
      auto [it, fresh] = next.try_emplace(id);
      PeerView& v = it->second;
      v.methods.push_back(names_[i]);
      // Strictly more recent move only: on a tie the method listed first (visited first) wins.
      if (fresh || e.since_ms > v.since_ms) {
        v.id = id;
        v.address = e.address;
        v.method = names_[i];
        v.since_ms = e.since_ms;
        v.priority = e.priority;
        v.weight = e.weight;
      }
    }
  }
  std::vector<PeerChange> changes;
  for (const auto& [id, v] : next) {
    ANYA_ASSERT(v.id == id);
    const auto old = view_.find(id);
    if (old == view_.end()) {
      changes.push_back({PeerChange::Kind::added, id, v.address, "", v.method});
    } else if (old->second.address != v.address) {
      changes.push_back({PeerChange::Kind::address_changed, id, v.address,
                         old->second.address, v.method});
    }
  }
  for (const auto& [id, v] : view_) {
    if (next.count(id) == 0) {
      changes.push_back({PeerChange::Kind::removed, id, v.address, "", v.method});
    }
  }
  view_ = std::move(next);
  for (const auto& [id, v] : view_) remember(id, v.address);
  return changes;
}

std::map<NodeId, std::string> DiscoveredPeers::dial_addresses(
    const std::map<NodeId, std::string>& membership, const std::map<NodeId, std::string>& seeds,
    NodeId self) const {
  std::map<NodeId, std::string> out;
  if (membership.empty()) {
    out = seeds;
    for (const auto& [id, v] : view_) out.try_emplace(id, v.address);
    return out;
  }
  out = membership;
  for (auto& [id, address] : out) {
    if (id == self) continue;
    if (const auto v = view_.find(id); v != view_.end()) {
      address = v->second.address;
    } else if (std::optional<std::string> known = last_known(id)) {
      address = *known;
    }
  }
  ANYA_ASSERT(out.size() == membership.size());
  return out;
}

void DiscoveredPeers::remember(NodeId id, const std::string& address) {
  auto [it, fresh] = remembered_.try_emplace(id);
  if (!fresh) by_stamp_.erase(it->second.first);
  it->second = {++remember_stamp_, address};
  by_stamp_.emplace(remember_stamp_, id);
  ANYA_ASSERT(by_stamp_.size() == remembered_.size());
  if (remembered_.size() <= DiscoveryLimits::max_remembered) return;
  // Forget the node longest out of the view (the oldest stamp). The view is smaller than the
  // bound, so past it there is always one outside the view; at most view-size are skipped.
  for (auto old = by_stamp_.begin(); old != by_stamp_.end(); ++old) {
    if (view_.count(old->second) != 0) continue;
    remembered_.erase(old->second);
    by_stamp_.erase(old);
    return;
  }
  ANYA_ASSERT(false);  // unreachable: see above
}

}  // namespace anya::engine::discovery

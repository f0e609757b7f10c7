#include "transport/net/connection_gate.hpp"

#include "engine/base/result.hpp"

namespace anya::transport::net {

std::string_view gate_event_name(GateEvent event) {
  switch (event) {
    case GateEvent::evicted_unauthenticated: return "evicted_unauthenticated";
    case GateEvent::refused_full: return "refused_full";
    case GateEvent::handshake_timeout: return "handshake_timeout";
    case GateEvent::idle_timeout: return "idle_timeout";
  }
  ANYA_ASSERT(false && "unknown GateEvent");
  return "";
}

// ---- LogLimiter ------------------------------------------------------------------------------

LogLimiter::LogLimiter(std::uint64_t interval_ms) : interval_ms_(interval_ms) {}

LogLimiter::Turn LogLimiter::should_log(std::string_view reason, std::uint64_t now_ms) {
  auto it = slots_.find(reason);
  if (it == slots_.end()) {
    ANYA_ASSERT(slots_.size() < kMaxReasons);
    slots_.emplace(std::string(reason), Slot{now_ms, 0});
    return {true, 0};
  }
  Slot& slot = it->second;
  ANYA_ASSERT(now_ms >= slot.last_ms);  // the caller's clock is monotonic
  if (now_ms - slot.last_ms < interval_ms_) {
    slot.suppressed++;
    return {false, 0};
  }
  const Turn turn{true, slot.suppressed};
  slot.last_ms = now_ms;
  slot.suppressed = 0;
  return turn;
}

std::string LogLimiter::suppressed_note(std::uint64_t suppressed) {
  if (suppressed == 0) return "";
  return " (" + std::to_string(suppressed) + " more since the last message)";
}

// ---- ConnectionGate::Pool --------------------------------------------------------------------

ConnectionId ConnectionGate::Pool::oldest() const {
  if (!silent.empty()) return *silent.begin();
  if (!talking.empty()) return *talking.begin();
  return kNoConnection;
}

void ConnectionGate::Pool::erase(ConnectionId id) {
  const std::size_t erased = silent.erase(id) + talking.erase(id);
  ANYA_ASSERT(erased == 1);
}

void ConnectionGate::Pool::mark_spoke(ConnectionId id) {
  if (silent.erase(id) == 0) {
    ANYA_ASSERT(talking.count(id) == 1);  // spoke before: nothing to do
    return;
  }
  talking.insert(id);
}

// ---- ConnectionGate --------------------------------------------------------------------------

ConnectionGate::ConnectionGate(GateLimits limits) : limits_(limits) {
  ANYA_ASSERT(limits_.max_unauthenticated_per_source > 0);
  ANYA_ASSERT(limits_.max_unauthenticated_per_source <= limits_.max_unauthenticated);
  ANYA_ASSERT(limits_.max_unauthenticated <= limits_.max_connections);
  ANYA_ASSERT(limits_.handshake_deadline_ms > 0);
}

std::size_t ConnectionGate::unauthenticated_from(std::string_view source) const {
  const auto it = by_source_.find(source);
  return it == by_source_.end() ? 0 : it->second.size();
}

Admission ConnectionGate::admit(std::string_view source, std::uint64_t now_ms) {
  const bool source_full = unauthenticated_from(source) >= limits_.max_unauthenticated_per_source;
  const bool room = !source_full && unauthenticated_.size() < limits_.max_unauthenticated &&
                    connections_.size() < limits_.max_connections;
  Admission a;
  if (!room) {
    const ConnectionId victim = pick_victim(source, source_full);
    if (victim == kNoConnection) {
      // Only the total cap can be hit with nothing unauthenticated to evict.
      ANYA_ASSERT(connections_.size() >= limits_.max_connections);
      ANYA_ASSERT(unauthenticated_.size() == 0);
      counts_[index(GateEvent::refused_full)]++;
      a.verdict = Admission::Verdict::refuse;
      a.reason = GateEvent::refused_full;
      return a;
    }
    const auto it = connections_.find(victim);
    ANYA_ASSERT(it != connections_.end());
    ANYA_ASSERT(!it->second.authenticated);
    a.verdict = Admission::Verdict::accept_after_evicting;
    a.evicted = victim;
    a.evicted_source = it->second.source;
    a.reason = GateEvent::evicted_unauthenticated;
    forget_unauthenticated(victim, it->second);
    connections_.erase(it);
    evicted_.insert(victim);
    // The owner closes an evicted connection at once; more than a slot's worth waiting means
    // it forgot to report the closes.
    ANYA_ASSERT(evicted_.size() <= limits_.max_connections);
    counts_[index(GateEvent::evicted_unauthenticated)]++;
  } else {
    a.verdict = Admission::Verdict::accept;
  }
  a.id = next_id_++;
  connections_.emplace(a.id, Connection{std::string(source), now_ms, now_ms, false});
  unauthenticated_.insert(a.id);
  by_source_[std::string(source)].insert(a.id);
  check_invariants();
  return a;
}

void ConnectionGate::spoke(ConnectionId id) {
  const auto it = connections_.find(id);
  ANYA_ASSERT(it != connections_.end());
  if (it->second.authenticated) return;
  by_source_.find(it->second.source)->second.mark_spoke(id);
}

void ConnectionGate::authenticated(ConnectionId id, std::uint64_t now_ms) {
  const auto it = connections_.find(id);
  ANYA_ASSERT(it != connections_.end());
  ANYA_ASSERT(!it->second.authenticated);
  forget_unauthenticated(id, it->second);
  it->second.authenticated = true;
  it->second.last_active_ms = now_ms;
  check_invariants();
}

void ConnectionGate::active(ConnectionId id, std::uint64_t now_ms) {
  const auto it = connections_.find(id);
  ANYA_ASSERT(it != connections_.end());
  ANYA_ASSERT(now_ms >= it->second.last_active_ms);
  it->second.last_active_ms = now_ms;
}

void ConnectionGate::closed(ConnectionId id, std::uint64_t now_ms) {
  if (evicted_.erase(id) == 1) return;  // counted when it was evicted
  const auto it = connections_.find(id);
  ANYA_ASSERT(it != connections_.end());
  const Connection& c = it->second;
  ANYA_ASSERT(now_ms >= c.opened_ms);
  if (!c.authenticated) {
    // The owner's stream expires at the deadline: a close at or past it is that expiry.
    if (now_ms - c.opened_ms >= limits_.handshake_deadline_ms) {
      counts_[index(GateEvent::handshake_timeout)]++;
    }
    forget_unauthenticated(id, c);
  } else if (limits_.idle_deadline_ms != 0 &&
             now_ms - c.last_active_ms >= limits_.idle_deadline_ms) {
    counts_[index(GateEvent::idle_timeout)]++;
  }
  connections_.erase(it);
  check_invariants();
}

std::map<std::string, std::uint64_t> ConnectionGate::counters() const {
  std::map<std::string, std::uint64_t> out;
  for (std::size_t i = 0; i < kGateEventCount; i++) {
    out[std::string(gate_event_name(static_cast<GateEvent>(i)))] = counts_[i];
  }
  return out;
}

ConnectionId ConnectionGate::pick_victim(std::string_view source, bool source_full) const {
  // The per-source cap is the narrowest scope: the source that filled it pays for it.
  if (source_full) return by_source_.find(source)->second.oldest();
  const Pool* first = nullptr;
  for (const auto& [from, pool] : by_source_) {
    if (first == nullptr || evict_first(pool, *first)) first = &pool;
  }
  return first == nullptr ? kNoConnection : first->oldest();
}

bool ConnectionGate::evict_first(const Pool& a, const Pool& b) {
  ANYA_ASSERT(a.size() > 0);
  ANYA_ASSERT(b.size() > 0);
  if (a.size() != b.size()) return a.size() > b.size();
  if (a.silent.empty() != b.silent.empty()) return !a.silent.empty();
  return a.oldest() < b.oldest();
}

void ConnectionGate::forget_unauthenticated(ConnectionId id, const Connection& c) {
  ANYA_ASSERT(!c.authenticated);
  const std::size_t erased = unauthenticated_.erase(id);
  ANYA_ASSERT(erased == 1);
  const auto pool = by_source_.find(c.source);
  ANYA_ASSERT(pool != by_source_.end());
  pool->second.erase(id);
  if (pool->second.size() == 0) by_source_.erase(pool);  // bounded by live connections
}

void ConnectionGate::check_invariants() const {
  ANYA_ASSERT(connections_.size() <= limits_.max_connections);
  ANYA_ASSERT(unauthenticated_.size() <= limits_.max_unauthenticated);
  ANYA_ASSERT(unauthenticated_.size() <= connections_.size());
  std::size_t in_pools = 0;
  for (const auto& [source, pool] : by_source_) {
    ANYA_ASSERT(pool.size() > 0);
    ANYA_ASSERT(pool.size() <= limits_.max_unauthenticated_per_source);
    in_pools += pool.size();
  }
  ANYA_ASSERT(in_pools == unauthenticated_.size());
}

}  // namespace anya::transport::net

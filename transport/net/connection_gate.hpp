// Admission control for one listener, without sockets or clocks: the owner tells the gate what
// happens (a connection arrives, speaks, proves who it is, closes) with the time, and the gate
// says whom to admit and whom to drop. It exists because every accepted connection costs memory
// and a slot before it has proven anything: a flood of idle TCP connections must not be able to
// fill the slots a real client needs, nor the node's memory, nor its log.
//
// The rules (ConnectionGate::admit):
//   - Connections that have not authenticated yet are capped in total and per source address.
//   - At either cap, or at the total cap, the newcomer still gets in: the OLDEST unauthenticated
//     connection is evicted to make room. At the per-source cap, the newcomer's source's oldest.
//     Otherwise the oldest of the source holding the most unauthenticated connections (with
//     equal holdings: the oldest of all), so a flood from a few addresses displaces only itself,
//     never a lone client from another address. Within a source, one that has sent nothing yet
//     goes before one that has (`spoke`): an idle flood is spent before a client mid-handshake.
//   - Authenticated connections are never evicted by newcomers. When every slot is held by an
//     authenticated connection, the newcomer is refused.
// So a flood can only ever displace unauthenticated connections, first its own; a real client
// that arrives after it always gets a slot for its handshake. (What no rule by address can
// do: protect a client that shares its address with a flood that reconnects as fast as it is
// evicted, and is slower to send its first bytes than the flood is to fill its source's cap.)
//
// Deadlines are enforced by the owner (its stream's expiry); the gate only attributes a close
// to them, so the counters say why connections ended. The log limiter keeps a flood from
// turning into a flood of log lines: one line per reason per interval, with what was skipped.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace anya::transport::net {

using ConnectionId = std::uint64_t;
inline constexpr ConnectionId kNoConnection = 0;

struct GateLimits {
  std::size_t max_connections = 256;                // open at once, authenticated or not
  std::size_t max_unauthenticated = 64;             // still handshaking, from all sources
  std::size_t max_unauthenticated_per_source = 16;  // still handshaking, from one address
  std::uint64_t handshake_deadline_ms = 3000;       // from arrival to authenticated
  std::uint64_t idle_deadline_ms = 60000;           // authenticated and silent; 0: not tracked
};

// What the counters count; also the keys of counters().
enum class GateEvent : std::uint8_t {
  evicted_unauthenticated,  // an unauthenticated connection was dropped to admit a newcomer
  refused_full,             // a newcomer was refused: every slot is authenticated
  handshake_timeout,        // closed unauthenticated at or after its handshake deadline
  idle_timeout,             // closed authenticated after idling past the idle deadline
};
inline constexpr std::size_t kGateEventCount = 4;
std::string_view gate_event_name(GateEvent event);

struct Admission {
  enum class Verdict : std::uint8_t { accept, accept_after_evicting, refuse };
  Verdict verdict = Verdict::refuse;
  ConnectionId id = kNoConnection;       // the newcomer's, unless refused
  ConnectionId evicted = kNoConnection;  // accept_after_evicting: close this one now
  GateEvent reason = GateEvent::refused_full;  // refuse or accept_after_evicting: why
  std::string evicted_source;            // accept_after_evicting: whose connection it was
};

// At most one line per reason per interval; the next line says how many were skipped.
class LogLimiter {
 public:
  static constexpr std::uint64_t kDefaultIntervalMs = 10'000;
  // Reasons are names from the code, not from the network; the bound catches a caller that
  // passes something unbounded by mistake.
  static constexpr std::size_t kMaxReasons = 64;

  explicit LogLimiter(std::uint64_t interval_ms = kDefaultIntervalMs);

  struct Turn {
    bool log = false;              // write this line
    std::uint64_t suppressed = 0;  // lines skipped for this reason since the last one written
    explicit operator bool() const { return log; }
  };
  Turn should_log(std::string_view reason, std::uint64_t now_ms);
  // " (42 more since the last message)", or "" for 0: to append to the line being written.
  static std::string suppressed_note(std::uint64_t suppressed);

 private:
  struct Slot {
    std::uint64_t last_ms = 0;
    std::uint64_t suppressed = 0;
  };
  std::uint64_t interval_ms_;
  std::map<std::string, Slot, std::less<>> slots_;  // Invariant: size() <= kMaxReasons
};

class ConnectionGate {
 public:
  explicit ConnectionGate(GateLimits limits);

  // A connection from `source` (an address) was accepted at `now_ms`. Unless refused, the
  // caller must report it with closed() once it ends; an evicted one is already forgotten, but
  // the caller closes it and reports that close too (it is then ignored).
  [[nodiscard]] Admission admit(std::string_view source, std::uint64_t now_ms);
  // The connection sent its first bytes: among the unauthenticated it is evicted after the
  // silent ones. Idempotent.
  void spoke(ConnectionId id);
  // The connection proved who it is: it no longer counts as unauthenticated and is never
  // evicted. Its idle clock starts now.
  void authenticated(ConnectionId id, std::uint64_t now_ms);
  // The authenticated connection did something (a request arrived): its idle clock restarts.
  void active(ConnectionId id, std::uint64_t now_ms);
  // The connection ended, for whatever reason. Counts a timeout if it ended past its deadline.
  void closed(ConnectionId id, std::uint64_t now_ms);

  // True when the connection is known: admitted and neither closed nor evicted.
  bool is_open(ConnectionId id) const { return connections_.count(id) != 0; }
  std::size_t open_connections() const { return connections_.size(); }
  std::size_t unauthenticated() const { return unauthenticated_.size(); }
  std::size_t unauthenticated_from(std::string_view source) const;
  std::uint64_t count(GateEvent event) const { return counts_[index(event)]; }
  // Every event by name ("evicted_unauthenticated", ...), zeros included: for metrics.
  std::map<std::string, std::uint64_t> counters() const;
  const GateLimits& limits() const { return limits_; }

  LogLimiter::Turn should_log(std::string_view reason, std::uint64_t now_ms) {
    return log_limiter_.should_log(reason, now_ms);
  }

 private:
  // Unauthenticated connections of one scope (all, or one source), oldest first within each
  // group. Ids grow with arrival, so the smallest is the oldest.
  struct Pool {
    std::set<ConnectionId> silent;   // sent nothing yet: evicted first
    std::set<ConnectionId> talking;  // sent something
    std::size_t size() const { return silent.size() + talking.size(); }
    ConnectionId oldest() const;
    void insert(ConnectionId id) { silent.insert(id); }
    void erase(ConnectionId id);
    void mark_spoke(ConnectionId id);
  };
  struct Connection {
    std::string source;
    std::uint64_t opened_ms = 0;
    std::uint64_t last_active_ms = 0;
    bool authenticated = false;
  };

  static std::size_t index(GateEvent e) { return static_cast<std::size_t>(e); }
  // Whom admit() evicts when it must, or kNoConnection when there is no one to evict.
  ConnectionId pick_victim(std::string_view source, bool source_full) const;
  // True when `a`'s candidate goes before `b`'s: the larger pool, then a silent candidate,
  // then the older one.
  static bool evict_first(const Pool& a, const Pool& b);
  void forget_unauthenticated(ConnectionId id, const Connection& c);
  void check_invariants() const;

  GateLimits limits_;
  ConnectionId next_id_ = 1;
  std::map<ConnectionId, Connection> connections_;  // Invariant: size() <= max_connections
  std::set<ConnectionId> unauthenticated_;  // Invariant: size() <= max_unauthenticated
  // Invariant: each pool non-empty and within max_unauthenticated_per_source.
  std::map<std::string, Pool, std::less<>> by_source_;
  // Evicted but not yet reported closed by the owner. Bounded: the owner closes an evicted
  // connection at once, so this holds a handful at most.
  std::set<ConnectionId> evicted_;
  std::array<std::uint64_t, kGateEventCount> counts_{};
  LogLimiter log_limiter_;
};

}  // namespace anya::transport::net

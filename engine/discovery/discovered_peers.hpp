// The merged view of the peers that discovery methods propose (static list, DNS SRV, Kubernetes
// EndpointSlices, multicast announcements), kept by node id. Pure: every report comes in as an
// argument with the time it arrived; what changed goes out as data for the node to act on.
//
// Discovery only PROPOSES peers. A proposed peer still has to pass mutual TLS (its certificate
// names its node id) and the membership rules; nothing here adds or removes a Raft member.
//
// Rules, each tested in discovery_test.cpp:
// - Identity is the node id, never the address: a node whose address changes (a rescheduled
//   pod) keeps its entry and the change is reported as address_changed, not as a new peer.
// - A complete report (static, DNS SRV, Kubernetes) replaces what its method proposed before: a
//   node it no longer lists leaves that method's entries. An incremental report (one multicast
//   announcement) adds or refreshes one node; its entries expire at Proposal::expires_ms.
// - A failed report changes no entry: the method keeps its last good entries (and the merged
//   view keeps every peer it had), and its status counts the failure.
// - Two methods proposing different addresses for one node: the method that most recently saw
//   the node's address CHANGE wins (a method's first report of a node is not a change: it saw
//   no move). When no method saw a change, or two saw one at the same instant, the method
//   listed first in the configuration wins. So a pod that moves is followed by whichever method
//   notices first, and a method that merely disagrees from the start (a stale static list, a
//   stale cache) never overrides the one the operator listed first.
// - A node that leaves the merged view is still remembered in last_known() (bounded), so the
//   node can keep dialling a member's last address while its pod is not ready.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine::discovery {

inline constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

struct DiscoveryLimits {
  static constexpr std::size_t max_methods = 8;
  // Proposals in one report. A report over it is refused (reason "too_many_peers") and the
  // method keeps its last good entries; the issue asks for clusters of a few hundred members.
  static constexpr std::size_t max_peers_per_report = 1024;
  static constexpr std::size_t max_address_bytes = 261;  // a 253-byte DNS name, ':' and a port
  static constexpr std::size_t max_error_bytes = 512;    // longer messages are cut
  // Nodes remembered by last_known(); past it, the one longest out of the view is forgotten.
  // Larger than the view can be, so a node in the view is never forgotten.
  static constexpr std::size_t max_remembered = max_methods * max_peers_per_report + 1024;
  // Per method: past it, what the method saw of nodes it no longer proposes is forgotten.
  static constexpr std::size_t max_seen_per_method = 4 * max_peers_per_report;
};

// One peer as one method proposes it.
struct Proposal {
  NodeId id = kNoNode;
  std::string address;                 // HOST:PORT of its peer listener
  std::uint64_t expires_ms = kNever;   // incremental reports only; same clock as now_ms
  std::uint16_t priority = 0;          // DNS SRV: lower first; 0 for the other methods
  std::uint16_t weight = 0;            // DNS SRV: within a priority

  friend bool operator==(const Proposal&, const Proposal&) = default;
};

struct MethodReport {
  std::string method;    // "static", "dns_srv", "kubernetes", "multicast"
  bool ok = false;
  bool incremental = false;          // ok: add/refresh `peers`; otherwise they are the whole view
  std::vector<Proposal> peers;       // ok only
  std::string error;                 // !ok: for a person ("NXDOMAIN for _anya-ha._tcp.x")
  std::string reason;                // !ok: a short stable kind for metrics ("nxdomain")

  static MethodReport success(std::string method, std::vector<Proposal> peers);
  static MethodReport announcement(std::string method, Proposal peer);
  static MethodReport failure(std::string method, std::string reason, std::string error);
};

struct MethodStatus {
  std::string method;
  std::optional<std::uint64_t> last_success_ms;
  std::optional<std::uint64_t> last_failure_ms;
  std::string last_error;                  // empty once the method succeeded after it
  std::string last_reason;
  std::uint64_t consecutive_failures = 0;  // reset by a success
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::size_t peers = 0;                   // entries the method holds now
};

// A peer in the merged view.
struct PeerView {
  NodeId id = kNoNode;
  std::string address;
  std::string method;               // the method whose address won
  // When that method saw the node move to this address; 0: it reported this address from its
  // first report of the node on.
  std::uint64_t since_ms = 0;
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::vector<std::string> methods; // every method proposing this node, in configuration order
};

struct PeerChange {
  enum class Kind { added, address_changed, removed };
  Kind kind = Kind::added;
  NodeId id = kNoNode;
  std::string address;           // the new address (removed: the last one)
  std::string previous_address;  // address_changed only
  std::string method;            // the method whose address now wins (removed: the last one)

  friend bool operator==(const PeerChange&, const PeerChange&) = default;
};
const char* change_kind_name(PeerChange::Kind kind);

class DiscoveredPeers {
 public:
  // `methods`: the configured methods, in order (the order breaks address ties). Asserted
  // non-empty, unique and at most DiscoveryLimits::max_methods.
  explicit DiscoveredPeers(std::vector<std::string> methods);

  // Applies one report that arrived at `now_ms` (a monotonic clock that never goes back) and
  // returns what changed in the merged view. A report that breaks a rule (a limit, a node id
  // out of range, one node at two addresses) counts as that method's failure. A report from a
  // method not configured is a bug (asserted): the caller builds the methods from the same list.
  [[nodiscard]] std::vector<PeerChange> apply(const MethodReport& report, std::uint64_t now_ms);
  // Drops incremental entries whose expiry is at or before `now_ms`.
  [[nodiscard]] std::vector<PeerChange> expire(std::uint64_t now_ms);

  const std::map<NodeId, PeerView>& peers() const { return view_; }
  const std::vector<MethodStatus>& statuses() const { return statuses_; }
  const MethodStatus* status(const std::string& method) const;
  // The address a node was last seen at, whether or not it is in the view now.
  std::optional<std::string> last_known(NodeId id) const;
  // Entries one method holds now (tests and status).
  std::size_t entries(const std::string& method) const;

  // The address to dial each peer at (the node passes the result to its peer links).
  // Members (membership not empty): the merged discovered address of the member when there is
  // one, else the last address discovery knew for it (a pod not ready for a moment), else the
  // membership's address. Only members are listed: discovery never adds one. Joining
  // (membership empty): the static seeds and every discovered peer, so the leader, whichever
  // it is, can reach the joining node. `self` keeps its own entry as given.
  std::map<NodeId, std::string> dial_addresses(
      const std::map<NodeId, std::string>& membership,
      const std::map<NodeId, std::string>& seeds, NodeId self) const;

 private:
  struct Entry {
    std::string address;
    std::uint64_t since_ms = 0;       // see PeerView::since_ms
    std::uint64_t expires_ms = kNever;
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
  };
  // The last address a method reported for a node and since when, kept after the entry goes
  // (an announcement that expired), so that its return at another address counts as a move.
  struct Seen {
    std::string address;
    std::uint64_t since_ms = 0;
  };
  struct Method {
    std::map<NodeId, Entry> entries;
    std::map<NodeId, Seen> seen;  // bounded: see put()
  };

  Status check(const MethodReport& report) const;
  void fail(std::size_t index, const std::string& reason, const std::string& error,
            std::uint64_t now_ms);
  void put(Method& method, const Proposal& p, std::uint64_t now_ms);
  // Recomputes the merged view and returns the differences from the previous one.
  std::vector<PeerChange> remerge();
  void remember(NodeId id, const std::string& address);

  std::vector<std::string> names_;
  std::vector<Method> methods_;        // same index as names_
  std::vector<MethodStatus> statuses_; // same index as names_
  std::map<NodeId, PeerView> view_;
  std::map<NodeId, std::pair<std::uint64_t, std::string>> remembered_;  // id -> (stamp, addr)
  std::map<std::uint64_t, NodeId> by_stamp_;  // Invariant: the same nodes as remembered_
  std::uint64_t remember_stamp_ = 0;
};

}  // namespace anya::engine::discovery

// Cluster-wide safety invariants of Raft (Figure 3 of the paper), checked from observations of
// each node's state. Any test, property, fuzzer or the simulator can feed it after every step;
// a fixture asserts that it found no violation.
//
//   election safety      at most one leader per term
//   log matching         same (index, term) in two logs => identical prefixes up to it
//   leader completeness  an entry committed before term T is in the log of every leader of T
//   state machine safety one global commit history: a committed index never changes entry
//   monotonic            per node, term and commit never go back (reset on restart, where only
//                        durable state is required to survive)
//   leader commit rule   a leader advances its commit index only to an entry of its own term
//                        (§5.4.2: older entries commit only indirectly, Figure 8)
//   snapshot safety      a log that starts after a snapshot (compacted, or installed from the
//                        leader) starts after an entry of the global commit history: its index
//                        was seen committed, with the same term. The compacted prefix is then
//                        taken to be that history, and the entries after it hash on from there.
//
// Depends on engine/base only, so it can judge any implementation that exposes a NodeView.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "engine/base/types.hpp"

namespace anya::engine {

struct NodeView {
  NodeId id = kNoNode;
  Term term = 0;
  Role role = Role::follower;
  Index commit = 0;
  Index first_index = 1;          // index of entries[0]; > 1 once the log is compacted
  std::span<const Entry> entries;  // the node's whole log from first_index
  // Entries below this index are unchanged since this node's previous observation, so the
  // checker need not rehash them. 1 (the default) rechecks the whole log.
  Index changed_from = 1;
  // What the node has made durable (0 if unknown): must never go back, even across restarts.
  Term durable_term = 0;
  Index durable_commit = 0;
  Term snapshot_term = 0;  // term of the entry at first_index - 1 (0 if first_index is 1)
};

struct Violation {
  std::string invariant;  // e.g. "election safety"
  std::string detail;     // nodes, terms, indexes and what was seen
  std::string to_string() const { return invariant + ": " + detail; }
};

class InvariantChecker {
 public:
  void observe(const NodeView& view);
  // The node restarted from durable state: term and commit may legitimately be lower now than
  // what was last observed in memory, but never lower than what it had made durable.
  void on_restart(NodeId id, Term durable_term, Index durable_commit);
  // For an observer that plays every peer itself (the engine fuzzer): a node installed a
  // snapshot of (index, term) sent by a peer this checker never observed. Take the snapshot's
  // base as committed history from there on; the indexes it covers above the highest committed
  // one are unknown entries that match no other log. At or below the highest committed index
  // nothing is vouched for: the base must then agree with the history as usual.
  void vouch_for_snapshot(Index index, Term term);

  const std::vector<Violation>& violations() const { return violations_; }
  bool ok() const { return violations_.empty(); }
  std::string report() const;
  Index highest_committed() const { return committed_.empty() ? 0 : committed_.rbegin()->first; }
  std::size_t observations() const { return observations_; }

 private:
  struct Committed {
    Term term;
    std::uint64_t prefix_hash;  // hash of the whole log prefix ending at this index
    Term seen_at_term;          // the term of the first node seen holding it committed
    NodeId seen_on;
  };
  struct PerNode {
    Term term = 0;
    Index commit = 0;          // highest commit seen (durable floor after a restart)
    Index verified_commit = 0;  // prefix up to here already checked against the history
    Role role = Role::follower;
    Term role_term = 0;
    Index last_commit = 0;  // commit at the previous observation
    Term durable_term = 0;  // highest durable term and commit ever observed
    Index durable_commit = 0;
    // prefix[i - 1] = hash of this node's log prefix ending at index i.
    std::vector<std::uint64_t> prefix;
    std::vector<Term> terms;  // terms[i - 1] = term of this node's entry i (same length)
  };

  void fail(std::string invariant, std::string detail);
  void check_monotonic(const NodeView& view);
  void check_election_safety(const NodeView& view);
  void check_log_matching(const NodeView& view, PerNode& node);
  void check_commits(const NodeView& view, PerNode& node);
  void check_leader_completeness(const NodeView& view, const PerNode& node);
  void check_leaders_hold(Index index, const Committed& c);
  void check_leader_commit_rule(const NodeView& view, const PerNode& node);
  // First index whose prefix hash must be recomputed; false if the snapshot base is unsafe.
  bool check_snapshot_base(const NodeView& view, PerNode& node);
  static std::uint64_t entry_hash(const Entry& e);

  std::map<NodeId, PerNode> nodes_;
  std::map<Term, NodeId> leader_of_term_;
  // (index, term) -> hash of the log prefix ending there (log matching).
  std::map<std::pair<Index, Term>, std::uint64_t> prefix_hash_;
  std::map<Index, Committed> committed_;
  std::set<NodeId> leaders_;  // nodes last observed as leader
  std::vector<Violation> violations_;
  std::size_t observations_ = 0;
};

}  // namespace anya::engine

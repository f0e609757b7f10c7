#include "engine/invariants/invariants.hpp"

#include <algorithm>

#include "engine/base/result.hpp"

namespace anya::engine {

namespace {
// FNV-1a, 64-bit: enough to tell logs apart in a checker; not a security property.
std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
constexpr std::size_t kMaxViolations = 64;  // after that, the first ones tell the story
}  // namespace

std::uint64_t InvariantChecker::entry_hash(const Entry& e) {
  std::uint64_t h = kFnvBasis;
  h = fnv1a(h, &e.term, sizeof e.term);
  h = fnv1a(h, &e.index, sizeof e.index);
  const auto type = static_cast<std::uint8_t>(e.type);
  h = fnv1a(h, &type, 1);
  return fnv1a(h, e.data.data(), e.data.size());
}

void InvariantChecker::fail(std::string invariant, std::string detail) {
  if (violations_.size() < kMaxViolations) {
    violations_.push_back({std::move(invariant), std::move(detail)});
  }
}

void InvariantChecker::observe(const NodeView& view) {
  ANYA_ASSERT(view.id != kNoNode);
  ANYA_ASSERT(view.first_index >= 1);
  observations_++;
  PerNode& node = nodes_[view.id];
  check_leader_commit_rule(view, node);
  check_monotonic(view);
  check_election_safety(view);
  check_log_matching(view, node);
  check_commits(view, node);
  check_leader_completeness(view, node);
  node.role = view.role;
  node.role_term = view.term;
  node.last_commit = view.commit;
  if (view.role == Role::leader) {
    leaders_.insert(view.id);
  } else {
    leaders_.erase(view.id);
  }
}

void InvariantChecker::on_restart(NodeId id, Term durable_term, Index durable_commit) {
  PerNode& n = nodes_[id];
  if (durable_term < n.durable_term || durable_commit < n.durable_commit) {
    fail("durable state survives restart",
         "node " + std::to_string(id) + " restarted with term " + std::to_string(durable_term) +
             " commit " + std::to_string(durable_commit) + " after having made term " +
             std::to_string(n.durable_term) + " commit " + std::to_string(n.durable_commit) +
             " durable");
  }
  if (durable_term < n.term || durable_commit < n.commit) {
    // Lower than seen in memory is allowed; record the durable floor from now on.
    n.term = durable_term;
    n.commit = durable_commit;
  }
  n.verified_commit = std::min(n.verified_commit, durable_commit);
  n.prefix.clear();  // the log is reloaded from disk: rehash it all
  n.terms.clear();
  leaders_.erase(id);
}

void InvariantChecker::vouch_for_snapshot(Index index, Term term) {
  std::uint64_t h = committed_.empty() ? kFnvBasis : committed_.rbegin()->second.prefix_hash;
  for (Index i = highest_committed() + 1; i <= index; i++) {
    // Unknown entries: hashed from their index alone, with a marker no real entry hashes to.
    const std::uint64_t unknown[2] = {i, ~std::uint64_t{0}};
    h = fnv1a(h, unknown, sizeof unknown);
    committed_.emplace(i, Committed{term, h, term, kNoNode});
  }
}

void InvariantChecker::check_monotonic(const NodeView& view) {
  PerNode& n = nodes_[view.id];
  if (view.term < n.term) {
    fail("monotonic term", "node " + std::to_string(view.id) + " went from term " +
                               std::to_string(n.term) + " to " + std::to_string(view.term));
  }
  if (view.commit < n.commit) {
    fail("monotonic commit", "node " + std::to_string(view.id) + " went from commit " +
                                 std::to_string(n.commit) + " to " + std::to_string(view.commit));
  }
  n.term = std::max(n.term, view.term);
  n.commit = std::max(n.commit, view.commit);
  n.durable_term = std::max(n.durable_term, view.durable_term);
  n.durable_commit = std::max(n.durable_commit, view.durable_commit);
}

void InvariantChecker::check_election_safety(const NodeView& view) {
  if (view.role != Role::leader) return;
  auto [it, inserted] = leader_of_term_.emplace(view.term, view.id);
  if (!inserted && it->second != view.id) {
    fail("election safety", "nodes " + std::to_string(it->second) + " and " +
                                std::to_string(view.id) + " both leader in term " +
                                std::to_string(view.term));
  }
}

bool InvariantChecker::check_snapshot_base(const NodeView& view, PerNode& node) {
  const Index base = view.first_index - 1;
  if (base == 0) return true;
  auto it = committed_.find(base);
  const bool own = node.prefix.size() >= base && node.terms[base - 1] == view.snapshot_term;
  if (it == committed_.end() && own && view.commit >= base) {
    // Committed and compacted in one step: this node's own log up to the base, already hashed,
    // is what check_commits now records as committed.
    return true;
  }
  if (it == committed_.end()) {
    fail("snapshot safety", "node " + std::to_string(view.id) + " holds a log compacted up to "
                            "index " + std::to_string(base) + ", which no node was seen "
                            "committing (highest " + std::to_string(highest_committed()) + ")");
    return false;
  }
  if (it->second.term != view.snapshot_term) {
    fail("snapshot safety", "node " + std::to_string(view.id) + " holds a snapshot at index " +
                                std::to_string(base) + " of term " +
                                std::to_string(view.snapshot_term) + " but that index was "
                                "committed with term " + std::to_string(it->second.term));
    return false;
  }
  if (node.prefix.size() >= base && node.prefix[base - 1] == it->second.prefix_hash) return true;
  // Replaced by a snapshot, or reloaded after a restart: below the base the log is the
  // committed history (committed_ holds every index up to the highest commit).
  node.prefix.resize(base);
  node.terms.resize(base);
  for (Index i = 1; i <= base; i++) {
    node.prefix[i - 1] = committed_.at(i).prefix_hash;
    node.terms[i - 1] = committed_.at(i).term;
  }
  node.verified_commit = std::min(node.verified_commit, base);
  return true;
}

void InvariantChecker::check_log_matching(const NodeView& view, PerNode& node) {
  const Index first = view.first_index;
  const Index last = first - 1 + view.entries.size();
  if (!check_snapshot_base(view, node)) return;
  // Recompute from the first changed index, but nothing below the log's first index.
  Index from = std::min<Index>({view.changed_from == 0 ? 1 : view.changed_from,
                                node.prefix.size() + 1, last + 1});
  from = std::max(from, first);
  node.prefix.resize(from - 1);
  node.terms.resize(from - 1);
  std::uint64_t h = from == 1 ? kFnvBasis : node.prefix[from - 2];
  for (Index i = from; i <= last; i++) {
    const Entry& e = view.entries[i - first];
    const std::uint64_t eh = entry_hash(e);
    h = fnv1a(h, &eh, sizeof eh);
    node.prefix.push_back(h);
    node.terms.push_back(e.term);
    auto [it, inserted] = prefix_hash_.emplace(std::make_pair(e.index, e.term), h);
    if (!inserted && it->second != h) {
      fail("log matching", "node " + std::to_string(view.id) + " holds entry " +
                               std::to_string(e.index) + " of term " + std::to_string(e.term) +
                               " with a log prefix that differs from another node's");
    }
  }
  // A rewritten entry at or below what this node already had committed breaks the history.
  if (from - 1 < node.verified_commit) node.verified_commit = from - 1;
}

void InvariantChecker::check_commits(const NodeView& view, PerNode& node) {
  const Index last = view.first_index - 1 + view.entries.size();
  if (view.commit > last) {
    fail("commit within log", "node " + std::to_string(view.id) + " commit " +
                                  std::to_string(view.commit) + " beyond its last index " +
                                  std::to_string(last));
    return;
  }
  if (node.prefix.size() < view.commit) return;  // an unsafe snapshot base, reported
  for (Index i = node.verified_commit + 1; i <= view.commit; i++) {
    const std::uint64_t hash = node.prefix[i - 1];
    const Term term = node.terms[i - 1];
    auto [it, inserted] = committed_.emplace(i, Committed{term, hash, view.term, view.id});
    if (inserted) {
      check_leaders_hold(i, it->second);
    } else if (it->second.prefix_hash != hash) {
      fail("state machine safety",
           "index " + std::to_string(i) + " committed as term " +
               std::to_string(it->second.term) + " on node " +
               std::to_string(it->second.seen_on) + " but node " + std::to_string(view.id) +
               " committed a different log there (entry term " + std::to_string(term) + ")");
      break;
    }
  }
  node.verified_commit = std::max<Index>(node.verified_commit, view.commit);
}

void InvariantChecker::check_leaders_hold(Index index, const Committed& c) {
  for (NodeId leader : leaders_) {
    const PerNode& n = nodes_[leader];
    if (n.role_term <= c.seen_at_term) continue;
    if (n.prefix.size() < index || n.prefix[index - 1] != c.prefix_hash) {
      fail("leader completeness", "leader " + std::to_string(leader) + " of term " +
                                      std::to_string(n.role_term) + " lacks entry " +
                                      std::to_string(index) + " committed by term " +
                                      std::to_string(c.seen_at_term));
    }
  }
}

void InvariantChecker::check_leader_completeness(const NodeView& view, const PerNode& node) {
  if (view.role != Role::leader) return;
  if (node.role == Role::leader && node.role_term == view.term) return;  // checked on election
  // Committed prefixes nest, so the highest index committed before this term covers the rest.
  for (auto it = committed_.rbegin(); it != committed_.rend(); ++it) {
    const auto& [index, c] = *it;
    if (c.seen_at_term >= view.term) continue;
    if (node.prefix.size() < index || node.prefix[index - 1] != c.prefix_hash) {
      fail("leader completeness", "leader " + std::to_string(view.id) + " of term " +
                                      std::to_string(view.term) + " lacks entry " +
                                      std::to_string(index) + " (term " + std::to_string(c.term) +
                                      ") committed by term " + std::to_string(c.seen_at_term));
    }
    return;
  }
}

void InvariantChecker::check_leader_commit_rule(const NodeView& view, const PerNode& node) {
  const bool same_leadership =
      view.role == Role::leader && node.role == Role::leader && node.role_term == view.term;
  if (!same_leadership || view.commit <= node.last_commit) return;
  if (view.commit > view.first_index - 1 + view.entries.size()) return;  // check_commits
  if (view.commit < view.first_index) return;  // compacted: committed by an earlier leadership
  const Term term = view.entries[view.commit - view.first_index].term;
  if (term != view.term) {
    fail("leader commit rule", "leader " + std::to_string(view.id) + " of term " +
                                   std::to_string(view.term) + " advanced its commit to index " +
                                   std::to_string(view.commit) + " holding an entry of term " +
                                   std::to_string(term));
  }
}

std::string InvariantChecker::report() const {
  std::string out;
  for (const Violation& v : violations_) out += v.to_string() + "\n";
  return out;
}

}  // namespace anya::engine

#include "engine/invariants/invariants.hpp"

#include "engine/base/result.hpp"

namespace anya::engine {

namespace {
// FNV-1a, 64-bit: enough to tell entries apart in a checker; not a security property.
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

const Entry* InvariantChecker::find(const NodeView& view, Index index) {
  if (index < view.first_index || index >= view.first_index + view.entries.size()) {
    return nullptr;
  }
  return &view.entries[index - view.first_index];
}

void InvariantChecker::fail(std::string invariant, std::string detail) {
  if (violations_.size() < kMaxViolations) {
    violations_.push_back({std::move(invariant), std::move(detail)});
  }
}

void InvariantChecker::observe(const NodeView& view) {
  ANYA_ASSERT(view.id != kNoNode);
  observations_++;
  check_monotonic(view);
  check_election_safety(view);
  check_log_matching(view);
  check_commits(view);
  check_leader_completeness(view);
}

void InvariantChecker::on_restart(NodeId id, Term durable_term, Index durable_commit) {
  PerNode& n = nodes_[id];
  if (durable_term < n.term || durable_commit < n.commit) {
    // Lower than seen in memory is allowed; record the durable floor from now on.
    n.term = durable_term;
    n.commit = durable_commit;
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

void InvariantChecker::check_log_matching(const NodeView& view) {
  std::uint64_t h = kFnvBasis;
  for (const Entry& e : view.entries) {
    const std::uint64_t eh = entry_hash(e);
    h = fnv1a(h, &eh, sizeof eh);
    // Without compaction every view starts at index 1, so the prefix hash covers the whole
    // prefix. (With compaction, views would start from an agreed snapshot point.)
    auto [it, inserted] = prefix_hash_.emplace(std::make_pair(e.index, e.term), h);
    if (!inserted && it->second != h) {
      fail("log matching", "node " + std::to_string(view.id) + " holds entry " +
                               std::to_string(e.index) + " of term " + std::to_string(e.term) +
                               " with a prefix that differs from another node's");
      return;
    }
  }
}

void InvariantChecker::check_commits(const NodeView& view) {
  for (Index i = view.first_index; i <= view.commit; i++) {
    const Entry* e = find(view, i);
    if (e == nullptr) {
      fail("commit within log", "node " + std::to_string(view.id) + " commit " +
                                    std::to_string(view.commit) + " beyond its log");
      return;
    }
    const std::uint64_t hash = entry_hash(*e);
    auto [it, inserted] = committed_.emplace(i, Committed{e->term, hash, view.term, view.id});
    if (!inserted && (it->second.term != e->term || it->second.data_hash != hash)) {
      fail("state machine safety",
           "index " + std::to_string(i) + " committed as term " +
               std::to_string(it->second.term) + " on node " +
               std::to_string(it->second.seen_on) + " but as term " + std::to_string(e->term) +
               " on node " + std::to_string(view.id));
      return;
    }
  }
}

void InvariantChecker::check_leader_completeness(const NodeView& view) {
  if (view.role != Role::leader) return;
  for (const auto& [index, c] : committed_) {
    if (c.seen_at_term >= view.term) continue;  // committed at or after this leader's term
    const Entry* e = find(view, index);
    if (e == nullptr || e->term != c.term || entry_hash(*e) != c.data_hash) {
      fail("leader completeness", "leader " + std::to_string(view.id) + " of term " +
                                      std::to_string(view.term) + " lacks entry " +
                                      std::to_string(index) + " (term " + std::to_string(c.term) +
                                      ") committed by term " + std::to_string(c.seen_at_term));
      return;
    }
  }
}

std::string InvariantChecker::report() const {
  std::string out;
  for (const Violation& v : violations_) out += v.to_string() + "\n";
  return out;
}

}  // namespace anya::engine

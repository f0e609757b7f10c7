#include "engine/progress/progress.hpp"

#include <algorithm>

#include "engine/base/result.hpp"

namespace anya::engine {

void Inflights::add(Index last_index) {
  ANYA_ASSERT(!full());
  ANYA_ASSERT(window_.empty() || window_.back() < last_index);
  window_.push_back(last_index);
}

void Inflights::free_le(Index index) {
  auto keep = std::upper_bound(window_.begin(), window_.end(), index);
  window_.erase(window_.begin(), keep);
}

void Inflights::free_first() {
  if (!window_.empty()) window_.erase(window_.begin());
}

const char* progress_state_name(ProgressState state) {
  switch (state) {
    case ProgressState::probe: return "probe";
    case ProgressState::replicate: return "replicate";
    case ProgressState::snapshot: return "snapshot";
  }
  return "unknown";
}

void Progress::become_probe() {
  state = ProgressState::probe;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::replicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_snapshot(Index index, std::uint64_t now_ms) {
  ANYA_ASSERT(index > match);
  state = ProgressState::snapshot;
  pending_snapshot = index;
  snapshot_sent_ms = now_ms;
  next = index + 1;
  probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(Index index) {
  bool updated = false;
  if (index > match) {
    match = index;
    probe_sent = false;
    updated = true;
  }
  next = std::max(next, index + 1);
  ANYA_ASSERT(match < next);
  return updated;
}

void Progress::regress_to(Index last_index) {
  ANYA_ASSERT(last_index < match);
  match = last_index;
  become_probe();
  ANYA_ASSERT(match < next);
}

void Progress::optimistic_update(Index last_index) {
  ANYA_ASSERT(last_index >= next);
  next = last_index + 1;
}

bool Progress::maybe_decrease_to(Index rejected, Index hint) {
  // Waiting for a snapshot: only its answer (or the timeout) moves the follower on.
  if (state == ProgressState::snapshot) return false;
  if (state == ProgressState::replicate) {
    // Appends already acknowledged cannot be rejected; anything at or below match is stale.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the append just sent (at next - 1) can be rejected meaningfully.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max<Index>(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  ANYA_ASSERT(next >= 1);
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::probe: return probe_sent;
    case ProgressState::replicate: return inflights.full();
    case ProgressState::snapshot: return true;
  }
  return true;
}

std::string Progress::describe() const {
  return std::string(progress_state_name(state)) + " match=" + std::to_string(match) +
         " next=" + std::to_string(next) + " inflight=" + std::to_string(inflights.count());
}

void ProgressTracker::reset_config(const JointConfig& voters, const std::set<NodeId>& learners,
                                   Index next_index) {
  for (NodeId id : learners) ANYA_ASSERT(!voters.contains(id));
  voters_ = voters;
  learners_ = learners;
  std::map<NodeId, Progress> fresh;
  for (NodeId id : members()) {
    auto it = progress_.find(id);
    if (it != progress_.end()) {
      fresh.emplace(id, it->second);
    } else {
      Progress p(max_inflight_);
      p.next = next_index;
      fresh.emplace(id, p);
    }
  }
  progress_ = std::move(fresh);
}

std::optional<std::uint64_t> ProgressTracker::chain_quorum_height(
    NodeId self, const std::optional<ChainView>& self_view) const {
  const std::optional<std::uint64_t> height =
      voters_.quorum_value([&](NodeId id) -> std::optional<std::uint64_t> {
        const std::optional<ChainView>* view = &self_view;
        if (id != self) {
          auto it = progress_.find(id);
          if (it == progress_.end()) return std::nullopt;
          view = &it->second.chain_view;
        }
        if (!view->has_value()) return std::nullopt;
        return (*view)->height;
      });
  // An empty configuration answers "unconstrained": no voters means no quorum view either.
  ANYA_ASSERT(height != kUnconstrainedIndex);
  return height;
}

std::set<NodeId> ProgressTracker::members() const {
  std::set<NodeId> all = voters_.all_voters();
  all.insert(learners_.begin(), learners_.end());
  return all;
}

Progress& ProgressTracker::at(NodeId id) {
  auto it = progress_.find(id);
  ANYA_ASSERT(it != progress_.end());
  return it->second;
}

const Progress& ProgressTracker::at(NodeId id) const {
  auto it = progress_.find(id);
  ANYA_ASSERT(it != progress_.end());
  return it->second;
}

Index ProgressTracker::committed() const {
  return voters_.committed_index([this](NodeId id) -> std::optional<Index> {
    auto it = progress_.find(id);
    if (it == progress_.end()) return std::nullopt;
    return it->second.match;
  });
}

bool ProgressTracker::quorum_active(NodeId self, std::uint64_t now_ms,
                                    std::uint64_t window_ms) const {
  std::map<NodeId, bool> active;
  for (const auto& [id, p] : progress_) {
    if (!is_voter(id)) continue;
    ANYA_ASSERT(p.last_active_ms <= now_ms);
    active[id] = (id == self) || now_ms - p.last_active_ms < window_ms;
  }
  return voters_.vote_result(active) == VoteResult::won;
}

void ProgressTracker::record_vote(NodeId id, bool granted) {
  votes_.emplace(id, granted);  // the first answer of a voter counts; duplicates are ignored
}

}  // namespace anya::engine

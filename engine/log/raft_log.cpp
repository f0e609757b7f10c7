#include "engine/log/raft_log.hpp"

#include <algorithm>

#include "engine/base/result.hpp"

namespace anya::engine {

void RaftLog::restore(std::vector<Entry> entries, Index committed) {
  restore(0, 0, std::move(entries), committed);
}

void RaftLog::restore(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries,
                      Index committed) {
  ANYA_ASSERT(entries_.empty());
  ANYA_ASSERT(snapshot_index_ == 0);
  ANYA_ASSERT(committed >= snapshot_index);
  snapshot_index_ = snapshot_index;
  snapshot_term_ = snapshot_term;
  entries_ = std::move(entries);
  for (std::size_t k = 0; k < entries_.size(); k++) {
    ANYA_ASSERT(entries_[k].index == snapshot_index_ + 1 + k);
  }
  stable_index_ = last_index();
  ANYA_ASSERT(committed <= last_index());
  committed_ = committed;
  applied_ = snapshot_index_;
  check_invariants_full();
}

void RaftLog::compact(Index index) {
  ANYA_ASSERT(index >= snapshot_index_);
  ANYA_ASSERT(index <= applied_);
  ANYA_ASSERT(index <= stable_index_);
  if (index == snapshot_index_) return;
  const Term term = at(index).term;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(
                                                          index - snapshot_index_));
  snapshot_index_ = index;
  snapshot_term_ = term;
  check_invariants();
}

void RaftLog::restore_snapshot(Index index, Term term) {
  ANYA_ASSERT(index > committed_);
  ANYA_ASSERT(!match_term(index, term));
  entries_.clear();
  snapshot_index_ = index;
  snapshot_term_ = term;
  stable_index_ = index;
  committed_ = index;
  applied_ = index;
  check_invariants();
}

Term RaftLog::last_term() const {
  return entries_.empty() ? snapshot_term_ : entries_.back().term;
}

std::optional<Term> RaftLog::term_at(Index index) const {
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return entries_[index - snapshot_index_ - 1].term;
}

bool RaftLog::match_term(Index index, Term term) const {
  std::optional<Term> t = term_at(index);
  return t.has_value() && *t == term;
}

const Entry& RaftLog::at(Index index) const {
  ANYA_ASSERT(index > snapshot_index_);
  ANYA_ASSERT(index <= last_index());
  return entries_[index - snapshot_index_ - 1];
}

bool RaftLog::is_up_to_date(Index index, Term term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

Index RaftLog::find_conflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return 0;
}

std::optional<Index> RaftLog::maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                           const std::vector<Entry>& entries) {
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  Term previous = prev_term;
  for (std::size_t k = 0; k < entries.size(); k++) {
    if (entries[k].index != prev_index + 1 + k) return std::nullopt;  // not contiguous: ignore
    if (entries[k].term < previous) return std::nullopt;  // terms go backwards: ignore
    previous = entries[k].term;
  }
  const Index last_new = prev_index + entries.size();
  const Index conflict = find_conflict(entries);
  if (conflict != 0) {
    // §5.3: delete the conflicting entry and all that follow it, then append.
    ANYA_ASSERT(conflict > committed_);
    truncate_and_append(entries, conflict - prev_index - 1);
  }
  commit_to(std::min(leader_commit, last_new));
  return last_new;
}

void RaftLog::truncate_and_append(const std::vector<Entry>& entries, std::size_t from) {
  ANYA_ASSERT(from < entries.size());
  const Index start = entries[from].index;
  ANYA_ASSERT(start > snapshot_index_);
  ANYA_ASSERT(start <= last_index() + 1);
  entries_.resize(start - snapshot_index_ - 1);
  stable_index_ = std::min(stable_index_, start - 1);  // the overwritten tail is no longer durable
  entries_.insert(entries_.end(), entries.begin() + static_cast<std::ptrdiff_t>(from),
                  entries.end());
}

Index RaftLog::append(std::vector<Entry> entries) {
  if (entries.empty()) return last_index();
  ANYA_ASSERT(entries.front().index == last_index() + 1);
  for (Entry& e : entries) {
    ANYA_ASSERT(e.term >= last_term());
    entries_.push_back(std::move(e));
  }
  return last_index();
}

Index RaftLog::find_conflict_by_term(Index index, Term term) const {
  index = std::min(index, last_index());
  while (index > snapshot_index_) {
    std::optional<Term> t = term_at(index);
    ANYA_ASSERT(t.has_value());
    if (*t <= term) break;
    index--;
  }
  return index;
}

std::vector<Entry> RaftLog::slice(Index lo, Index hi, std::size_t max_bytes,
                                  std::size_t max_count) const {
  ANYA_ASSERT(lo > snapshot_index_);
  ANYA_ASSERT(hi <= last_index() + 1);
  std::vector<Entry> out;
  std::size_t bytes = 0;
  for (Index i = lo; i < hi && out.size() < max_count; i++) {
    const Entry& e = at(i);
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

std::vector<Entry> RaftLog::unstable_entries() const {
  return {entries_.begin() + static_cast<std::ptrdiff_t>(stable_index_ - snapshot_index_),
          entries_.end()};
}

void RaftLog::stable_to(Index index, Term term) {
  // A later conflict may have replaced the entries that were persisted; then only the part
  // that still carries the persisted term is stable.
  if (index <= stable_index_ || !match_term(index, term)) return;
  stable_index_ = index;
}

std::vector<Entry> RaftLog::next_committed_entries(std::size_t max_count) const {
  std::vector<Entry> out;
  const Index hi = std::min(committed_, stable_index_);
  for (Index i = applied_ + 1; i <= hi && out.size() < max_count; i++) out.push_back(at(i));
  return out;
}

bool RaftLog::has_next_committed() const {
  return applied_ < std::min(committed_, stable_index_);
}

void RaftLog::commit_to(Index index) {
  if (index <= committed_) return;  // commit never goes back
  ANYA_ASSERT(index <= last_index());
  committed_ = index;
}

bool RaftLog::maybe_commit(Index index, Term term) {
  if (index > committed_ && match_term(index, term)) {
    commit_to(index);
    return true;
  }
  return false;
}

void RaftLog::applied_to(Index index) {
  if (index == 0) return;
  ANYA_ASSERT(index >= applied_);
  ANYA_ASSERT(index <= committed_);
  applied_ = index;
}

void RaftLog::check_invariants() const {
  ANYA_ASSERT(snapshot_index_ <= applied_);
  ANYA_ASSERT(applied_ <= committed_);
  ANYA_ASSERT(committed_ <= last_index());
  ANYA_ASSERT(snapshot_index_ <= stable_index_);
  ANYA_ASSERT(stable_index_ <= last_index());
}

void RaftLog::check_invariants_full() const {
  check_invariants();
  Term prev = snapshot_term_;
  for (std::size_t k = 0; k < entries_.size(); k++) {
    ANYA_ASSERT(entries_[k].index == snapshot_index_ + 1 + k);
    ANYA_ASSERT(entries_[k].term >= prev);
    prev = entries_[k].term;
  }
}

}  // namespace anya::engine

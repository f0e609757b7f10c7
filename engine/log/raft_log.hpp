// The replicated log as one node holds it: entries (all in memory), how far they are durable
// (stable), committed and applied. Knows nothing of roles, peers or messages.
//
// Compaction: entries up to snapshot_index have been folded into a snapshot of the state
// machine and dropped; only their last (snapshot_index, snapshot_term) is remembered, so that
// term_at(snapshot_index) still answers (an append right after it can be matched). Below it,
// term_at is nullopt and a leader must send a snapshot instead of entries.
//
// Invariants (checked by check_invariants() and by assertions at each mutation):
//   snapshot_index <= applied <= committed <= last_index
//   snapshot_index <= stable_index <= last_index
//   entries_[k].index == snapshot_index + 1 + k, and terms never decrease along the log.
// Entries at or below `committed` are never truncated: a conflict there is a bug.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "engine/base/types.hpp"

namespace anya::engine {

class RaftLog {
 public:
  RaftLog() = default;

  // Restart from durable state: every entry given is stable; `committed` comes from the hard state.
  void restore(std::vector<Entry> entries, Index committed);
  // Restart from a snapshot covering (snapshot_index, snapshot_term) and the entries after it
  // (entries[0].index == snapshot_index + 1). Applied starts at the snapshot.
  void restore(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries,
               Index committed);

  // Drop the entries up to `index`, which a snapshot covers: snapshot_index <= index <=
  // min(applied, stable) (asserted). term_at(index) keeps working.
  void compact(Index index);
  // A snapshot from the leader, newer than our commit index (asserted) and not matched by our
  // log (asserted: a matching log only needs commit_to). Every entry goes: the log is empty,
  // continuing at index + 1, and committed = applied = stable = index.
  void restore_snapshot(Index index, Term term);
  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }

  Index first_index() const { return snapshot_index_ + 1; }
  Index last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index stable_index() const { return stable_index_; }

  // Term of the entry at `index`; 0 for index 0; nullopt if beyond the log or compacted away.
  std::optional<Term> term_at(Index index) const;
  bool match_term(Index index, Term term) const;
  const Entry& at(Index index) const;
  // Every entry held, from first_index(); valid until the next mutation.
  std::span<const Entry> entries() const { return entries_; }

  // Raft §5.4.1: is a log ending at (last_index, last_term) at least as up to date as ours?
  bool is_up_to_date(Index last_index, Term last_term) const;

  // Follower side of an append (§5.3). If our log holds (prev_index, prev_term), append the new
  // entries (truncating the first conflict), advance commit to min(leader_commit, last new index)
  // and return the last index known to match the leader. Otherwise nullopt.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                    const std::vector<Entry>& entries);

  // Leader side: append entries whose indexes continue the log. Returns the new last index.
  Index append(std::vector<Entry> entries);

  // Fast back-off: the largest index <= `index` whose term is <= `term`. Used by a follower to
  // hint where its log might match, and by the leader to skip a whole term of mismatches.
  Index find_conflict_by_term(Index index, Term term) const;

  // Entries in [lo, hi), at least one if the range is non-empty, then up to max_bytes of data.
  std::vector<Entry> slice(Index lo, Index hi, std::size_t max_bytes, std::size_t max_count) const;

  // Entries not yet durable, i.e. (stable_index, last_index].
  std::vector<Entry> unstable_entries() const;
  bool has_unstable() const { return stable_index_ < last_index(); }
  // The host persisted everything up to (index, term). Ignored if the log changed since.
  void stable_to(Index index, Term term);

  // Committed, durable and not yet applied: (applied, min(committed, stable)].
  std::vector<Entry> next_committed_entries(std::size_t max_count) const;
  bool has_next_committed() const;
  void commit_to(Index index);
  // Commit `index` if it carries `term` (leaders commit only current-term entries, §5.4.2).
  bool maybe_commit(Index index, Term term);
  void applied_to(Index index);

  // O(1) bounds checks, cheap enough for every batch.
  void check_invariants() const;
  // Also walks every entry (indexes contiguous, terms non-decreasing): O(log length).
  void check_invariants_full() const;

 private:
  // Index of the first entry in `entries` that is new or conflicts with ours; 0 if none.
  Index find_conflict(const std::vector<Entry>& entries) const;
  void truncate_and_append(const std::vector<Entry>& entries, std::size_t from);

  Index snapshot_index_ = 0;  // the last index folded into a snapshot (0: none yet)
  Term snapshot_term_ = 0;
  std::vector<Entry> entries_;
  Index stable_index_ = 0;
  Index committed_ = 0;
  Index applied_ = 0;
};

}  // namespace anya::engine

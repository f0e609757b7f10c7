#include "engine/testing/memory_ports.hpp"

#include <algorithm>

namespace anya::engine::testing {

namespace {
Index last_of(const RestoredState& s, Index base) { return base + s.entries.size(); }
}  // namespace

Status MemoryStorage::append(const std::vector<Entry>& entries) {
  if (fail_all) return {Errc::io_error, "memory storage: append failed (injected)"};
  if (entries.empty()) return {};
  const Index first = entries.front().index;
  ANYA_ASSERT(first > staged_base_);  // never below what a snapshot covers
  ANYA_ASSERT(first <= last_of(staged_, staged_base_) + 1);  // no holes
  staged_.entries.resize(first - 1 - staged_base_);
  staged_.entries.insert(staged_.entries.end(), entries.begin(), entries.end());
  dirty_from_ = std::min(dirty_from_, first);
  return {};
}

Status MemoryStorage::save_hard_state(const HardState& state) {
  if (fail_all) return {Errc::io_error, "memory storage: save_hard_state failed (injected)"};
  staged_.hard_state = state;
  return {};
}

Status MemoryStorage::save_snapshot(const SnapshotMeta& meta, std::string_view data) {
  if (fail_all) return {Errc::io_error, "memory storage: save_snapshot failed (injected)"};
  staged_.snapshot = Snapshot{meta, std::string(data)};
  const Index last = last_of(staged_, staged_base_);
  const bool continues =
      meta.index <= staged_base_ ||
      (meta.index <= last && staged_.entries[meta.index - staged_base_ - 1].term == meta.term);
  if (!continues) {
    staged_.entries.clear();
    staged_base_ = meta.index;
    entries_reset_ = true;
  }
  return {};
}

Status MemoryStorage::compact(Index index) {
  if (fail_all) return {Errc::io_error, "memory storage: compact failed (injected)"};
  ANYA_ASSERT(durable_.snapshot.has_value());
  ANYA_ASSERT(index <= durable_.snapshot->meta.index);  // covered by a durable snapshot
  auto drop = [index](RestoredState& s, Index& base) {
    if (index <= base) return;
    const std::size_t n = std::min<std::size_t>(index - base, s.entries.size());
    s.entries.erase(s.entries.begin(), s.entries.begin() + static_cast<std::ptrdiff_t>(n));
    base += n;
  };
  drop(staged_, staged_base_);
  drop(durable_, durable_base_);
  return {};
}

Status MemoryStorage::sync() {
  if (fail_all) return {Errc::io_error, "memory storage: sync failed (injected)"};
  durable_.hard_state = staged_.hard_state;
  durable_.snapshot = staged_.snapshot;
  if (entries_reset_ || durable_base_ != staged_base_) {
    durable_.entries = staged_.entries;
    durable_base_ = staged_base_;
    entries_reset_ = false;
  } else {
    const std::size_t keep = std::min<std::size_t>(
        dirty_from_ > staged_base_ ? dirty_from_ - 1 - staged_base_ : 0, staged_.entries.size());
    durable_.entries.resize(std::min(keep, durable_.entries.size()));
    durable_.entries.insert(durable_.entries.end(),
                            staged_.entries.begin() + static_cast<std::ptrdiff_t>(keep),
                            staged_.entries.end());
  }
  dirty_from_ = last_of(staged_, staged_base_) + 1;
  syncs_++;
  return {};
}

Result<RestoredState> MemoryStorage::load() {
  if (fail_all) return Status(Errc::io_error, "memory storage: load failed (injected)");
  return durable_;
}

void MemoryStorage::drop_unsynced() {
  staged_ = durable_;
  staged_base_ = durable_base_;
  entries_reset_ = false;
  dirty_from_ = last_of(staged_, staged_base_) + 1;
}

void AppliedLog::apply(const Entry& entry) {
  // Only application entries arrive (the engine keeps no-ops and its own records), in order.
  ANYA_ASSERT(entry.type == EntryType::normal);
  ANYA_ASSERT(applied_.empty() || applied_.back().index < entry.index);
  applied_.push_back(entry);
}

namespace {
void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}
}  // namespace

// Per entry: index u64, term u64, data length u32, data.
std::string AppliedLog::snapshot() {
  std::string out;
  for (const Entry& e : applied_) {
    put(out, e.index, 8);
    put(out, e.term, 8);
    put(out, e.data.size(), 4);
    out += e.data;
  }
  return out;
}

Result<std::vector<Entry>> AppliedLog::parse(std::string_view data) {
  std::vector<Entry> entries;
  std::size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 20) {
      return {Errc::malformed, "applied log snapshot: entry header truncated at byte offset " +
                                   std::to_string(at)};
    }
    Entry e;
    e.index = get(data, at, 8);
    e.term = get(data, at + 8, 8);
    const std::size_t size = get(data, at + 16, 4);
    if (!entries.empty() && e.index <= entries.back().index) {
      return {Errc::malformed, "applied log snapshot: index " + std::to_string(e.index) +
                                   " out of order at byte offset " + std::to_string(at)};
    }
    at += 20;
    if (data.size() - at < size) {
      return {Errc::malformed, "applied log snapshot: entry data truncated at byte offset " +
                                   std::to_string(at)};
    }
    e.data = std::string(data.substr(at, size));
    at += size;
    entries.push_back(std::move(e));
  }
  return entries;
}

Status AppliedLog::restore(std::string_view data) {
  Result<std::vector<Entry>> entries = parse(data);
  if (!entries) return entries.status();
  applied_ = std::move(entries).value();
  restores_++;
  return {};
}

}  // namespace anya::engine::testing

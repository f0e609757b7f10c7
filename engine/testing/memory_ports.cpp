#include "engine/testing/memory_ports.hpp"

#include <algorithm>

namespace anya::engine::testing {

Status MemoryStorage::append(const std::vector<Entry>& entries) {
  if (fail_all) return {Errc::io_error, "memory storage: append failed (injected)"};
  if (entries.empty()) return {};
  const Index first = entries.front().index;
  ANYA_ASSERT(first >= 1);
  ANYA_ASSERT(first <= staged_.entries.size() + 1);  // no holes
  staged_.entries.resize(first - 1);
  staged_.entries.insert(staged_.entries.end(), entries.begin(), entries.end());
  dirty_from_ = std::min(dirty_from_, first);
  return {};
}

Status MemoryStorage::save_hard_state(const HardState& state) {
  if (fail_all) return {Errc::io_error, "memory storage: save_hard_state failed (injected)"};
  staged_.hard_state = state;
  return {};
}

Status MemoryStorage::sync() {
  if (fail_all) return {Errc::io_error, "memory storage: sync failed (injected)"};
  durable_.hard_state = staged_.hard_state;
  const std::size_t keep = std::min<std::size_t>(dirty_from_ - 1, staged_.entries.size());
  durable_.entries.resize(std::min(keep, durable_.entries.size()));
  durable_.entries.insert(durable_.entries.end(),
                          staged_.entries.begin() + static_cast<std::ptrdiff_t>(keep),
                          staged_.entries.end());
  dirty_from_ = staged_.entries.size() + 1;
  syncs_++;
  return {};
}

Result<RestoredState> MemoryStorage::load() {
  if (fail_all) return Status(Errc::io_error, "memory storage: load failed (injected)");
  return durable_;
}

void MemoryStorage::drop_unsynced() {
  staged_ = durable_;
  dirty_from_ = staged_.entries.size() + 1;
}

void AppliedLog::apply(const Entry& entry) {
  // Only application entries arrive (the engine keeps no-ops and its own records), in order.
  ANYA_ASSERT(entry.type == EntryType::normal);
  ANYA_ASSERT(applied_.empty() || applied_.back().index < entry.index);
  applied_.push_back(entry);
}

}  // namespace anya::engine::testing

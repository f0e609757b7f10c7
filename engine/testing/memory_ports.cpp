#include "engine/testing/memory_ports.hpp"

namespace anya::engine::testing {

Status MemoryStorage::append(const std::vector<Entry>& entries) {
  if (fail_all) return {Errc::io_error, "memory storage: append failed (injected)"};
  if (entries.empty()) return {};
  const Index first = entries.front().index;
  ANYA_ASSERT(first >= 1);
  ANYA_ASSERT(first <= staged_.entries.size() + 1);  // no holes
  staged_.entries.resize(first - 1);
  staged_.entries.insert(staged_.entries.end(), entries.begin(), entries.end());
  return {};
}

Status MemoryStorage::save_hard_state(const HardState& state) {
  if (fail_all) return {Errc::io_error, "memory storage: save_hard_state failed (injected)"};
  staged_.hard_state = state;
  return {};
}

Status MemoryStorage::sync() {
  if (fail_all) return {Errc::io_error, "memory storage: sync failed (injected)"};
  durable_ = staged_;
  syncs_++;
  return {};
}

Result<RestoredState> MemoryStorage::load() {
  if (fail_all) return Status(Errc::io_error, "memory storage: load failed (injected)");
  return durable_;
}

void MemoryStorage::drop_unsynced() { staged_ = durable_; }

void AppliedLog::apply(const Entry& entry) {
  ANYA_ASSERT(applied_.empty() || applied_.back().index + 1 == entry.index);
  applied_.push_back(entry);
}

}  // namespace anya::engine::testing

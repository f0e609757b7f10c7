// In-memory implementations of the ports, for unit tests, properties and benchmarks. Storage
// separates what is staged from what is durable (synced), so tests can check ordering and
// crash a node losing exactly what was never synced.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "engine/ports.hpp"

namespace anya::engine::testing {

class MemoryStorage : public StoragePort {
 public:
  Status append(const std::vector<Entry>& entries) override;
  Status save_hard_state(const HardState& state) override;
  Status sync() override;
  Result<RestoredState> load() override;
  Status save_snapshot(const SnapshotMeta& meta, std::string_view data) override;
  Status compact(Index index) override;

  // A crash: whatever was staged but not synced is lost.
  void drop_unsynced();
  const RestoredState& durable() const { return durable_; }
  std::uint64_t syncs() const { return syncs_; }
  // When set, every operation fails with io_error (a dead disk).
  bool fail_all = false;

 private:
  RestoredState staged_;
  RestoredState durable_;
  // Entries before entries[0] (compacted, or replaced by a snapshot): entries[k].index ==
  // base + 1 + k.
  Index staged_base_ = 0;
  Index durable_base_ = 0;
  // Entries of staged_ from this index on may differ from durable_; sync() copies only those,
  // so a sync costs what was written since the last one, not the whole log.
  Index dirty_from_ = 1;
  bool entries_reset_ = false;  // a snapshot replaced the staged log: sync() copies all of it
  std::uint64_t syncs_ = 0;
};

class ManualClock : public ClockPort {
 public:
  std::uint64_t now_ms() override { return now_ms_; }
  void set(std::uint64_t now_ms) {
    ANYA_ASSERT(now_ms >= now_ms_);
    now_ms_ = now_ms;
  }

 private:
  std::uint64_t now_ms_ = 0;
};

// Sends into a callback (the test cluster's queue).
class CallbackNetwork : public NetworkPort {
 public:
  explicit CallbackNetwork(std::function<void(const Message&)> deliver)
      : deliver_(std::move(deliver)) {}
  void send(const Message& message) override { deliver_(message); }

 private:
  std::function<void(const Message&)> deliver_;
};

// Records applied entries in order. Its snapshot is every entry applied so far, so a replica
// restored from one holds exactly what a replica that applied the same prefix holds.
class AppliedLog : public StateMachinePort {
 public:
  void apply(const Entry& entry) override;
  std::string snapshot() override;
  Status restore(std::string_view data) override;
  Status check_snapshot(std::string_view data) override { return parse(data).status(); }
  const std::vector<Entry>& applied() const { return applied_; }
  void clear() { applied_.clear(); }
  std::uint64_t restores() const { return restores_; }

 private:
  static Result<std::vector<Entry>> parse(std::string_view data);

  std::vector<Entry> applied_;
  std::uint64_t restores_ = 0;
};

}  // namespace anya::engine::testing

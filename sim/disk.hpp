// The simulated disk of one node: an append-only file of checksummed records, of which only the
// synced part survives a crash. Models what storage faults do to a write-ahead log:
//   - writes are pending until sync(); a crash loses them,
//   - a crash can leave a random prefix of the pending bytes on disk, tearing the last record,
//   - a bit can flip in durable bytes (found by the record checksum on the next load),
//   - a sync can fail part-way, after which the process dies.
// Record boundaries are kept as the simulator's own metadata (as a filesystem keeps its own),
// so a torn record can only be the last one, and a checksum failure anywhere else is
// corruption: load() then fails and the node must stay down.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/prng.hpp"
#include "engine/ports.hpp"

namespace anya::sim {

class SimDisk : public engine::StoragePort {
 public:
  Status append(const std::vector<engine::Entry>& entries) override;
  Status save_hard_state(const engine::HardState& state) override;
  Status sync() override;
  Result<engine::RestoredState> load() override;
  // A snapshot is a record like the others: pending until synced, lost (or torn) in a crash.
  Status save_snapshot(const engine::SnapshotMeta& meta, std::string_view data) override;
  // A record too: on load, entries up to `index` are dropped.
  Status compact(engine::Index index) override;

  // The process died: pending bytes are lost, except that with probability torn_ppm a random
  // prefix of them reaches the disk (possibly cutting the last record in half).
  void crash(Prng& rng, std::uint32_t torn_ppm);
  // Flip one random bit of the durable bytes.
  void flip_bit(Prng& rng);
  // The next sync fails (the process is about to die mid-fsync).
  void fail_next_sync() { fail_next_sync_ = true; }

  std::uint64_t durable_bytes() const { return durable_.size(); }
  std::uint64_t syncs() const { return syncs_; }
  std::uint64_t snapshots_saved() const { return snapshots_saved_; }
  // Called by compact() before anything else: the simulator observes the node's log once more,
  // so the checker has seen every entry before it is compacted away (a one-voter leader can
  // append, commit and compact entries within one event).
  std::function<void()> before_compact;
  std::uint64_t torn_records_dropped() const { return torn_dropped_; }
  // Entries appended (index of the first) since the last call: for incremental checking.
  engine::Index take_changed_from();

 private:
  void add_record(std::uint8_t type, const std::string& payload);

  std::string durable_;                   // bytes that survive a crash
  std::vector<std::size_t> durable_ends_;  // end offset of each durable record
  std::string pending_;                   // written, not yet synced
  std::vector<std::size_t> pending_ends_;  // relative to pending_
  bool fail_next_sync_ = false;
  std::uint64_t syncs_ = 0;
  std::uint64_t torn_dropped_ = 0;
  std::uint64_t snapshots_saved_ = 0;
  engine::Index changed_from_ = 1;
};

}  // namespace anya::sim

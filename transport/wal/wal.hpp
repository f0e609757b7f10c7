// The durable storage of a production node: a write-ahead log on a real disk implementing
// engine::StoragePort (engine/ports.hpp).
//
// Layout of the directory (other files are left alone):
//   wal-<sequence>.seg  segment files of checksummed records, format in segment.hpp. Entries and
//                       the commit index go here, in the order they are synced.
//   snapshot            the latest snapshot (snapshot.hpp), its data the engine's snapshot
//                       envelope (membership, then the host's data). Written durably by
//                       save_snapshot(), which also stages a snapshot record in the segments.
//   hardstate           term and vote, as an engine codec hard-state frame (its commit field is
//                       written as 0 and ignored: the commit index lives in the segments, where it
//                       costs no extra fsync). Replaced atomically, and only when term or vote
//                       changed. hardstate.tmp is a crash's leftover and is removed on open.
//
// Staging: append() and save_hard_state() only stage, in memory; sync() writes and fsyncs. So the
// files hold exactly what some sync() wrote, and dropping a Wal without sync() loses what was
// staged, just like a crash. load() reads the files back.
//
// Conflict truncation is never done in place: records are only appended, and on replay a later
// entry at index i replaces every entry at index >= i, across segments too. The commit record of
// a sync is written after its entries, and on load the commit index is clamped to the last entry.
//
// After a failed write or fsync the state of the files is unknown (a failed fsync may have
// dropped dirty pages), so every later call fails: reopen the Wal to recover from the disk.
//
// One process at a time: open() takes an exclusive flock on the directory (Errc::busy if held).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/ports.hpp"
#include "transport/wal/file_io.hpp"

namespace anya::transport {

struct WalOptions {
  std::filesystem::path dir;  // created if missing
  // Roll to a new segment file once the current one would grow past this. A single record larger
  // than this still goes in (a segment holds at least one entry). Limits: kMinSegmentBytes ..
  // kMaxSegmentBytes, else open() fails with invalid_argument.
  std::uint64_t segment_bytes = 64u << 20;
  bool fsync = true;  // false only for tests and benchmarks that say so
  FsyncObserver on_fsync;  // observes each fsync's latency in microseconds (metrics)
};

struct RecoveryReport {
  bool fresh = true;  // no segment and no hard-state file was found
  // "<file>: byte offset N: <why>; M bytes dropped" when a torn tail was cut away.
  std::optional<std::string> torn_tail;
  bool removed_hard_state_temp = false;  // a crash's leftover hardstate.tmp was removed
  std::uint64_t segments = 0;            // segment files after recovery
  engine::Index first_index = 0;         // 0 and 0 when the log holds no entry
  engine::Index last_index = 0;
};

class Wal : public engine::StoragePort {
 public:
  static constexpr std::uint64_t kMinSegmentBytes = 4096;
  static constexpr std::uint64_t kMaxSegmentBytes = std::uint64_t{1} << 30;
  // Bytes staged between two syncs. At the limit append() fails with Errc::busy: sync first.
  static constexpr std::uint64_t kMaxStagedBytes = std::uint64_t{1} << 30;
  // Segment files in one directory; more means compaction is not running. open() refuses.
  static constexpr std::uint64_t kMaxSegmentFiles = 100000;

  // Opens (creating if missing) and recovers the log in options.dir: cuts a torn tail of the last
  // segment away and removes a leftover hardstate.tmp, reporting both in recovery(). Any other
  // damage (see segment.hpp; the snapshot file is checked too) fails with Errc::corrupt naming
  // the file and byte offset, and then no file has been touched. Unknown format version:
  // Errc::unsupported naming the file. When the segments lack the snapshot file's record as their
  // last snapshot record (a crash before save_snapshot's record was synced), the record is staged
  // again, so the log continues after the snapshot (and entries that the snapshot replaced stay
  // dropped after a compaction); recovery() counts only the entries that continue it.
  static Result<std::unique_ptr<Wal>> open(WalOptions options);
  ~Wal() override = default;
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Stages entries, replacing every stored entry at index >= entries.front().index. Entries must
  // be consecutive and start at most one past the last staged index (any index on an empty log),
  // else invalid_argument.
  Status append(const std::vector<engine::Entry>& entries) override;
  // Stages the hard state. sync() rewrites the hard-state file only if term or vote changed.
  Status save_hard_state(const engine::HardState& state) override;
  // Writes what is staged, fsyncs the segments written (and the directory when a segment was
  // created or removed), then replaces the hard-state file if term or vote changed.
  Status sync() override;
  // What is on disk: the snapshot, entries from the first retained index that continue it, the
  // commit index clamped to them (or to the snapshot).
  Result<engine::RestoredState> load() override;
  // Writes the snapshot file durably (atomic replace), then stages a snapshot record: on replay,
  // stored entries that do not continue (meta.index, meta.term) are dropped
  // (engine::StoragePort::save_snapshot). Data over kMaxSnapshotBytes: invalid_argument.
  Status save_snapshot(const engine::SnapshotMeta& meta, std::string_view data) override;

  const RecoveryReport& recovery() const { return report_; }

  // Log compaction after a snapshot covering everything up to `through`: deletes the oldest
  // segment files while all their entries are < through (the entry at `through` stays, so that
  // replay can check the snapshot against its term), never the one being written. load()
  // then returns entries from the first retained index; the caller drops those <= through.
  Status compact(engine::Index through) override;

  // Total bytes of the segment files (what a bounded log measures).
  std::uint64_t size_bytes() const;

 private:
  struct Segment {
    std::uint64_t sequence = 0;
    std::filesystem::path path;
    std::uint64_t size_bytes = 0;  // bytes written (synced or being synced)
    std::uint64_t base_bytes = 0;  // header and carried commit record: a roll never helps below
    engine::Index max_index = 0;   // largest entry index in the file, 0 if none
  };
  // One record of staged_bytes_: [previous end, end).
  struct StagedRecord {
    std::size_t end = 0;
    engine::Index entry_index = 0;  // 0 for a commit record
    engine::Index commit = 0;       // for a commit record
    bool snapshot = false;          // a snapshot record (its index in entry_index)
  };

  explicit Wal(WalOptions options) : options_(std::move(options)) {}
  Status check_usable() const;
  Status sync_staged();
  Status write_staged();
  Status roll();
  Status write_to_active(std::string_view bytes);
  Status fsync_file(const Fd& fd, const std::filesystem::path& path);
  Status fsync_dir();

  WalOptions options_;
  Fd dir_fd_;  // holds the directory's flock for the lifetime of the Wal
  // In sequence order, consecutive; back() is the segment being written.
  std::vector<Segment> segments_;
  Fd active_fd_;  // write descriptor of segments_.back(), opened on first write
  bool active_dirty_ = false;  // written since its last fsync
  bool dir_dirty_ = false;     // a segment was created since the last directory fsync

  std::string staged_bytes_;  // records not yet written
  std::vector<StagedRecord> staged_records_;
  engine::Index staged_last_index_ = 0;  // last entry index once staged records are written
  engine::HardState staged_hard_state_;
  engine::HardState durable_hard_state_;  // term and vote in the hard-state file
  engine::Index written_commit_ = 0;       // the last commit index in the segments

  Status failed_;  // set by a failed write or fsync; every later call returns it
  RecoveryReport report_;
};

}  // namespace anya::transport

#include "transport/wal/wal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "engine/codec/codec.hpp"
#include "transport/wal/segment.hpp"
#include "transport/wal/snapshot.hpp"

namespace anya::transport {
namespace {

using engine::Entry;
using engine::HardState;
using engine::Index;

constexpr std::string_view kHardStateFile = "hardstate";
constexpr std::string_view kHardStateTemp = "hardstate.tmp";
// The hard-state file is one codec frame of a few dozen bytes; anything much larger is not ours.
constexpr std::uint64_t kMaxHardStateFileBytes = 4096;
static_assert(engine::kFrameHeaderBytes + engine::kHardStateBytes + engine::kFrameChecksumBytes <=
              kMaxHardStateFileBytes);

// What replaying the segment files gives.
struct ReplayedSegment {
  std::uint64_t sequence = 0;
  std::filesystem::path path;
  std::uint64_t valid_bytes = 0;
  Index max_index = 0;
};
struct TornTail {
  std::size_t segment = 0;  // position in Replay::segments
  std::uint64_t valid_bytes = 0;
  std::uint64_t file_bytes = 0;
  std::string why;
};
struct Replay {
  std::vector<ReplayedSegment> segments;
  std::vector<Entry> entries;  // contiguous, from the first retained index
  Index raw_commit = 0;        // the last commit record as written
  Index commit = 0;            // raw_commit clamped to entries.back().index (0 with no entry)
  std::optional<SnapshotMeta> last_snapshot_record;  // the last snapshot record, if any
  std::optional<TornTail> torn;
};

// The sequence numbers of the segment files in `dir`, sorted; they must be consecutive (only the
// oldest are ever removed, one at a time), else a segment has gone missing: corrupt.
Result<std::vector<std::uint64_t>> list_segments(const std::filesystem::path& dir) {
  std::vector<std::uint64_t> sequences;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto sequence = parse_segment_file_name(it->path().filename().string())) {
      sequences.push_back(*sequence);
    }
    if (sequences.size() > Wal::kMaxSegmentFiles) {
      return Status(Errc::unsupported, dir.string() + ": more than " +
                                           std::to_string(Wal::kMaxSegmentFiles) +
                                           " WAL segment files; is compaction running?");
    }
  }
  if (ec) return Status(Errc::io_error, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(sequences.begin(), sequences.end());
  for (std::size_t i = 1; i < sequences.size(); ++i) {
    if (sequences[i] != sequences[i - 1] + 1) {
      return Status(Errc::corrupt, (dir / segment_file_name(sequences[i - 1] + 1)).string() +
                                       " is missing: segments " +
                                       segment_file_name(sequences[i - 1]) + " and " +
                                       segment_file_name(sequences[i]) + " are not consecutive");
    }
  }
  return sequences;
}

// StoragePort::save_snapshot's rule: stored entries that do not continue a snapshot at
// (index, term) go. Entries all after the index (compacted up to it) do continue it.
void continue_snapshot(std::vector<Entry>& entries, Index index, engine::Term term) {
  if (entries.empty()) return;
  const Index first = entries.front().index;
  const Index last = entries.back().index;
  if (first == index + 1) return;
  const bool holds = index >= first && index <= last && entries[index - first].term == term;
  if (!holds) entries.clear();
}

// A snapshot record on replay. When its index lies below the first replayed entry minus one, the
// entries the rule would test went with older segments, which compaction removes only once a
// durable snapshot covers them, and the retained entries continued it in the full log: keep them.
// (Had this snapshot replaced them instead, the engine's next entry, at index + 1, drops them
// again on replay. Compaction past them needs a later snapshot, whose record comes after this
// one and before any entry the engine appended after it, even when a crash lost it (open()
// stages it again), and that record drops them. With neither, load() drops them by the
// snapshot file's rule.)
void replay_snapshot_record(std::vector<Entry>& entries, Index index, engine::Term term) {
  if (!entries.empty() && index + 1 < entries.front().index) return;
  continue_snapshot(entries, index, term);
}

// Applies one entry record: a later entry at index i replaces every entry at index >= i.
Status replay_entry(Replay& replay, Entry entry, const std::filesystem::path& path,
                    std::uint64_t offset) {
  auto& entries = replay.entries;
  const Index index = entry.index;
  if (index == 0) {
    return {Errc::corrupt, path.string() + ": byte offset " + std::to_string(offset) +
                               ": entry at index 0"};
  }
  if (!entries.empty()) {
    const Index first = entries.front().index;
    const Index last = entries.back().index;
    if (index > last + 1) {
      return {Errc::corrupt, path.string() + ": byte offset " + std::to_string(offset) +
                                 ": entry " + std::to_string(index) + " leaves a gap after " +
                                 std::to_string(last)};
    }
    // Below the first retained index the replacement reaches into compacted entries: only the
    // new entries remain.
    entries.resize(index >= first ? static_cast<std::size_t>(index - first) : 0);
  }
  entries.push_back(std::move(entry));
  ANYA_ASSERT(entries.back().index == entries.front().index + entries.size() - 1);
  return {};
}

// Reads every segment in order; touches nothing. A torn tail of the last segment is reported in
// Replay::torn and its records are not used.
Result<Replay> replay_directory(const std::filesystem::path& dir) {
  auto sequences = list_segments(dir);
  if (!sequences) return sequences.status();
  Replay replay;
  for (std::size_t i = 0; i < sequences->size(); ++i) {
    ReplayedSegment segment{(*sequences)[i], dir / segment_file_name((*sequences)[i]), 0, 0};
    const bool last = i + 1 == sequences->size();
    auto scan = scan_segment(segment.path, segment.sequence, last, [&](const Record& record) {
      if (record.kind == RecordKind::commit) {
        replay.raw_commit = record.commit;
        return Status{};
      }
      if (record.kind == RecordKind::snapshot) {
        segment.max_index = std::max(segment.max_index, record.commit);
        replay.last_snapshot_record = SnapshotMeta{record.commit, record.term};
        replay_snapshot_record(replay.entries, record.commit, record.term);
        return Status{};
      }
      segment.max_index = std::max(segment.max_index, record.entry.index);
      return replay_entry(replay, record.entry, segment.path, record.offset);
    });
    if (!scan) return scan.status();
    segment.valid_bytes = scan->valid_bytes;
    if (scan->torn_tail) {
      replay.torn = TornTail{i, scan->valid_bytes, scan->file_bytes, *scan->torn_tail};
    }
    replay.segments.push_back(std::move(segment));
  }
  // A commit record never points past the entries synced with it, but the clamp keeps that true
  // whatever the files hold (e.g. a later conflict truncation below the commit index).
  const Index last_index = replay.entries.empty() ? 0 : replay.entries.back().index;
  replay.commit = std::min(replay.raw_commit, last_index);
  return replay;
}

// Term and vote from the hard-state file; nullopt when there is none.
Result<std::optional<HardState>> read_hard_state(const std::filesystem::path& dir) {
  const auto path = dir / kHardStateFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) return Status(Errc::io_error, "cannot stat " + path.string() + ": " + ec.message());
    return std::optional<HardState>();
  }
  auto bytes = read_small_file(path, kMaxHardStateFileBytes);
  if (!bytes) return bytes.status();
  auto state = engine::decode_hard_state(*bytes);
  if (!state) {
    return Status(Errc::corrupt, path.string() + ": " + state.status().message());
  }
  return std::optional<HardState>(HardState{state->term, state->vote, 0});
}

// The snapshot file's index and term; nullopt when there is none. Read whole, as load() reads
// it: its checksum covers its data.
Result<std::optional<SnapshotMeta>> read_snapshot_meta(const std::filesystem::path& dir) {
  auto loaded = load_snapshot(dir);
  if (!loaded) return loaded.status();
  if (!*loaded) return std::optional<SnapshotMeta>();
  return std::optional<SnapshotMeta>((*loaded)->first);
}

Status check_options(const WalOptions& options) {
  if (options.dir.empty()) return {Errc::invalid_argument, "WAL directory: empty path"};
  if (options.segment_bytes < Wal::kMinSegmentBytes ||
      options.segment_bytes > Wal::kMaxSegmentBytes) {
    return {Errc::invalid_argument, "WAL segment_bytes " + std::to_string(options.segment_bytes) +
                                        " outside " + std::to_string(Wal::kMinSegmentBytes) +
                                        ".." + std::to_string(Wal::kMaxSegmentBytes)};
  }
  return {};
}

// Creates `dir` if missing (and makes its name durable); then opens and flocks it.
Result<Fd> open_and_lock_directory(const std::filesystem::path& dir, bool durable,
                                   const FsyncObserver& observer) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return Status(Errc::io_error, "cannot create " + dir.string() + ": " + ec.message());
  if (created) {  // only its owner may list it
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) return Status(Errc::io_error, "cannot chmod " + dir.string() + ": " + ec.message());
  }
  if (created && durable) {
    const auto parent = std::filesystem::absolute(dir, ec).parent_path();
    if (ec) return Status(Errc::io_error, "cannot resolve " + dir.string() + ": " + ec.message());
    if (Status s = fsync_directory(parent, observer); !s) return s;
  }
  auto fd = open_directory(dir);
  if (!fd) return fd.status();
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status(Errc::busy, dir.string() + ": WAL directory is in use by another Wal");
    }
    return errno_status("cannot lock", dir);
  }
  return fd;
}

// Cuts the torn tail away (or removes the segment whose header was torn) and makes it durable.
Status drop_torn_tail(const std::filesystem::path& dir, Replay& replay, bool durable,
                      const FsyncObserver& observer) {
  ANYA_ASSERT(replay.torn);
  const TornTail& torn = *replay.torn;
  ANYA_ASSERT(torn.segment + 1 == replay.segments.size());
  const auto& path = replay.segments[torn.segment].path;
  if (torn.valid_bytes == 0) {
    if (Status s = remove_if_exists(path); !s) return s;
    replay.segments.pop_back();
    return durable ? fsync_directory(dir, observer) : Status{};
  }
  auto fd = open_file(path, O_WRONLY);
  if (!fd) return fd.status();
  if (::ftruncate(fd->get(), static_cast<off_t>(torn.valid_bytes)) != 0) {
    return errno_status("cannot truncate", path);
  }
  return durable ? fsync_timed(*fd, path, observer) : Status{};
}

}  // namespace

Result<std::unique_ptr<Wal>> Wal::open(WalOptions options) {
  if (Status s = check_options(options); !s) return s;
  auto dir_fd = open_and_lock_directory(options.dir, options.fsync, options.on_fsync);
  if (!dir_fd) return dir_fd.status();
  // Read and check everything before changing anything, so a corrupt log is left as found.
  auto replay = replay_directory(options.dir);
  if (!replay) return replay.status();
  auto hard_state = read_hard_state(options.dir);
  if (!hard_state) return hard_state.status();
  // The snapshot file is durable before its record (save_snapshot): after a crash between the
  // two, the segments may still end in the entries it replaced, and the log must continue after
  // the snapshot, not after them. The record goes in again whenever it is missing, even when no
  // entry contradicts the snapshot now: entries the engine appends next must replay after it,
  // else once compaction removes the segments whose entries let an older snapshot record drop a
  // stale log, that log reappears below the new entries, and the snapshot file's rule in load()
  // then drops them with it. (The latest record is never compacted away: its segment's
  // max_index is at least the snapshot's index, and compaction stops below that.)
  auto snapshot_meta = read_snapshot_meta(options.dir);
  if (!snapshot_meta) return snapshot_meta.status();
  const std::optional<SnapshotMeta> snapshot = *snapshot_meta;
  bool restage_snapshot = false;
  if (snapshot) {
    const std::size_t replayed = replay->entries.size();
    continue_snapshot(replay->entries, snapshot->index, snapshot->term);
    restage_snapshot =
        replay->entries.size() != replayed || replay->last_snapshot_record != *snapshot;
  }

  std::unique_ptr<Wal> wal(new Wal(std::move(options)));
  const auto& dir = wal->options_.dir;
  wal->dir_fd_ = std::move(dir_fd).value();
  RecoveryReport& report = wal->report_;
  report.fresh = replay->segments.empty() && !hard_state->has_value();
  if (replay->torn) {
    const TornTail& torn = *replay->torn;
    report.torn_tail = replay->segments[torn.segment].path.string() + ": byte offset " +
                       std::to_string(torn.valid_bytes) + ": " + torn.why + "; " +
                       std::to_string(torn.file_bytes - torn.valid_bytes) + " bytes dropped";
    if (Status s = drop_torn_tail(dir, *replay, wal->options_.fsync, wal->options_.on_fsync); !s) {
      return s;
    }
  }
  std::error_code ec;
  if (std::filesystem::exists(dir / kHardStateTemp, ec)) {
    if (Status s = remove_if_exists(dir / kHardStateTemp); !s) return s;
    report.removed_hard_state_temp = true;
  }
  for (const auto& segment : replay->segments) {
    wal->segments_.push_back(Segment{segment.sequence, segment.path, segment.valid_bytes,
                                     kSegmentHeaderBytes, segment.max_index});
  }
  const auto& entries = replay->entries;
  report.segments = wal->segments_.size();
  report.first_index = entries.empty() ? 0 : entries.front().index;
  report.last_index = entries.empty() ? 0 : entries.back().index;
  wal->staged_last_index_ = report.last_index;
  // The raw value, so that a save of the clamped one writes a record that says so.
  wal->written_commit_ = replay->raw_commit;
  if (*hard_state) wal->durable_hard_state_ = **hard_state;
  wal->durable_hard_state_.commit = replay->commit;
  if (snapshot) {
    // As after save_snapshot: the log continues at snapshot->index + 1 at the latest, and the
    // commit index is clamped as load() clamps it.
    wal->staged_last_index_ = std::max(report.last_index, snapshot->index);
    wal->durable_hard_state_.commit = std::min(replay->raw_commit, wal->staged_last_index_);
  }
  if (restage_snapshot) {
    // The lost record goes in again with the next sync, before any entry appended after it.
    append_snapshot_record(snapshot->index, snapshot->term, wal->staged_bytes_);
    wal->staged_records_.push_back(
        StagedRecord{wal->staged_bytes_.size(), snapshot->index, 0, true});
  }
  wal->staged_hard_state_ = wal->durable_hard_state_;
  return wal;
}

Status Wal::check_usable() const {
  if (!failed_) return failed_;
  return {};
}

Status Wal::append(const std::vector<Entry>& entries) {
  if (Status s = check_usable(); !s) return s;
  if (entries.empty()) return {};
  const Index first = entries.front().index;
  if (first == 0) return {Errc::invalid_argument, "WAL append: entry at index 0"};
  if (staged_last_index_ != 0 && first > staged_last_index_ + 1) {
    return {Errc::invalid_argument, "WAL append: entry " + std::to_string(first) +
                                        " leaves a gap after " +
                                        std::to_string(staged_last_index_)};
  }
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    if (entry.index != first + i) {
      return {Errc::invalid_argument, "WAL append: entry " + std::to_string(entry.index) +
                                          " where " + std::to_string(first + i) +
                                          " was expected (entries must be consecutive)"};
    }
    if (static_cast<std::uint8_t>(entry.type) > engine::kMaxEntryType ||
        entry.data.size() > engine::Limits::max_entry_data_bytes) {
      return {Errc::invalid_argument, "WAL append: entry " + std::to_string(entry.index) +
                                          " has an unknown type or data over the limit"};
    }
    bytes += entry_record_bytes(entry);
  }
  if (staged_bytes_.size() + bytes > kMaxStagedBytes) {
    return {Errc::busy, "WAL append: more than " + std::to_string(kMaxStagedBytes) +
                            " bytes staged; sync first"};
  }
  for (const Entry& entry : entries) {
    append_entry_record(entry, staged_bytes_);
    staged_records_.push_back(StagedRecord{staged_bytes_.size(), entry.index, 0});
  }
  staged_last_index_ = entries.back().index;
  return {};
}

Status Wal::save_hard_state(const HardState& state) {
  if (Status s = check_usable(); !s) return s;
  staged_hard_state_ = state;
  return {};
}

Status Wal::sync() {
  if (Status s = check_usable(); !s) return s;
  Status s = sync_staged();
  if (!s) {
    failed_ = Status(s.code(), s.message() + " (the WAL is unusable until reopened)");
  }
  return s;
}

Status Wal::sync_staged() {
  if (staged_hard_state_.commit != written_commit_) {
    append_commit_record(staged_hard_state_.commit, staged_bytes_);
    staged_records_.push_back(StagedRecord{staged_bytes_.size(), 0, staged_hard_state_.commit});
  }
  if (Status s = write_staged(); !s) return s;
  if (active_dirty_) {
    if (Status s = fsync_file(active_fd_, segments_.back().path); !s) return s;
    active_dirty_ = false;
  }
  if (dir_dirty_) {
    if (Status s = fsync_dir(); !s) return s;
    dir_dirty_ = false;
  }
  const HardState& staged = staged_hard_state_;
  if (staged.term != durable_hard_state_.term || staged.vote != durable_hard_state_.vote) {
    const std::string frame = engine::encode_hard_state(HardState{staged.term, staged.vote, 0});
    if (Status s = replace_file_atomically(options_.dir, kHardStateFile, {frame}, options_.fsync,
                                           options_.on_fsync);
        !s) {
      return s;
    }
    durable_hard_state_.term = staged.term;
    durable_hard_state_.vote = staged.vote;
  }
  return {};
}

// Writes the staged records to the segments, rolling to a new segment before a record that
// would grow the current one past segment_bytes. One pwrite per run of records per segment.
Status Wal::write_staged() {
  std::size_t run_begin = 0;  // start of the bytes not yet written
  std::size_t record_begin = 0;
  for (const StagedRecord& record : staged_records_) {
    const std::size_t record_bytes = record.end - record_begin;
    const std::size_t run_bytes = record_begin - run_begin;
    const bool need_segment = segments_.empty() ||
        (segments_.back().size_bytes + run_bytes + record_bytes > options_.segment_bytes &&
         segments_.back().size_bytes + run_bytes > segments_.back().base_bytes);
    if (need_segment) {
      const std::string_view run(staged_bytes_.data() + run_begin, run_bytes);
      if (Status s = write_to_active(run); !s) return s;
      if (Status s = roll(); !s) return s;
      run_begin = record_begin;
    }
    Segment& segment = segments_.back();
    segment.max_index = std::max(segment.max_index, record.entry_index);
    if (record.entry_index == 0) written_commit_ = record.commit;
    if (record.snapshot) ANYA_ASSERT(record.entry_index != 0);
    record_begin = record.end;
  }
  ANYA_ASSERT(record_begin == staged_bytes_.size());
  const std::string_view run(staged_bytes_.data() + run_begin, record_begin - run_begin);
  if (Status s = write_to_active(run); !s) return s;
  staged_bytes_.clear();
  staged_records_.clear();
  return {};
}

Status Wal::write_to_active(std::string_view bytes) {
  if (bytes.empty()) return {};
  ANYA_ASSERT(!segments_.empty());
  Segment& segment = segments_.back();
  if (!active_fd_.valid()) {
    auto fd = open_file(segment.path, O_WRONLY);
    if (!fd) return fd.status();
    active_fd_ = std::move(fd).value();
  }
  if (Status s = write_all_at(active_fd_, segment.path, segment.size_bytes, bytes); !s) return s;
  segment.size_bytes += bytes.size();
  active_dirty_ = true;
  return {};
}

// Closes the current segment (fsynced) and starts the next one: header, then the commit index so
// far, so compaction can delete older segments without losing it.
Status Wal::roll() {
  if (active_dirty_) {
    if (Status s = fsync_file(active_fd_, segments_.back().path); !s) return s;
    active_dirty_ = false;
  }
  active_fd_.reset();
  const std::uint64_t sequence = segments_.empty() ? 1 : segments_.back().sequence + 1;
  const auto path = options_.dir / segment_file_name(sequence);
  auto fd = open_file(path, O_WRONLY | O_CREAT | O_EXCL);
  if (!fd) return fd.status();
  std::string head = encode_segment_header(sequence);
  if (written_commit_ != 0) append_commit_record(written_commit_, head);
  segments_.push_back(Segment{sequence, path, 0, head.size(), 0});
  active_fd_ = std::move(fd).value();
  dir_dirty_ = true;
  return write_to_active(head);
}

Status Wal::fsync_file(const Fd& fd, const std::filesystem::path& path) {
  return options_.fsync ? fsync_timed(fd, path, options_.on_fsync) : Status{};
}

Status Wal::fsync_dir() {
  return options_.fsync ? fsync_timed(dir_fd_, options_.dir, options_.on_fsync) : Status{};
}

Result<engine::RestoredState> Wal::load() {
  if (Status s = check_usable(); !s) return s;
  auto replay = replay_directory(options_.dir);
  if (!replay) return replay.status();
  auto hard_state = read_hard_state(options_.dir);
  if (!hard_state) return hard_state.status();
  auto snapshot = load_snapshot(options_.dir);
  if (!snapshot) return snapshot.status();
  engine::RestoredState restored;
  if (*hard_state) restored.hard_state = **hard_state;
  restored.entries = std::move(replay->entries);
  Index last = restored.entries.empty() ? 0 : restored.entries.back().index;
  if (*snapshot) {
    const auto& [meta, envelope] = **snapshot;
    Result<engine::Snapshot> decoded = engine::decode_snapshot_envelope(envelope);
    if (!decoded) {
      return Status(Errc::corrupt, (options_.dir / "snapshot").string() + ": " +
                                       decoded.status().message());
    }
    decoded->meta.index = meta.index;
    decoded->meta.term = meta.term;
    // The snapshot file is durable before its record: after a crash between the two, the
    // entries it replaced may still be there.
    continue_snapshot(restored.entries, meta.index, meta.term);
    restored.snapshot = std::move(decoded).value();
    last = std::max(meta.index, restored.entries.empty() ? 0 : restored.entries.back().index);
  }
  restored.hard_state.commit = std::min(replay->raw_commit, last);
  return restored;
}

Status Wal::save_snapshot(const engine::SnapshotMeta& meta, std::string_view data) {
  if (Status s = check_usable(); !s) return s;
  const std::string envelope = engine::encode_snapshot_envelope(meta.membership, data);
  if (Status s = transport::save_snapshot(options_.dir, SnapshotMeta{meta.index, meta.term},
                                          envelope, options_.fsync);
      !s) {
    if (s.code() != Errc::invalid_argument) failed_ = s;
    return s;
  }
  append_snapshot_record(meta.index, meta.term, staged_bytes_);
  staged_records_.push_back(StagedRecord{staged_bytes_.size(), meta.index, 0, true});
  // After a replacing snapshot the log continues at meta.index + 1.
  staged_last_index_ = std::max(staged_last_index_, meta.index);
  return {};
}

Status Wal::compact(Index through) {
  if (Status s = check_usable(); !s) return s;
  // Oldest first, one directory fsync per removal: a crash in between leaves a suffix of the
  // segments, which replays to the same log. The entry at `through` stays: replay checks a
  // snapshot there against its term, and without it stale entries right after a replacing
  // snapshot would look like they continue it.
  while (segments_.size() > 1 && segments_.front().max_index < through) {
    if (Status s = remove_if_exists(segments_.front().path); !s) {
      failed_ = s;
      return s;
    }
    segments_.erase(segments_.begin());
    if (Status s = fsync_dir(); !s) {
      failed_ = s;
      return s;
    }
  }
  return {};
}

std::uint64_t Wal::size_bytes() const {
  std::uint64_t total = 0;
  for (const Segment& segment : segments_) total += segment.size_bytes;
  return total;
}

}  // namespace anya::transport

// libFuzzer target for WAL recovery (transport/wal) from arbitrary directory contents. The issue's
// acceptance point: recovery must either recover a consistent prefix or stop with a clear error,
// never crash and never invent entries.
//
// Random bytes almost never pass the segment, hard-state and snapshot checksums, so each input
// first drives a REAL Wal to write a valid directory, then damages it. Input, read front to back
// (every read past the end gives 0, and the input ends each phase):
//
//   build ops (at most kMaxBuildOps), each an opcode byte (op % 8) and its operand bytes:
//     0 append a b c d    first index in [snapshot index + 1, last + 1] by a, 1 + b % 4 entries,
//                         term 1 + c % 8, type d % 4, data size kDataSizes[(d >> 2) % 8]
//     1 hard state a b c  term a % 8, vote b % 4, commit c % (last + 1)
//     2 sync              (7 too)
//     3 snapshot a b c    index snapshot index + a % (last - snapshot index + 3) (0: skipped),
//                         term of the entry there when b % 4 != 0 and there is one, else a
//                         term no entry has (a leader's snapshot replacing the log: by Log
//                         Matching no stale entry shares its term); membership, data size by c
//     4 compact a         through a % (snapshot index + 1) (the port's contract: <= snapshot)
//     5 reopen            drop the Wal unsynced (a crash), open, load and check (oracle 4)
//     6 end of the build ops; the damage follows
//   damage ops (at most kMaxMutations), opcode byte op % 12; f picks an existing file or
//   directory by name order, N a name (hardstate, hardstate.tmp, snapshot, snapshot.tmp, an
//   unrelated file, a non-canonical segment name, wal-<seq>.seg for seq 0..30 or 2^64-1):
//     0 truncate f o16    1 flip f o16 x      2 overwrite f o16 n bytes[n % 16 + 1]
//     3 append f n bytes[n % 32 + 1]          4 append zeros f n ((n % 64 + 1) * 8 bytes)
//     5 delete f          6 copy f N          7 rename f N
//     8 resequence f d    (a segment renamed to sequence + d % 7 - 3, its header rewritten)
//     9 raw N h n16 bytes[n16 % 513]  (h & 1 on a segment name: a valid header first)
//     10 reseal f o16     recompute the checksum of the record (or header, or trailer) at o16
//     11 mkdir N
//
// The truth kept meanwhile: every entry version, hard state (term, vote), commit and snapshot
// the Wal was asked to make durable, and a model of the records in the order synced.
//
// Oracles, checked after opening a fresh Wal on the damaged directory and loading:
//  1. no crash, sanitizer report or failed assertion;
//  2. a failure is a Status whose message names the directory (the file in it), and a corrupt
//     one a byte offset (or the missing segment, or a file size over its limit);
//  3. on success: entries contiguous from index >= 1; each one a version synced at its index
//     (with damage that wrote fuzzer bytes: at least its record is in a segment as found);
//     term and vote those of the hardstate file as found (absent: 0 and 0) and a synced pair;
//     the snapshot that of the snapshot file and one saved; entries continue the snapshot;
//     commit <= max(snapshot index, last index) and <= the largest synced commit;
//  4. without damage: open repairs nothing, load returns exactly the model's state (entries
//     replayed with conflict truncation and snapshot records, latest hard state, latest
//     snapshot); after a compaction, the entries past the snapshot exactly;
//  5. open changes nothing but wal.hpp's repairs (the last segment cut to a prefix or removed
//     when recovery() reports a torn tail, hardstate.tmp removed when it reports so); a corrupt
//     or unsupported refusal changes nothing at all; load changes nothing;
//  6. a successful recovery reopens to the same state, with nothing left to repair;
//  7. the recovered log accepts the engine's next entry (one past the snapshot and the entries),
//     and that entry is loaded after a sync and a reopen.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/le_bytes.hpp"
#include "engine/base/result.hpp"
#include "engine/codec/codec.hpp"
#include "engine/codec/crc32c.hpp"
#include "engine/raft/snapshot.hpp"
#include "transport/wal/segment.hpp"
#include "transport/wal/snapshot.hpp"
#include "transport/wal/wal.hpp"

namespace {

namespace fs = std::filesystem;
using anya::Errc;
using anya::Status;
using anya::engine::Entry;
using anya::engine::EntryType;
using anya::engine::HardState;
using anya::engine::Index;
using anya::engine::NodeId;
using anya::engine::RestoredState;
using anya::engine::Term;
using anya::transport::RecordKind;
using anya::transport::Wal;
using anya::transport::WalOptions;

// Limits that keep one execution to a few milliseconds.
constexpr std::size_t kMaxBuildOps = 48;
constexpr std::size_t kMaxMutations = 8;
constexpr std::uint64_t kMaxLogBytes = 32 * 1024;  // entry data appended; appends beyond: skipped
constexpr std::size_t kMaxRawFileBytes = 512;
constexpr std::size_t kDataSizes[] = {0, 1, 8, 16, 100, 300, 1000, 1500};
// Indexes beyond this come only from forged records; the next-entry oracle (7) skips them.
constexpr Index kMaxSaneIndex = Index{1} << 40;
// Entries have terms 1..8; a snapshot that replaces the log has a term of its own above them.
constexpr Term kFirstSnapshotOnlyTerm = 100;
constexpr std::string_view kHardStateFile = "hardstate";
constexpr std::string_view kHardStateTemp = "hardstate.tmp";
constexpr std::string_view kSnapshotFile = "snapshot";

// WAL_RECOVERY_VERBOSE=1 in the environment: each input prints its directory and outcome, to read
// what a finding does.
bool verbose() {
  static const bool on = std::getenv("WAL_RECOVERY_VERBOSE") != nullptr;
  return on;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "wal_recovery oracle failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}
// `what` is only built when the check fails.
#define WAL_CHECK(cond, what)  \
  do {                         \
    if (!(cond)) fail(what);   \
  } while (0)

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

std::string describe(const Entry& e) {
  return "entry " + std::to_string(e.index) + " term " + std::to_string(e.term) + " type " +
         std::to_string(static_cast<int>(e.type)) + " data " + std::to_string(e.data.size()) + "B";
}

// The input, read front to back; past its end every read gives 0.
class Input {
 public:
  explicit Input(std::string_view bytes) : bytes_(bytes) {}
  bool exhausted() const { return pos_ >= bytes_.size(); }
  std::uint8_t u8() { return exhausted() ? 0 : static_cast<std::uint8_t>(bytes_[pos_++]); }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  std::string take(std::size_t n) {
    std::string out(bytes_.substr(std::min(pos_, bytes_.size()), n));
    pos_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/anya-walfz-XXXXXX";
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// What a directory holds: each name, whether it is a directory, and a file's bytes.
struct DirItem {
  bool directory = false;
  std::string bytes;
  friend bool operator==(const DirItem&, const DirItem&) = default;
};
using DirImage = std::map<std::string, DirItem>;

DirImage image_of(const fs::path& dir) {
  DirImage image;
  for (const auto& item : fs::directory_iterator(dir)) {
    const bool directory = item.is_directory();
    image[item.path().filename().string()] =
        DirItem{directory, directory ? std::string() : read_file(item.path())};
  }
  return image;
}

std::string names_of(const DirImage& image) {
  std::string names;
  for (const auto& [name, item] : image) {
    names += " " + name + (item.directory ? "/" : "(" + std::to_string(item.bytes.size()) + ")");
  }
  return names;
}

// ---- the truth, and a model of the records in the order they were synced ----

struct Truth {
  std::map<Index, std::vector<Entry>> entries;  // every version synced at each index
  std::set<std::pair<Term, NodeId>> hard_states{{0, 0}};
  std::vector<anya::engine::Snapshot> snapshots;  // every one saved
  Index max_commit = 0;

  bool has_entry(const Entry& e) const {
    auto it = entries.find(e.index);
    return it != entries.end() &&
           std::find(it->second.begin(), it->second.end(), e) != it->second.end();
  }
};

struct ModelRecord {
  RecordKind kind = RecordKind::entry;
  Entry entry;     // kind entry
  Index index = 0;  // kind commit: the commit index; kind snapshot: the snapshot's index
  Term term = 0;    // kind snapshot
};

// The StoragePort rule: stored entries that do not continue a snapshot at (index, term) go.
void continue_snapshot(std::vector<Entry>& entries, Index index, Term term) {
  if (entries.empty() || entries.front().index == index + 1) return;
  const Index first = entries.front().index;
  const bool holds = index >= first && index <= entries.back().index &&
                     entries[index - first].term == term;
  if (!holds) entries.clear();
}

struct Replayed {
  std::vector<Entry> entries;
  Index raw_commit = 0;
};

// segment.hpp's replay rules over the records in sync order.
Replayed replay_records(const std::vector<ModelRecord>& records) {
  Replayed out;
  for (const ModelRecord& r : records) {
    if (r.kind == RecordKind::commit) {
      out.raw_commit = r.index;
    } else if (r.kind == RecordKind::snapshot) {
      continue_snapshot(out.entries, r.index, r.term);
    } else {
      auto& entries = out.entries;
      if (!entries.empty()) {
        const Index first = entries.front().index;
        ANYA_ASSERT(r.entry.index <= entries.back().index + 1);
        entries.resize(r.entry.index >= first ? r.entry.index - first : 0);
      }
      entries.push_back(r.entry);
    }
  }
  return out;
}

bool same_state(const RestoredState& a, const RestoredState& b) {
  return a.hard_state == b.hard_state && a.entries == b.entries && a.snapshot == b.snapshot;
}

Index last_of(const RestoredState& state) {
  const Index snapshot = state.snapshot ? state.snapshot->meta.index : 0;
  return std::max(snapshot, state.entries.empty() ? 0 : state.entries.back().index);
}

// Oracle 4: a log without damage loads as the model says. After a compaction only the entries
// past the snapshot are known exactly; the ones retained at or below it must be the model's.
std::string describe(const RestoredState& state) {
  std::string out = "hard state " + std::to_string(state.hard_state.term) + "/" +
                    std::to_string(state.hard_state.vote) + "/" +
                    std::to_string(state.hard_state.commit);
  if (state.snapshot) {
    out += ", snapshot " + std::to_string(state.snapshot->meta.index) + "/" +
           std::to_string(state.snapshot->meta.term);
  }
  out += ", entries";
  for (const Entry& e : state.entries) {
    out += " " + std::to_string(e.index) + "/" + std::to_string(e.term);
  }
  return out;
}

void check_matches_model(const RestoredState& loaded, const RestoredState& expected,
                         bool compacted) {
  if (verbose()) {
    std::fprintf(stderr, "loaded: %s\nmodel:  %s\n", describe(loaded).c_str(),
                 describe(expected).c_str());
  }
  WAL_CHECK(loaded.snapshot == expected.snapshot, "clean log: snapshot differs from the model");
  WAL_CHECK(loaded.hard_state == expected.hard_state,
            "clean log: hard state " + std::to_string(loaded.hard_state.term) + "/" +
                std::to_string(loaded.hard_state.vote) + "/" +
                std::to_string(loaded.hard_state.commit) + ", model " +
                std::to_string(expected.hard_state.term) + "/" +
                std::to_string(expected.hard_state.vote) + "/" +
                std::to_string(expected.hard_state.commit));
  if (!compacted) {
    WAL_CHECK(loaded.entries == expected.entries,
              "clean log: " + std::to_string(loaded.entries.size()) + " entries loaded, model " +
                  std::to_string(expected.entries.size()));
    return;
  }
  const Index snapshot = expected.snapshot ? expected.snapshot->meta.index : 0;
  std::map<Index, const Entry*> model;
  for (const Entry& e : expected.entries) model[e.index] = &e;
  for (const Entry& e : loaded.entries) {
    auto it = model.find(e.index);
    WAL_CHECK(it != model.end() && *it->second == e, "compacted clean log: " + describe(e) +
                                                         " is not the model's");
  }
  for (const Entry& e : expected.entries) {
    if (e.index <= snapshot) continue;
    const bool present = !loaded.entries.empty() && loaded.entries.front().index <= e.index &&
                         loaded.entries.back().index >= e.index;
    WAL_CHECK(present, "compacted clean log: " + describe(e) + " past the snapshot is lost");
  }
}

// ---- the build phase: a real Wal writes a valid directory as the input directs ----

std::string pattern_bytes(std::size_t size, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>((a * 31 + b * 7 + c * 13 + i) & 0xFFu);
  }
  return data;
}

WalOptions wal_options(const fs::path& dir) {
  WalOptions options;
  options.dir = dir;
  options.segment_bytes = Wal::kMinSegmentBytes;  // rolls are frequent
  options.fsync = false;  // the target checks the format and recovery, not the disk
  return options;
}

std::unique_ptr<Wal> open_clean(const fs::path& dir, const char* when) {
  auto wal = Wal::open(wal_options(dir));
  WAL_CHECK(wal.is_ok(), std::string(when) + ": open failed: " + wal.status().to_string());
  const auto& report = (*wal)->recovery();
  WAL_CHECK(!report.torn_tail, std::string(when) + ": torn tail " + *report.torn_tail);
  WAL_CHECK(!report.removed_hard_state_temp, std::string(when) + ": removed hardstate.tmp");
  return std::move(wal).value();
}

class Builder {
 public:
  Builder(const fs::path& dir, Input& in, Truth& truth) : dir_(dir), in_(in), truth_(truth) {}

  // Runs the build ops, then drops the Wal unsynced (what was staged is lost, as in a crash).
  void run();
  RestoredState expected() const;
  bool compacted() const { return compacted_; }

 private:
  Index last() const {
    return std::max(snapshot_index(), view_.empty() ? 0 : view_.back().index);
  }
  Index snapshot_index() const { return snapshot_ ? snapshot_->meta.index : 0; }
  void append();
  void hard_state();
  void sync();
  void save_snapshot();
  void compact();
  void reopen();

  fs::path dir_;
  Input& in_;
  Truth& truth_;
  std::unique_ptr<Wal> wal_;
  std::vector<Entry> view_;  // the engine's view: the log as staged, after the snapshot rule
  std::optional<anya::engine::Snapshot> snapshot_;  // the latest saved; its file is durable
  std::vector<ModelRecord> durable_;  // records synced, in order
  std::vector<ModelRecord> staged_;
  HardState staged_hard_state_;
  std::pair<Term, NodeId> durable_term_vote_{0, 0};
  Index written_commit_ = 0;  // the last commit record in durable_ (and staged_)
  std::uint64_t log_bytes_ = 0;
  std::uint64_t version_ = 0;  // makes each append's data differ from earlier versions
  bool compacted_ = false;     // a compaction removed a segment
};

void Builder::run() {
  wal_ = open_clean(dir_, "first open");
  for (std::size_t i = 0; i < kMaxBuildOps && !in_.exhausted(); ++i) {
    const std::uint8_t op = in_.u8() % 8;
    if (op == 6) break;
    if (verbose()) {
      std::fprintf(stderr, "build op %d: staged log to %llu, snapshot %llu\n", op, ull(last()),
                   ull(snapshot_index()));
    }
    switch (op) {
      case 0: append(); break;
      case 1: hard_state(); break;
      case 3: save_snapshot(); break;
      case 4: compact(); break;
      case 5: reopen(); break;
      default: sync(); break;
    }
  }
  wal_.reset();
  staged_.clear();
}

void Builder::append() {
  const std::uint8_t a = in_.u8(), b = in_.u8(), c = in_.u8(), d = in_.u8();
  const Index low = snapshot_index() + 1;
  const Index first = low + a % (last() + 2 - low);
  const std::size_t size = kDataSizes[(d >> 2) % std::size(kDataSizes)];
  const std::size_t count = 1 + b % 4;
  if (log_bytes_ + size * count > kMaxLogBytes) return;
  log_bytes_ += size * count;
  ++version_;
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < count; ++i) {
    const Index index = first + i;
    const Term term = 1 + c % 8;
    entries.push_back(Entry{term, index, static_cast<EntryType>(d % 4),
                            pattern_bytes(size, index, term, version_)});
  }
  if (verbose()) std::fprintf(stderr, "  append %s x%zu\n", describe(entries[0]).c_str(), count);
  const Status s = wal_->append(entries);
  WAL_CHECK(s.is_ok(), "append at " + std::to_string(first) + " (last " +
                           std::to_string(last()) + "): " + s.to_string());
  if (!view_.empty() && first >= view_.front().index) {
    view_.resize(first - view_.front().index);
  } else {
    view_.clear();
  }
  for (const Entry& e : entries) {
    view_.push_back(e);
    staged_.push_back(ModelRecord{RecordKind::entry, e, 0, 0});
  }
}

void Builder::hard_state() {
  const std::uint8_t a = in_.u8(), b = in_.u8(), c = in_.u8();
  staged_hard_state_ = HardState{Term{a} % 8, NodeId{b} % 4, Index{c} % (last() + 1)};
  const Status s = wal_->save_hard_state(staged_hard_state_);
  WAL_CHECK(s.is_ok(), "save_hard_state: " + s.to_string());
}

void Builder::sync() {
  const Status s = wal_->sync();
  WAL_CHECK(s.is_ok(), "sync: " + s.to_string());
  if (staged_hard_state_.commit != written_commit_) {
    written_commit_ = staged_hard_state_.commit;
    staged_.push_back(ModelRecord{RecordKind::commit, {}, written_commit_, 0});
  }
  for (ModelRecord& r : staged_) {
    if (r.kind == RecordKind::entry && !truth_.has_entry(r.entry)) {
      truth_.entries[r.entry.index].push_back(r.entry);
    }
    durable_.push_back(std::move(r));
  }
  staged_.clear();
  durable_term_vote_ = {staged_hard_state_.term, staged_hard_state_.vote};
  truth_.hard_states.insert(durable_term_vote_);
  truth_.max_commit = std::max(truth_.max_commit, staged_hard_state_.commit);
}

void Builder::save_snapshot() {
  const std::uint8_t a = in_.u8(), b = in_.u8(), c = in_.u8();
  const Index index = snapshot_index() + a % (last() - snapshot_index() + 3);
  if (index == 0) return;
  ++version_;
  Term term = kFirstSnapshotOnlyTerm + version_;
  const bool held = !view_.empty() && index >= view_.front().index && index <= view_.back().index;
  if (b % 4 != 0 && held) term = view_[index - view_.front().index].term;
  anya::engine::Snapshot snapshot;
  snapshot.meta.index = index;
  snapshot.meta.term = term;
  snapshot.meta.membership.voters = (c & 1) != 0 ? std::set<NodeId>{1, 2, 3} : std::set<NodeId>{1};
  if ((c & 2) != 0) snapshot.meta.membership.learners = {4};
  snapshot.data = pattern_bytes((c >> 2) % 16, index, term, version_);
  if (verbose()) std::fprintf(stderr, "  snapshot %llu/%llu\n", ull(index), ull(term));
  const Status s = wal_->save_snapshot(snapshot.meta, snapshot.data);
  WAL_CHECK(s.is_ok(), "save_snapshot: " + s.to_string());
  truth_.snapshots.push_back(snapshot);
  snapshot_ = std::move(snapshot);
  staged_.push_back(ModelRecord{RecordKind::snapshot, {}, index, term});
  continue_snapshot(view_, index, term);
}

void Builder::compact() {
  const Index through = in_.u8() % (snapshot_index() + 1);
  const std::uint64_t before = wal_->size_bytes();
  if (verbose()) std::fprintf(stderr, "  compact %llu\n", ull(through));
  const Status s = wal_->compact(through);
  WAL_CHECK(s.is_ok(), "compact: " + s.to_string());
  if (wal_->size_bytes() < before) compacted_ = true;
}

// A crash: what was staged is lost. The reopened log must load as the model says (oracle 4),
// and the engine goes on from what it loaded.
void Builder::reopen() {
  wal_.reset();
  staged_.clear();
  wal_ = open_clean(dir_, "reopen during the build");
  auto loaded = wal_->load();
  WAL_CHECK(loaded.is_ok(), "load during the build: " + loaded.status().to_string());
  check_matches_model(*loaded, expected(), compacted_);
  view_ = loaded->entries;
  snapshot_ = loaded->snapshot;
  // open() stages the snapshot's record again when the segments lack it (or the entries do not
  // continue it); otherwise the record changes nothing on replay, so the model may always stage it.
  if (snapshot_) {
    staged_.push_back(
        ModelRecord{RecordKind::snapshot, {}, snapshot_->meta.index, snapshot_->meta.term});
  }
  written_commit_ = replay_records(durable_).raw_commit;
  staged_hard_state_ = loaded->hard_state;
  const Status s = wal_->save_hard_state(staged_hard_state_);
  WAL_CHECK(s.is_ok(), "save_hard_state after reopen: " + s.to_string());
}

RestoredState Builder::expected() const {
  Replayed replayed = replay_records(durable_);
  RestoredState state;
  state.entries = std::move(replayed.entries);
  state.snapshot = snapshot_;
  if (snapshot_) continue_snapshot(state.entries, snapshot_->meta.index, snapshot_->meta.term);
  state.hard_state = HardState{durable_term_vote_.first, durable_term_vote_.second,
                               std::min(replayed.raw_commit, last_of(state))};
  return state;
}

// ---- the damage phase ----

std::uint64_t sequence_for(std::uint8_t k) { return k == 31 ? ~std::uint64_t{0} : k; }

std::string name_for(std::uint8_t k) {
  switch (k % 8) {
    case 0: return std::string(kHardStateFile);
    case 1: return std::string(kHardStateTemp);
    case 2: return std::string(kSnapshotFile);
    case 3: return "snapshot.tmp";
    case 4: return (k & 8) != 0 ? "notes.txt" : "wal-000000000000000A.seg";
    default: return anya::transport::segment_file_name(sequence_for(k >> 3));
  }
}

// Rewrites the checksum covering the bytes around `offset`: a segment's header or the record
// holding the offset (found by walking the record lengths), or another file's trailing CRC.
void reseal(const fs::path& path, std::string& bytes, std::uint16_t target) {
  using namespace anya::transport;
  std::string crc;
  if (!parse_segment_file_name(path.filename().string())) {
    if (bytes.size() < 4) return;
    const std::string_view covered = std::string_view(bytes).substr(0, bytes.size() - 4);
    anya::le::put_u32(crc, anya::engine::crc32c(covered));
    bytes.replace(bytes.size() - 4, 4, crc);
    return;
  }
  if (bytes.size() < kSegmentHeaderBytes) return;
  const std::size_t at = target % bytes.size();
  if (at < kSegmentHeaderBytes) {
    anya::le::put_u32(crc, anya::engine::crc32c(std::string_view(bytes).substr(0, 16)));
    bytes.replace(16, 4, crc);
    return;
  }
  std::size_t offset = kSegmentHeaderBytes;
  while (offset + kRecordHeaderBytes <= bytes.size()) {
    const auto length = static_cast<std::size_t>(anya::le::get(bytes, offset, 4));
    if (length > bytes.size() - offset - kRecordHeaderBytes) return;
    const std::size_t end = offset + kRecordHeaderBytes + length;
    if (at < end) {
      const std::string_view view(bytes);
      const std::uint32_t sum = anya::engine::crc32c_extend(
          anya::engine::crc32c(view.substr(offset, 4)), view.substr(offset + 8, length));
      anya::le::put_u32(crc, sum);
      bytes.replace(offset + 4, 4, crc);
      return;
    }
    offset = end;
  }
}

class Damager {
 public:
  Damager(const fs::path& dir, Input& in) : dir_(dir), in_(in) {}
  // Applies the damage ops; returns how many there were.
  std::size_t run();
  bool wrote_fuzzer_bytes() const { return fuzzer_bytes_; }

 private:
  // The name of an existing file or directory, by name order; nullopt in an empty directory.
  std::optional<std::string> pick();
  void apply(std::uint8_t op);
  void edit_file(std::uint8_t op, const fs::path& path);
  void move_or_copy(std::uint8_t op, const fs::path& path);

  fs::path dir_;
  Input& in_;
  bool fuzzer_bytes_ = false;  // bytes from the input went into a file: records may be forged
};

std::size_t Damager::run() {
  std::size_t count = 0;
  for (; count < kMaxMutations && !in_.exhausted(); ++count) apply(in_.u8() % 12);
  return count;
}

std::optional<std::string> Damager::pick() {
  const std::uint8_t k = in_.u8();
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir_)) {
    names.push_back(item.path().filename().string());
  }
  if (names.empty()) return std::nullopt;
  std::sort(names.begin(), names.end());
  return names[k % names.size()];
}

void Damager::apply(std::uint8_t op) {
  std::error_code ec;
  if (op == 9 || op == 11) {
    const fs::path path = dir_ / name_for(in_.u8());
    if (op == 11) {
      if (!fs::exists(path, ec)) fs::create_directory(path, ec);
      return;
    }
    const bool header = (in_.u8() & 1) != 0;
    std::string bytes;
    if (auto sequence = anya::transport::parse_segment_file_name(path.filename().string());
        sequence && header) {
      bytes = anya::transport::encode_segment_header(*sequence);
    }
    bytes += in_.take(in_.u16() % (kMaxRawFileBytes + 1));
    fuzzer_bytes_ = true;
    if (!fs::is_directory(path, ec)) write_file(path, bytes);
    return;
  }
  const auto name = pick();
  if (!name) return;
  const fs::path path = dir_ / *name;
  if (op == 5) {
    fs::remove_all(path, ec);
  } else if (op >= 6 && op <= 8) {
    move_or_copy(op, path);
  } else if (!fs::is_directory(path, ec)) {
    edit_file(op, path);
  }
}

void Damager::edit_file(std::uint8_t op, const fs::path& path) {
  std::string bytes = read_file(path);
  const std::uint16_t o = (op == 3 || op == 4) ? 0 : in_.u16();
  switch (op) {
    case 0: bytes.resize(o % (bytes.size() + 1)); break;
    case 1: {
      const std::uint8_t x = in_.u8();
      if (!bytes.empty()) bytes[o % bytes.size()] ^= static_cast<char>(x | 1);
      break;
    }
    case 2: {
      const std::string patch = in_.take(in_.u8() % 16 + 1);
      bytes.replace(std::min<std::size_t>(o % (bytes.size() + 1), bytes.size()), patch.size(),
                    patch);
      fuzzer_bytes_ = true;
      break;
    }
    case 3: bytes += in_.take(in_.u8() % 32 + 1); fuzzer_bytes_ = true; break;
    case 4: bytes.append((in_.u8() % 64 + 1) * std::size_t{8}, '\0'); break;
    default: reseal(path, bytes, o); fuzzer_bytes_ = true; break;
  }
  write_file(path, bytes);
}

void Damager::move_or_copy(std::uint8_t op, const fs::path& path) {
  std::error_code ec;
  const std::uint8_t k = in_.u8();
  if (op == 8) {  // resequence: a segment as if written under another sequence number
    auto sequence = anya::transport::parse_segment_file_name(path.filename().string());
    if (!sequence || fs::is_directory(path, ec)) return;
    const std::uint64_t to = *sequence + (k % 7) - 3;
    std::string bytes = read_file(path);
    if (bytes.size() >= anya::transport::kSegmentHeaderBytes) {
      bytes.replace(0, anya::transport::kSegmentHeaderBytes,
                    anya::transport::encode_segment_header(to));
    }
    fs::remove(path, ec);
    const fs::path target = dir_ / anya::transport::segment_file_name(to);
    if (!fs::is_directory(target, ec)) write_file(target, bytes);
    return;
  }
  const fs::path target = dir_ / name_for(k);
  if (target == path || fs::is_directory(target, ec)) return;
  if (op == 7) {
    fs::rename(path, target, ec);
  } else if (!fs::is_directory(path, ec)) {
    write_file(target, read_file(path));
  }
}

// ---- the oracles on the damaged directory ----

// Oracle 2.
void check_error(const Status& status, const fs::path& dir, const char* when) {
  const std::string& m = status.message();
  WAL_CHECK(!status.is_ok(), "check_error on OK");
  WAL_CHECK(m.find(dir.string()) != std::string::npos,
            std::string(when) + ": error does not name the directory: " + status.to_string());
  if (status.code() == Errc::corrupt) {
    // Located: at a byte offset, a missing segment, or a whole file of a size it cannot have.
    const bool located = m.find("byte offset") != std::string::npos ||
                         m.find(" is missing") != std::string::npos ||
                         m.find(" bytes, over the maximum") != std::string::npos;
    WAL_CHECK(located, std::string(when) + ": corrupt without a byte offset: " + m);
  }
}

std::optional<std::string> last_segment_name(const DirImage& image) {
  std::optional<std::uint64_t> last;
  for (const auto& [name, item] : image) {
    if (auto sequence = anya::transport::parse_segment_file_name(name)) {
      last = std::max(last.value_or(0), *sequence);
    }
  }
  if (!last) return std::nullopt;
  return anya::transport::segment_file_name(*last);
}

// Oracle 5: open changed nothing but what recovery() reports it repaired.
void check_only_repairs(const DirImage& before, const DirImage& after,
                        const anya::transport::RecoveryReport& report) {
  const auto last = last_segment_name(before);
  std::set<std::string> names;
  for (const auto& [name, item] : before) names.insert(name);
  for (const auto& [name, item] : after) names.insert(name);
  for (const std::string& name : names) {
    const auto b = before.find(name);
    const auto a = after.find(name);
    if (name == kHardStateTemp && report.removed_hard_state_temp) {
      WAL_CHECK(b != before.end() && a == after.end(), "hardstate.tmp reported removed, is not");
    } else if (last && name == *last && report.torn_tail) {
      WAL_CHECK(b != before.end(), "torn tail repair created " + name);
      const bool prefix = a == after.end() ||
          (!a->second.directory && a->second.bytes.size() < b->second.bytes.size() &&
           b->second.bytes.compare(0, a->second.bytes.size(), a->second.bytes) == 0);
      WAL_CHECK(prefix, "torn tail repair of " + name + " left more than a prefix");
    } else {
      const bool same = (b == before.end()) == (a == after.end()) &&
                        (b == before.end() || b->second == a->second);
      WAL_CHECK(same, "open changed " + name + " beyond the reported repairs:" +
                          names_of(before) + " ->" + names_of(after));
    }
  }
}

bool record_in_segments(const Entry& e, const DirImage& before) {
  std::string record;
  anya::transport::append_entry_record(e, record);
  for (const auto& [name, item] : before) {
    if (!item.directory && anya::transport::parse_segment_file_name(name) &&
        item.bytes.find(record) != std::string::npos) {
      return true;
    }
  }
  return false;
}

void check_entries(const RestoredState& loaded, const DirImage& before, const Truth& truth,
                   bool fuzzer_bytes) {
  const auto& entries = loaded.entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    WAL_CHECK(e.index >= 1 && e.index == entries.front().index + i,
              "entries not contiguous at " + describe(e));
    if (fuzzer_bytes) {
      WAL_CHECK(record_in_segments(e, before), "invented " + describe(e) + ": no such record");
    } else {
      WAL_CHECK(truth.has_entry(e), "invented " + describe(e) + ": never synced");
    }
  }
  if (loaded.snapshot && !entries.empty()) {
    const Index s = loaded.snapshot->meta.index;
    const bool continues = entries.front().index == s + 1 ||
        (s >= entries.front().index && s <= entries.back().index &&
         entries[s - entries.front().index].term == loaded.snapshot->meta.term);
    WAL_CHECK(continues, "entries do not continue the snapshot at " + std::to_string(s));
  }
}

// What the snapshot file held before open, parsed here without the WAL's reader.
std::optional<anya::engine::Snapshot> snapshot_in(const DirImage& before) {
  const auto it = before.find(std::string(kSnapshotFile));
  const std::size_t fixed = anya::transport::kSnapshotHeaderBytes + 4;
  if (it == before.end() || it->second.directory || it->second.bytes.size() < fixed) {
    return std::nullopt;
  }
  const std::string& bytes = it->second.bytes;
  auto decoded = anya::engine::decode_snapshot_envelope(
      std::string_view(bytes).substr(anya::transport::kSnapshotHeaderBytes,
                                     bytes.size() - fixed));
  if (!decoded) return std::nullopt;
  decoded->meta.index = anya::le::get(bytes, 8, 8);
  decoded->meta.term = anya::le::get(bytes, 16, 8);
  return std::move(decoded).value();
}

// Oracle 3.
void check_consistent(const RestoredState& loaded, const DirImage& before, const Truth& truth,
                      bool fuzzer_bytes) {
  check_entries(loaded, before, truth, fuzzer_bytes);
  const HardState& hs = loaded.hard_state;
  const auto file = before.find(std::string(kHardStateFile));
  std::pair<Term, NodeId> term_vote{0, 0};
  if (file != before.end()) {
    auto decoded = anya::engine::decode_hard_state(file->second.bytes);
    WAL_CHECK(decoded.is_ok(), "loaded a hardstate file that does not decode");
    term_vote = {decoded->term, decoded->vote};
  }
  WAL_CHECK(std::make_pair(hs.term, hs.vote) == term_vote, "term/vote not the hardstate file's");
  WAL_CHECK(fuzzer_bytes || truth.hard_states.count(term_vote) != 0, "term/vote never synced");
  WAL_CHECK(hs.commit <= last_of(loaded), "commit " + std::to_string(hs.commit) + " past " +
                                              std::to_string(last_of(loaded)));
  WAL_CHECK(fuzzer_bytes || hs.commit <= truth.max_commit, "commit never synced");
  if (!loaded.snapshot) {
    WAL_CHECK(before.count(std::string(kSnapshotFile)) == 0, "snapshot file ignored");
    return;
  }
  WAL_CHECK(loaded.snapshot == snapshot_in(before), "snapshot is not the snapshot file's");
  const bool saved = std::find(truth.snapshots.begin(), truth.snapshots.end(),
                               *loaded.snapshot) != truth.snapshots.end();
  WAL_CHECK(fuzzer_bytes || saved, "snapshot never saved");
}

// Oracle 6 (and the second half of 5): a recovered directory reopens as it is, to the same state.
std::unique_ptr<Wal> check_reopens_same(const fs::path& dir, const RestoredState& loaded) {
  const DirImage before = image_of(dir);
  auto wal = open_clean(dir, "second open");
  WAL_CHECK(image_of(dir) == before, "second open changed the directory");
  auto again = wal->load();
  WAL_CHECK(again.is_ok(), "second load failed: " + again.status().to_string());
  WAL_CHECK(same_state(*again, loaded), "second load differs from the first");
  return wal;
}

// Oracle 7: the engine's next entry goes in, and is there after a sync and a reopen.
void check_accepts_next(const fs::path& dir, std::unique_ptr<Wal> wal,
                        const RestoredState& loaded) {
  const Index next = last_of(loaded) + 1;
  if (next > kMaxSaneIndex) return;
  const Term term = loaded.entries.empty() ? (loaded.snapshot ? loaded.snapshot->meta.term : 1)
                                           : loaded.entries.back().term;
  const Entry entry{std::max<Term>(term, 1), next, EntryType::normal, "after-recovery"};
  Status s = wal->save_hard_state(loaded.hard_state);
  WAL_CHECK(s.is_ok(), "save_hard_state after recovery: " + s.to_string());
  s = wal->append({entry});
  WAL_CHECK(s.is_ok(), "append of " + describe(entry) + " after recovery: " + s.to_string());
  s = wal->sync();
  WAL_CHECK(s.is_ok(), "sync after recovery: " + s.to_string());
  wal.reset();
  wal = open_clean(dir, "open after the next entry");
  auto after = wal->load();
  WAL_CHECK(after.is_ok(), "load after the next entry: " + after.status().to_string());
  RestoredState expected = loaded;
  expected.entries.push_back(entry);
  WAL_CHECK(after->entries == expected.entries,
            "after the next entry: " + std::to_string(after->entries.size()) +
                " entries loaded, expected " + std::to_string(expected.entries.size()));
  WAL_CHECK(after->hard_state == expected.hard_state, "after the next entry: hard state differs");
  WAL_CHECK(after->snapshot == expected.snapshot, "after the next entry: snapshot differs");
}

void check_recovery(const fs::path& dir, const Truth& truth, const Builder& builder,
                    bool damaged, bool fuzzer_bytes) {
  const DirImage before = image_of(dir);
  auto opened = Wal::open(wal_options(dir));
  if (verbose()) {
    const std::string outcome = opened.is_ok() ? "ok" : opened.status().to_string();
    std::fprintf(stderr, "damaged %d fuzzer bytes %d dir%s\nopen: %s\n", damaged, fuzzer_bytes,
                 names_of(before).c_str(), outcome.c_str());
  }
  const DirImage after_open = image_of(dir);
  if (!opened) {
    WAL_CHECK(damaged, "open of an undamaged log failed: " + opened.status().to_string());
    check_error(opened.status(), dir, "open");
    const Errc code = opened.status().code();
    if (code == Errc::corrupt || code == Errc::unsupported) {
      WAL_CHECK(after_open == before, "refused directory changed: " + names_of(before) + " ->" +
                                          names_of(after_open));
    }
    return;
  }
  std::unique_ptr<Wal> wal = std::move(opened).value();
  const auto& report = wal->recovery();
  check_only_repairs(before, after_open, report);
  if (report.torn_tail) check_error(Status(Errc::corrupt, *report.torn_tail), dir, "torn tail");
  auto loaded = wal->load();
  WAL_CHECK(image_of(dir) == after_open, "load changed the directory");
  if (verbose()) {
    const std::string outcome = loaded.is_ok() ? "ok, " + describe(*loaded)
                                               : loaded.status().to_string();
    std::fprintf(stderr, "torn tail: %s\nload: %s\n", report.torn_tail.value_or("-").c_str(),
                 outcome.c_str());
  }
  if (!loaded) {
    WAL_CHECK(damaged, "load of an undamaged log failed: " + loaded.status().to_string());
    check_error(loaded.status(), dir, "load");
    return;
  }
  check_consistent(*loaded, before, truth, fuzzer_bytes);
  if (!damaged) {
    WAL_CHECK(!report.torn_tail && !report.removed_hard_state_temp, "undamaged log repaired");
    check_matches_model(*loaded, builder.expected(), builder.compacted());
  }
  wal.reset();
  wal = check_reopens_same(dir, *loaded);
  check_accepts_next(dir, std::move(wal), *loaded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(std::string_view(reinterpret_cast<const char*>(data), size));
  TempDir dir;
  Truth truth;
  Builder builder(dir.path(), in, truth);
  builder.run();
  Damager damager(dir.path(), in);
  const std::size_t damage_ops = damager.run();
  check_recovery(dir.path(), truth, builder, damage_ops != 0, damager.wrote_fuzzer_bytes());
  return 0;
}

// Unit tests of the WAL and the snapshot file on a real file system: round trips across reopen,
// conflict truncation replayed (also across segments), torn tails at every byte of the last
// record, corruption refused with files left untouched, versions, leftovers, compaction, and a
// property comparing random append/sync/crash sequences with the in-memory MemoryStorage.
#include "transport/wal/wal.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine/codec/crc32c.hpp"
#include "engine/host/host.hpp"
#include "engine/kv/kv.hpp"
#include "engine/testing/memory_ports.hpp"
#include "transport/wal/segment.hpp"
#include "transport/wal/snapshot.hpp"

namespace anya::transport {
namespace {

namespace fs = std::filesystem;
using engine::Entry;
using engine::EntryType;
using engine::HardState;
using engine::Index;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/anya-wal-test-XXXXXX";
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
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
  ASSERT_TRUE(out.good()) << path;
}

// Every regular file of `dir` by name, with its content.
std::map<std::string, std::string> snapshot_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& item : fs::directory_iterator(dir)) {
    files[item.path().filename().string()] = read_file(item.path());
  }
  return files;
}

Entry make_entry(Index index, engine::Term term, std::size_t data_bytes = 8) {
  std::string data(data_bytes, '\0');
  for (std::size_t i = 0; i < data_bytes; ++i) {
    data[i] = static_cast<char>('a' + (index * 7 + term * 3 + i) % 26);
  }
  return Entry{term, index, index % 5 == 0 ? EntryType::noop : EntryType::normal, data};
}

std::vector<Entry> make_entries(Index first, Index last, engine::Term term,
                                std::size_t data_bytes = 8) {
  std::vector<Entry> entries;
  for (Index i = first; i <= last; ++i) entries.push_back(make_entry(i, term, data_bytes));
  return entries;
}

WalOptions options_for(const fs::path& dir, std::uint64_t segment_bytes = 64u << 20) {
  WalOptions options;
  options.dir = dir;
  options.segment_bytes = segment_bytes;
  return options;
}

std::unique_ptr<Wal> open_ok(const WalOptions& options) {
  auto wal = Wal::open(options);
  EXPECT_TRUE(wal.is_ok()) << wal.status().to_string();
  if (!wal) return nullptr;
  return std::move(wal).value();
}

engine::RestoredState load_ok(Wal& wal) {
  auto state = wal.load();
  EXPECT_TRUE(state.is_ok()) << state.status().to_string();
  if (!state) return {};
  return std::move(state).value();
}

fs::path segment_path(const fs::path& dir, std::uint64_t sequence) {
  return dir / segment_file_name(sequence);
}

// Byte offset of entry record `k` (0-based) in a segment holding only entry records.
std::uint64_t record_offset(const std::vector<Entry>& entries, std::size_t k) {
  std::uint64_t offset = kSegmentHeaderBytes;
  for (std::size_t i = 0; i < k; ++i) offset += entry_record_bytes(entries[i]);
  return offset;
}

TEST(Wal, RoundTripOfEntriesAndHardStateAcrossReopen) {
  TempDir dir;
  const auto entries = make_entries(1, 6, 3);
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    EXPECT_TRUE(wal->recovery().fresh);
    ASSERT_TRUE(wal->append(entries).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{3, 2, 4}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    const auto state = load_ok(*wal);
    EXPECT_EQ(state.entries, entries);
    EXPECT_EQ(state.hard_state, (HardState{3, 2, 4}));
  }
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  EXPECT_FALSE(wal->recovery().fresh);
  EXPECT_FALSE(wal->recovery().torn_tail.has_value());
  EXPECT_EQ(wal->recovery().segments, 1u);
  EXPECT_EQ(wal->recovery().first_index, 1u);
  EXPECT_EQ(wal->recovery().last_index, 6u);
  const auto state = load_ok(*wal);
  EXPECT_EQ(state.entries, entries);
  EXPECT_EQ(state.hard_state, (HardState{3, 2, 4}));
}

TEST(Wal, EntriesAtTheSizeLimitRoundTripEvenPastTheSegmentSize) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  auto entries = make_entries(1, 3, 1, engine::Limits::max_entry_data_bytes);
  entries[1].data.resize(10);
  ASSERT_EQ(entry_record_bytes(entries[0]), kRecordHeaderBytes + kMaxRecordBytes);
  {
    auto wal = open_ok(options);
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(entries).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  EXPECT_EQ(wal->recovery().segments, 3u) << "one oversized record per segment";
  EXPECT_EQ(load_ok(*wal).entries, entries);
}

TEST(Wal, StagedButUnsyncedStateIsNotLoadedAndIsLostOnReopen) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 2, 1)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 1}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(make_entries(3, 4, 2)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{2, 3, 3}).is_ok());
    const auto staged_only = load_ok(*wal);
    EXPECT_EQ(staged_only.entries, make_entries(1, 2, 1));
    EXPECT_EQ(staged_only.hard_state, (HardState{1, 1, 1}));
  }
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  EXPECT_EQ(state.entries, make_entries(1, 2, 1));
  EXPECT_EQ(state.hard_state, (HardState{1, 1, 1}));
}

TEST(Wal, AppendRefusesGapsAndNonConsecutiveEntries) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 3, 1)).is_ok());
  EXPECT_EQ(wal->append(make_entries(5, 6, 1)).code(), Errc::invalid_argument);
  std::vector<Entry> skipping = {make_entry(4, 1), make_entry(6, 1)};
  EXPECT_EQ(wal->append(skipping).code(), Errc::invalid_argument);
  EXPECT_EQ(wal->append({make_entry(0, 1)}).code(), Errc::invalid_argument);
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 3, 1));
}

TEST(Wal, ConflictTruncationIsReplayedOnReopen) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 5, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(make_entries(3, 4, 2)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  auto expected = make_entries(1, 2, 1);
  for (const auto& e : make_entries(3, 4, 2)) expected.push_back(e);
  EXPECT_EQ(load_ok(*wal).entries, expected);
  EXPECT_EQ(wal->recovery().last_index, 4u);
}

TEST(Wal, ConflictTruncationReachesBackIntoEarlierSegments) {
  TempDir dir;
  constexpr std::uint64_t kSegmentBytes = Wal::kMinSegmentBytes;
  std::uint64_t segments_before = 0;
  {
    auto wal = open_ok(options_for(dir.path(), kSegmentBytes));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 20, 1, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    // Entry 2 lives in the first segment; its replacement goes into the last one.
    ASSERT_TRUE(wal->append(make_entries(2, 3, 2, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  for (const auto& item : fs::directory_iterator(dir.path())) {
    segments_before += parse_segment_file_name(item.path().filename().string()).has_value();
  }
  EXPECT_GE(segments_before, 5u);
  auto wal = open_ok(options_for(dir.path(), kSegmentBytes));
  ASSERT_TRUE(wal);
  auto expected = make_entries(1, 1, 1, 1000);
  for (const auto& e : make_entries(2, 3, 2, 1000)) expected.push_back(e);
  EXPECT_EQ(load_ok(*wal).entries, expected);
  EXPECT_EQ(wal->recovery().segments, segments_before);
  // And the log goes on from the truncated end.
  ASSERT_TRUE(wal->append(make_entries(4, 4, 3, 1000)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  expected.push_back(make_entry(4, 3, 1000));
  EXPECT_EQ(load_ok(*wal).entries, expected);
}

// Builds a log of entries 1..3 (first sync) and 4 (second sync) in `dir`; returns the bytes of
// its one segment and the offset where entry 4's record starts.
std::pair<std::string, std::uint64_t> build_four_entries(const fs::path& dir) {
  auto wal = open_ok(options_for(dir));
  EXPECT_TRUE(wal);
  EXPECT_TRUE(wal->append(make_entries(1, 3, 1, 20)).is_ok());
  EXPECT_TRUE(wal->sync().is_ok());
  EXPECT_TRUE(wal->append(make_entries(4, 4, 1, 20)).is_ok());
  EXPECT_TRUE(wal->sync().is_ok());
  return {read_file(segment_path(dir, 1)), record_offset(make_entries(1, 4, 1, 20), 3)};
}

TEST(Wal, TornTailAtEveryByteOfTheLastRecordRecoversThePrefix) {
  TempDir source;
  const auto [bytes, last_record] = build_four_entries(source.path());
  ASSERT_EQ(bytes.size(), last_record + entry_record_bytes(make_entry(4, 1, 20)));
  for (std::uint64_t cut = last_record + 1; cut < bytes.size(); ++cut) {
    TempDir dir;
    const auto path = segment_path(dir.path(), 1);
    write_file(path, std::string_view(bytes).substr(0, cut));
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal) << "cut at " << cut;
    const auto& report = wal->recovery();
    ASSERT_TRUE(report.torn_tail.has_value()) << "cut at " << cut;
    EXPECT_NE(report.torn_tail->find(path.string()), std::string::npos) << *report.torn_tail;
    EXPECT_NE(report.torn_tail->find("byte offset " + std::to_string(last_record)),
              std::string::npos) << *report.torn_tail;
    EXPECT_NE(report.torn_tail->find(std::to_string(cut - last_record) + " bytes dropped"),
              std::string::npos) << *report.torn_tail;
    EXPECT_EQ(report.last_index, 3u);
    EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 3, 1, 20)) << "cut at " << cut;
    EXPECT_EQ(fs::file_size(path), last_record) << "the torn bytes are cut away";
  }
}

TEST(Wal, ChecksumFailureOfARecordEndingTheLastSegmentIsATornTail) {
  TempDir dir;
  auto [bytes, last_record] = build_four_entries(dir.path());
  bytes.back() = static_cast<char>(bytes.back() ^ 0x40);
  write_file(segment_path(dir.path(), 1), bytes);
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->recovery().torn_tail.has_value());
  EXPECT_NE(wal->recovery().torn_tail->find("checksum"), std::string::npos);
  EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 3, 1, 20));
  // The recovered log takes new appends, which survive a reopen.
  ASSERT_TRUE(wal->append(make_entries(4, 5, 2)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  EXPECT_FALSE(wal->recovery().torn_tail.has_value());
  auto expected = make_entries(1, 3, 1, 20);
  for (const auto& e : make_entries(4, 5, 2)) expected.push_back(e);
  EXPECT_EQ(load_ok(*wal).entries, expected);
}

TEST(Wal, ZeroBytesAfterTheLastGoodRecordAreATornTail) {
  TempDir dir;
  auto [bytes, last_record] = build_four_entries(dir.path());
  bytes.append(100, '\0');
  write_file(segment_path(dir.path(), 1), bytes);
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->recovery().torn_tail.has_value());
  EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 4, 1, 20));
}

TEST(Wal, NewSegmentWithATornHeaderIsRemoved) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  {
    auto wal = open_ok(options);
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 8, 1, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  std::uint64_t last = 0;
  while (fs::exists(segment_path(dir.path(), last + 1))) ++last;
  ASSERT_GE(last, 2u);
  for (std::size_t cut : {std::size_t{0}, std::size_t{7}, kSegmentHeaderBytes - 1}) {
    // A crash right after the roll created the next segment, before its header was durable.
    const auto torn = segment_path(dir.path(), last + 1);
    write_file(torn, encode_segment_header(last + 1).substr(0, cut));
    auto wal = open_ok(options);
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->recovery().torn_tail.has_value()) << "cut at " << cut;
    EXPECT_NE(wal->recovery().torn_tail->find(torn.string()), std::string::npos);
    EXPECT_FALSE(fs::exists(torn));
    EXPECT_EQ(wal->recovery().segments, last);
    EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 8, 1, 1000));
  }
}

TEST(Wal, CorruptByteInAnEarlierRecordIsCorruptAndTouchesNothing) {
  TempDir dir;
  const auto [bytes, last_record] = build_four_entries(dir.path());
  const auto entries = make_entries(1, 4, 1, 20);
  const std::uint64_t second = record_offset(entries, 1);
  std::string damaged = bytes;
  damaged[second + kRecordHeaderBytes + 5] ^= 0x01;  // inside entry 2's payload
  write_file(segment_path(dir.path(), 1), damaged);
  write_file(dir.path() / "hardstate.tmp", "leftover");  // must survive the failed open
  const auto before = snapshot_files(dir.path());

  auto wal = Wal::open(options_for(dir.path()));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::corrupt);
  const std::string& message = wal.status().message();
  EXPECT_NE(message.find(segment_path(dir.path(), 1).string()), std::string::npos) << message;
  EXPECT_NE(message.find("byte offset " + std::to_string(second)), std::string::npos) << message;
  EXPECT_EQ(snapshot_files(dir.path()), before);
}

TEST(Wal, BadRecordInASegmentThatIsNotTheLastIsCorrupt) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 12, 1, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  ASSERT_TRUE(fs::exists(segment_path(dir.path(), 3)));
  // The last record of the first segment ends at its end of file: in the last segment that
  // would be a torn tail, here it is damage.
  const auto first = segment_path(dir.path(), 1);
  std::string bytes = read_file(first);
  bytes.back() ^= 0x01;
  write_file(first, bytes);
  const auto before = snapshot_files(dir.path());
  auto wal = Wal::open(options_for(dir.path(), Wal::kMinSegmentBytes));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::corrupt);
  EXPECT_NE(wal.status().message().find(first.string()), std::string::npos)
      << wal.status().message();
  EXPECT_EQ(snapshot_files(dir.path()), before);
}

TEST(Wal, MissingMiddleSegmentIsCorrupt) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 12, 1, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  fs::remove(segment_path(dir.path(), 2));
  auto wal = Wal::open(options_for(dir.path(), Wal::kMinSegmentBytes));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::corrupt);
  EXPECT_NE(wal.status().message().find(segment_file_name(2)), std::string::npos);
}

TEST(Wal, EmptyDirectoryIsAFreshLog) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  EXPECT_TRUE(wal->recovery().fresh);
  EXPECT_EQ(wal->recovery().segments, 0u);
  const auto state = load_ok(*wal);
  EXPECT_TRUE(state.entries.empty());
  EXPECT_EQ(state.hard_state, HardState{});
  EXPECT_EQ(wal->size_bytes(), 0u);
}

TEST(Wal, MissingDirectoryIsCreatedAsAFreshLog) {
  TempDir dir;
  const auto nested = dir.path() / "a" / "b";
  auto wal = open_ok(options_for(nested));
  ASSERT_TRUE(wal);
  EXPECT_TRUE(wal->recovery().fresh);
  EXPECT_TRUE(fs::is_directory(nested));
  ASSERT_TRUE(wal->append(make_entries(1, 1, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(load_ok(*wal).entries, make_entries(1, 1, 1));
}

TEST(Wal, UnknownSegmentVersionIsUnsupportedNamingTheFile) {
  TempDir dir;
  build_four_entries(dir.path());
  const auto path = segment_path(dir.path(), 1);
  std::string bytes = read_file(path);
  bytes[4] = 2;  // format version, little-endian u32 after the magic
  write_file(path, bytes);
  auto wal = Wal::open(options_for(dir.path()));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::unsupported);
  EXPECT_NE(wal.status().message().find(path.string()), std::string::npos);
  EXPECT_NE(wal.status().message().find("version 2"), std::string::npos);
}

TEST(Wal, LeftoverHardStateTempFileIsIgnoredAndRemoved) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->save_hard_state(HardState{5, 1, 0}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  // A crash while replacing the hard state with term 6 left the temp file half written.
  write_file(dir.path() / "hardstate.tmp", "ANYA\x01\x02");
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  EXPECT_TRUE(wal->recovery().removed_hard_state_temp);
  EXPECT_FALSE(fs::exists(dir.path() / "hardstate.tmp"));
  EXPECT_EQ(load_ok(*wal).hard_state, (HardState{5, 1, 0}));
}

TEST(Wal, HardStateFileIsRewrittenOnlyWhenTermOrVoteChange) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 3, 1)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 2, 0}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  const auto inode = [&] {
    struct stat st {};
    EXPECT_EQ(::stat((dir.path() / "hardstate").c_str(), &st), 0);
    return st.st_ino;
  };
  const auto first = inode();
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 2, 3}).is_ok());  // commit only
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(inode(), first);
  EXPECT_EQ(load_ok(*wal).hard_state, (HardState{1, 2, 3}));
  ASSERT_TRUE(wal->save_hard_state(HardState{2, 0, 3}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_NE(inode(), first) << "a new term is written to a new file renamed over the old";
  EXPECT_EQ(load_ok(*wal).hard_state, (HardState{2, 0, 3}));
}

TEST(Wal, CorruptHardStateFileIsCorruptNamingIt) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->save_hard_state(HardState{5, 1, 0}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  std::string bytes = read_file(dir.path() / "hardstate");
  bytes[12] ^= 0x10;
  write_file(dir.path() / "hardstate", bytes);
  auto wal = Wal::open(options_for(dir.path()));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::corrupt);
  EXPECT_NE(wal.status().message().find((dir.path() / "hardstate").string()), std::string::npos);
}

TEST(Wal, CommitIndexNeverPointsPastTheDurableEntriesAfterATornTail) {
  TempDir dir;
  // Hand-built segment: a commit record claiming 5 ahead of entries 1..5, entry 5 torn. The WAL
  // never writes this order itself; the clamp must hold whatever the files say.
  std::string bytes = encode_segment_header(1);
  append_commit_record(5, bytes);
  for (const auto& e : make_entries(1, 5, 1)) append_entry_record(e, bytes);
  write_file(segment_path(dir.path(), 1), std::string_view(bytes).substr(0, bytes.size() - 3));
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  EXPECT_TRUE(wal->recovery().torn_tail.has_value());
  const auto state = load_ok(*wal);
  EXPECT_EQ(state.entries, make_entries(1, 4, 1));
  EXPECT_EQ(state.hard_state.commit, 4u);
}

TEST(Wal, CommitOfASyncIsTornAwayWithItsEntries) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 3, 1)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 2}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(make_entries(4, 6, 1)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 6}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  // Cut inside entry 5: entry 6 and the commit record of 6 that followed it are gone.
  const auto path = segment_path(dir.path(), 1);
  const std::string bytes = read_file(path);
  const auto tail = entry_record_bytes(make_entry(6, 1)) + kRecordHeaderBytes +
                    kCommitRecordPayloadBytes;
  write_file(path, std::string_view(bytes).substr(0, bytes.size() - tail - 2));
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  EXPECT_EQ(state.entries, make_entries(1, 4, 1));
  EXPECT_EQ(state.hard_state.commit, 2u);
}

TEST(Wal, CommitIsClampedByALaterConflictTruncation) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 5, 1)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 5}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->append(make_entries(3, 3, 2)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(load_ok(*wal).hard_state.commit, 3u);
}

TEST(Wal, ReopenedLogRecordsTheClampedCommitWhenTheEngineSavesIt) {
  TempDir dir;
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 5, 1)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 5}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(make_entries(3, 3, 2)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  auto state = load_ok(*wal);
  ASSERT_EQ(state.hard_state.commit, 3u);
  // The engine restarts from what it loaded and saves it back; the stale 5 must not come back
  // once the log grows past it again.
  ASSERT_TRUE(wal->save_hard_state(state.hard_state).is_ok());
  ASSERT_TRUE(wal->append(make_entries(4, 7, 2)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(load_ok(*wal).hard_state.commit, 3u);
}

// Opening `dir` must fail as corrupt with `what` at byte offset `offset`, leaving every file
// as it was.
void expect_open_refused(const fs::path& dir, std::uint64_t offset, const std::string& what) {
  const auto before = snapshot_files(dir);
  auto wal = Wal::open(options_for(dir));
  ASSERT_FALSE(wal.is_ok());
  EXPECT_EQ(wal.status().code(), Errc::corrupt);
  const std::string& message = wal.status().message();
  EXPECT_NE(message.find("byte offset " + std::to_string(offset)), std::string::npos) << message;
  EXPECT_NE(message.find(what), std::string::npos) << message;
  EXPECT_EQ(snapshot_files(dir), before);
}

TEST(Wal, RecordLengthOverTheMaximumIsRefusedBeforeReading) {
  TempDir dir;
  std::string bytes = encode_segment_header(1);
  append_entry_record(make_entry(1, 1), bytes);
  const std::uint64_t bad = bytes.size();
  const auto length = static_cast<std::uint32_t>(kMaxRecordBytes + 1);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  bytes.append(4, '\x7f');  // a checksum, and nothing of the 1 MiB the length declares
  write_file(segment_path(dir.path(), 1), bytes);
  expect_open_refused(dir.path(), bad, "over the maximum of " + std::to_string(kMaxRecordBytes));
}

// Max entry index of each segment, read independently of the Wal's own bookkeeping.
std::vector<Index> max_index_per_segment(const fs::path& dir, std::uint64_t segments) {
  std::vector<Index> max_index;
  for (std::uint64_t seq = 1; seq <= segments; ++seq) {
    Index max = 0;
    auto scan = scan_segment(segment_path(dir, seq), seq, seq == segments, [&](const Record& r) {
      if (r.kind == RecordKind::entry) max = std::max(max, r.entry.index);
      return Status{};
    });
    EXPECT_TRUE(scan.is_ok()) << scan.status().to_string();
    max_index.push_back(max);
  }
  return max_index;
}

TEST(Wal, CompactionDeletesOnlyFullyCoveredSegments) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  const auto entries = make_entries(1, 30, 1, 1000);
  ASSERT_TRUE(wal->append(entries).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 30}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  std::uint64_t count = 0;
  while (fs::exists(segment_path(dir.path(), count + 1))) ++count;
  ASSERT_GE(count, 6u);
  const auto max_index = max_index_per_segment(dir.path(), count);
  const std::uint64_t size_before = wal->size_bytes();

  constexpr Index kThrough = 10;
  std::uint64_t covered = 0;
  while (covered + 1 < count && max_index[covered] < kThrough) ++covered;
  ASSERT_GE(covered, 1u);
  ASSERT_TRUE(wal->compact(kThrough).is_ok());
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    EXPECT_EQ(fs::exists(segment_path(dir.path(), seq)), seq > covered) << "segment " << seq;
  }
  EXPECT_LT(wal->size_bytes(), size_before);
  const auto first_retained = max_index[covered - 1] + 1;
  EXPECT_LE(first_retained, kThrough) << "the entry at `through` stays";
  const auto state = load_ok(*wal);
  EXPECT_EQ(state.entries,
            std::vector<Entry>(entries.begin() + static_cast<std::ptrdiff_t>(first_retained - 1),
                               entries.end()));
  EXPECT_EQ(state.hard_state.commit, 30u) << "the commit index survives compaction";

  // Never the segment being written, whatever `through` says; the log still reopens.
  ASSERT_TRUE(wal->compact(1000).is_ok());
  EXPECT_TRUE(fs::exists(segment_path(dir.path(), count)));
  EXPECT_EQ(fs::file_size(segment_path(dir.path(), count)), wal->size_bytes());
  wal.reset();
  wal = open_ok(options);
  ASSERT_TRUE(wal);
  EXPECT_EQ(wal->recovery().segments, 1u);
  EXPECT_EQ(load_ok(*wal).hard_state.commit, 30u);
  EXPECT_EQ(load_ok(*wal).entries.back(), entries.back());
}

TEST(Wal, CommitIndexSurvivesCompactionOfTheSegmentThatRecordedIt) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 2, 1, 1000)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 1, 2}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  // Later syncs leave the commit index where it is while the log rolls over several segments.
  for (Index i = 3; i <= 20; ++i) {
    ASSERT_TRUE(wal->append(make_entries(i, i, 1, 1000)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  ASSERT_TRUE(fs::exists(segment_path(dir.path(), 4)));
  ASSERT_TRUE(wal->compact(16).is_ok());
  EXPECT_FALSE(fs::exists(segment_path(dir.path(), 1)));
  wal.reset();
  wal = open_ok(options);
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_FALSE(state.entries.empty());
  EXPECT_GT(state.entries.front().index, 2u);
  EXPECT_EQ(state.hard_state.commit, 2u);
}

TEST(Wal, SecondOpenOfTheSameDirectoryIsBusy) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  auto second = Wal::open(options_for(dir.path()));
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Errc::busy);
  wal.reset();
  EXPECT_TRUE(Wal::open(options_for(dir.path())).is_ok());
}

TEST(Wal, EachFsyncIsReportedToTheObserver) {
  TempDir dir;
  std::vector<std::uint64_t> latencies;
  auto options = options_for(dir.path());
  options.on_fsync = [&](std::uint64_t micros) { latencies.push_back(micros); };
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  latencies.clear();
  ASSERT_TRUE(wal->append(make_entries(1, 2, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(latencies.size(), 2u) << "the new segment and the directory";
  ASSERT_TRUE(wal->append(make_entries(3, 3, 1)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{4, 1, 0}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_EQ(latencies.size(), 5u) << "the segment, then the temp file and the directory";
  options.fsync = false;
  wal.reset();
  wal = open_ok(options);
  latencies.clear();
  ASSERT_TRUE(wal->append(make_entries(4, 4, 1)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{5, 1, 0}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  EXPECT_TRUE(latencies.empty());
}

TEST(Wal, OptionsOutsideTheLimitsAreRefused) {
  TempDir dir;
  EXPECT_EQ(Wal::open(options_for(dir.path(), 100)).status().code(), Errc::invalid_argument);
  EXPECT_EQ(Wal::open(options_for(dir.path(), Wal::kMaxSegmentBytes + 1)).status().code(),
            Errc::invalid_argument);
  EXPECT_EQ(Wal::open(options_for("")).status().code(), Errc::invalid_argument);
}

TEST(Snapshot, SaveAndLoadRoundTrip) {
  TempDir dir;
  auto none = load_snapshot(dir.path() / "missing");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  const std::string data("state\0machine\xff", 14);
  ASSERT_TRUE(save_snapshot(dir.path(), SnapshotMeta{42, 7}, data).is_ok());
  auto loaded = load_snapshot(dir.path());
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->first, (SnapshotMeta{42, 7}));
  EXPECT_EQ((*loaded)->second, data);
  // Replaced by a newer one; a leftover temp file is ignored.
  write_file(dir.path() / "snapshot.tmp", "half written");
  ASSERT_TRUE(save_snapshot(dir.path(), SnapshotMeta{50, 8}, "").is_ok());
  loaded = load_snapshot(dir.path());
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ((*loaded)->first, (SnapshotMeta{50, 8}));
  EXPECT_EQ((*loaded)->second, "");
}

TEST(Snapshot, EveryFlippedByteIsReportedAsDamage) {
  TempDir dir;
  ASSERT_TRUE(save_snapshot(dir.path(), SnapshotMeta{42, 7}, "some state").is_ok());
  const auto path = dir.path() / "snapshot";
  const std::string good = read_file(path);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    write_file(path, bad);
    auto loaded = load_snapshot(dir.path());
    ASSERT_FALSE(loaded.is_ok()) << "flip at " << i;
    const Errc expected = (i >= 4 && i < 8) ? Errc::unsupported : Errc::corrupt;
    EXPECT_EQ(loaded.status().code(), expected) << "flip at " << i;
    EXPECT_NE(loaded.status().message().find(path.string()), std::string::npos);
  }
  write_file(path, std::string_view(good).substr(0, good.size() - 1));
  EXPECT_EQ(load_snapshot(dir.path()).status().code(), Errc::corrupt);
}

// The same rule for a snapshot record in a segment.
TEST(Wal, ASnapshotRecordOfIndexZeroIsCorruptEvenWithAGoodChecksum) {
  TempDir dir;
  std::string bytes = encode_segment_header(1);
  append_entry_record(make_entry(1, 1), bytes);
  const std::uint64_t bad = bytes.size();
  append_snapshot_record(0, 1, bytes);
  append_entry_record(make_entry(2, 1), bytes);
  write_file(segment_path(dir.path(), 1), bytes);
  expect_open_refused(dir.path(), bad, "snapshot index 0 outside 1..");
}

// --- property: the WAL against the in-memory model ---

// Random append (with truncations), hard-state saves, syncs, and reopens that lose whatever was
// not synced, against MemoryStorage with drop_unsynced. The loaded state must match after every
// sync and reopen. Tiny segments make rolls and cross-segment truncations common.
RC_GTEST_PROP(WalProperty, MatchesTheInMemoryModel, ()) {
  TempDir dir;
  auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  options.fsync = false;  // the property checks the format and replay, not the disk
  auto wal = Wal::open(options);
  RC_ASSERT(wal.is_ok());
  engine::testing::MemoryStorage model;
  Index last = 0;
  HardState hard_state;
  const auto steps = *rc::gen::inRange(1, 40);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 10);
    if (op < 5) {
      // Conflict truncation stays above the commit index, as Raft's does: below it the WAL
      // (which clamps the commit to the last entry on reopen) and the model (which does not)
      // would rightly disagree about a state no node can reach.
      const Index first =
          *rc::gen::inRange<Index>(std::min(hard_state.commit, last) + 1, last + 2);
      const auto count = *rc::gen::inRange<Index>(1, 6);
      const auto bytes = *rc::gen::inRange<std::size_t>(0, 1500);
      const auto term = *rc::gen::inRange<engine::Term>(1, 9);
      const auto entries = make_entries(first, first + count - 1, term, bytes);
      RC_ASSERT((*wal)->append(entries).is_ok());
      RC_ASSERT(model.append(entries).is_ok());
      last = first + count - 1;
    } else if (op < 7) {
      hard_state.term += *rc::gen::inRange<engine::Term>(0, 2);
      hard_state.vote = *rc::gen::inRange<engine::NodeId>(0, 4);
      // Often exactly the last index: the common case, and the edge of the clamp.
      hard_state.commit = *rc::gen::oneOf(rc::gen::inRange<Index>(0, last + 1),
                                          rc::gen::just(last));
      RC_ASSERT((*wal)->save_hard_state(hard_state).is_ok());
      RC_ASSERT(model.save_hard_state(hard_state).is_ok());
    } else if (op < 9) {
      RC_ASSERT((*wal)->sync().is_ok());
      RC_ASSERT(model.sync().is_ok());
    } else {
      wal = Result<std::unique_ptr<Wal>>(Status(Errc::io_error, "closed"));
      wal = Wal::open(options);
      RC_ASSERT(wal.is_ok());
      model.drop_unsynced();
      const auto durable = model.durable();
      last = durable.entries.empty() ? 0 : durable.entries.back().index;
      hard_state = durable.hard_state;
    }
    const auto loaded = (*wal)->load();
    RC_ASSERT(loaded.is_ok());
    const auto& expected = model.durable();
    RC_ASSERT(loaded->entries == expected.entries);
    const Index expected_last = expected.entries.empty() ? 0 : expected.entries.back().index;
    RC_ASSERT(loaded->hard_state.term == expected.hard_state.term);
    RC_ASSERT(loaded->hard_state.vote == expected.hard_state.vote);
    RC_ASSERT(loaded->hard_state.commit == std::min(expected.hard_state.commit, expected_last));
  }
}

// ---- snapshots through the StoragePort ----

engine::SnapshotMeta meta_at(Index index, engine::Term term) {
  engine::SnapshotMeta meta{index, term, {}};
  meta.membership.voters = {1, 2, 3};
  return meta;
}

// A snapshot file whose checksum holds but whose index or term no snapshot can have (written by
// a bug or a hand edit, then resealed): open refuses it, naming the file and the field's offset,
// and touches nothing. Before, an index of 0 was staged as a snapshot record and the first sync
// failed an assertion.
TEST(Snapshot, AnIndexOrTermNoSnapshotCanHaveIsCorruptEvenWithAGoodChecksum) {
  struct Case {
    SnapshotMeta meta;
    std::uint64_t offset;
    const char* what;
  };
  const Case cases[] = {
      {{0, 7}, 8, "snapshot index 0 outside 1.."},
      {{engine::Limits::max_index + 1, 7}, 8, "snapshot index"},
      {{42, 0}, 16, "snapshot term 0 outside 1.."},
      {{42, engine::Limits::max_term + 1}, 16, "snapshot term"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    {
      auto wal = Wal::open(options_for(dir.path()));
      ASSERT_TRUE(wal.is_ok());
      ASSERT_TRUE((*wal)->append(make_entries(1, 50, 3, 10)).is_ok());
      ASSERT_TRUE((*wal)->save_snapshot(meta_at(42, 3), "state").is_ok());
      ASSERT_TRUE((*wal)->sync().is_ok());
    }
    EXPECT_EQ(save_snapshot(dir.path(), c.meta, "state").code(), Errc::invalid_argument);
    // Reseal the file with the bad field, as save_snapshot would have written it.
    const auto path = dir.path() / "snapshot";
    std::string bytes = read_file(path);
    std::string header = bytes.substr(0, kSnapshotHeaderBytes);
    for (int i = 0; i < 8; ++i) {
      header[8 + i] = static_cast<char>((c.meta.index >> (8 * i)) & 0xff);
      header[16 + i] = static_cast<char>((c.meta.term >> (8 * i)) & 0xff);
    }
    const std::string data = bytes.substr(kSnapshotHeaderBytes,
                                          bytes.size() - kSnapshotHeaderBytes - 4);
    const std::uint32_t crc = engine::crc32c_extend(engine::crc32c(header), data);
    std::string trailer;
    for (int i = 0; i < 4; ++i) trailer.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    write_file(path, header + data + trailer);
    const auto before = snapshot_files(dir.path());
    auto wal = Wal::open(options_for(dir.path()));
    ASSERT_FALSE(wal.is_ok()) << c.what;
    EXPECT_EQ(wal.status().code(), Errc::corrupt);
    const std::string& message = wal.status().message();
    EXPECT_NE(message.find(path.string() + ": byte offset " + std::to_string(c.offset)),
              std::string::npos) << message;
    EXPECT_NE(message.find(c.what), std::string::npos) << message;
    EXPECT_EQ(snapshot_files(dir.path()), before);
  }
}

TEST(WalSnapshot, LoadReturnsTheSnapshotAndTheEntriesThatContinueIt) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 40, 2, 500)).is_ok());  // several segments
  ASSERT_TRUE(wal->save_hard_state(HardState{2, 1, 40}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->save_snapshot(meta_at(30, 2), "image").is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  const std::uint64_t before = wal->size_bytes();
  ASSERT_TRUE(wal->compact(25).is_ok());
  EXPECT_LT(wal->size_bytes(), before) << "whole segments at or below 25 are gone";
  wal.reset();
  wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta, meta_at(30, 2));
  EXPECT_EQ(state.snapshot->data, "image");
  ASSERT_FALSE(state.entries.empty());
  EXPECT_LE(state.entries.front().index, 31u);
  EXPECT_EQ(state.entries.back().index, 40u);
  EXPECT_EQ(state.hard_state.commit, 40u);
}

TEST(WalSnapshot, AnInstalledSnapshotDropsTheEntriesThatDoNotContinueIt) {
  TempDir dir;
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 8, 1)).is_ok());  // a stale log of term 1
  ASSERT_TRUE(wal->save_hard_state(HardState{1, 0, 3}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  // The leader's snapshot at (20, 3): nothing here continues it; the log resumes at 21.
  ASSERT_TRUE(wal->save_snapshot(meta_at(20, 3), "leader").is_ok());
  ASSERT_TRUE(wal->append(make_entries(21, 22, 3)).is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{3, 0, 21}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta.index, 20u);
  ASSERT_EQ(state.entries.size(), 2u);
  EXPECT_EQ(state.entries.front().index, 21u);
  EXPECT_EQ(state.hard_state.commit, 21u);
}

// Entries 1..8 of term 1 synced, then a leader's snapshot (20, 3) saved: its file is durable at
// once, its record only staged, and the process dies before the sync.
void crash_before_snapshot_record(const TempDir& dir) {
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 8, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->save_snapshot(meta_at(20, 3), "leader").is_ok());
}

TEST(WalSnapshot, ACrashBeforeTheSnapshotRecordStillDropsTheReplacedLog) {
  TempDir dir;
  crash_before_snapshot_record(dir);
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_TRUE(state.entries.empty()) << "entries 1..8 of term 1 do not continue (20, 3)";
}

// The follower's next step after that crash: the engine loaded (20, 3) and no entry, so its next
// entry is 21. The WAL must take it, and replay it after the snapshot rather than as a gap after
// the replaced entries 1..8 (found by fuzz/wal_recovery_fuzz.cpp).
TEST(WalSnapshot, AfterACrashBeforeTheSnapshotRecordTheLogContinuesAfterTheSnapshot) {
  TempDir dir;
  crash_before_snapshot_record(dir);
  {
    auto wal = open_ok(options_for(dir.path()));
    ASSERT_TRUE(wal);
    EXPECT_EQ(wal->recovery().last_index, 0u) << "entries 1..8 do not continue (20, 3)";
    ASSERT_TRUE(load_ok(*wal).entries.empty());
    const Status appended = wal->append(make_entries(21, 22, 3));
    ASSERT_TRUE(appended.is_ok()) << appended.to_string();
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open_ok(options_for(dir.path()));
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta.index, 20u);
  EXPECT_EQ(state.entries, make_entries(21, 22, 3));
}

// A snapshot record stays in a segment that compaction keeps, while the entries around its index
// go with older segments: on replay the record must not drop the retained entries, which continue
// it in the full log (found by fuzz/wal_recovery_fuzz.cpp).
TEST(WalSnapshot, AnOldSnapshotRecordKeepsTheEntriesThatOutliveTheCompactedOnes) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 12, 1, 1000)).is_ok());  // three entries a segment
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->append(make_entries(6, 8, 2, 300)).is_ok());  // 8 starts a new segment
  // A snapshot lagging the log: its record (2, 1) lands after entry 8.
  ASSERT_TRUE(wal->save_snapshot(meta_at(2, 1), "old").is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->save_snapshot(meta_at(7, 2), "new").is_ok());
  ASSERT_TRUE(wal->save_hard_state(HardState{2, 1, 8}).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->compact(5).is_ok());
  ASSERT_FALSE(fs::exists(segment_path(dir.path(), 1))) << "entries 1..3 are compacted";
  wal.reset();
  wal = open_ok(options);
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta.index, 7u);
  ASSERT_FALSE(state.entries.empty()) << "entry 8, past the snapshot, is lost";
  EXPECT_EQ(state.entries.back(), make_entry(8, 2, 300));
  EXPECT_EQ(state.hard_state.commit, 8u);
}

// A follower's stale log whose segment ends exactly at the index of the leader's snapshot that
// replaces it: compacting through that index must keep the entry there, else replay sees stale
// entries starting right after the snapshot and takes them as continuing it (found by
// fuzz/wal_recovery_fuzz.cpp).
TEST(WalSnapshot, CompactionThroughAReplacingSnapshotDoesNotRevealTheReplacedEntries) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  ASSERT_TRUE(wal->append(make_entries(1, 6, 1, 1000)).is_ok());  // segments {1, 2, 3} {4, 5, 6}
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->save_snapshot(meta_at(3, 2), "leader").is_ok());  // entry 3 has term 1
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->compact(3).is_ok());
  wal.reset();
  wal = open_ok(options);
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta.index, 3u);
  EXPECT_TRUE(state.entries.empty()) << "stale entries " << state.entries.front().index << ".."
                                     << state.entries.back().index << " of term 1 loaded";
}

// A replacing snapshot's record dropped the stale entries 1..4 of term 1; a second replacing
// snapshot lost its record in a crash, which went unnoticed because no entry contradicted it any
// more. The engine then appended 5..7 after it. Once compaction removed entries 1..2, replay
// kept the stale 3..4 (the first record's entries are gone) and, with no record of (4, 4) before
// entry 5, load's check of the snapshot file dropped 3..7 together: open must stage the lost
// record again whenever the segments lack it (found by fuzz/wal_recovery_fuzz.cpp).
TEST(WalSnapshot, ASnapshotRecordLostInACrashIsStagedAgainEvenWithNoEntryToDrop) {
  TempDir dir;
  const auto options = options_for(dir.path(), Wal::kMinSegmentBytes);
  {
    auto wal = open_ok(options);
    ASSERT_TRUE(wal);
    ASSERT_TRUE(wal->append(make_entries(1, 4, 1, 1500)).is_ok());  // segments {1, 2} {3, 4}
    ASSERT_TRUE(wal->save_snapshot(meta_at(2, 3), "first leader").is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->save_snapshot(meta_at(4, 4), "second leader").is_ok());  // then a crash
  }
  {
    auto wal = open_ok(options);
    ASSERT_TRUE(wal);
    ASSERT_TRUE(load_ok(*wal).entries.empty());
    ASSERT_TRUE(wal->append(make_entries(5, 7, 4, 300)).is_ok());
    ASSERT_TRUE(wal->save_hard_state(HardState{4, 0, 7}).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->compact(4).is_ok());
    ASSERT_FALSE(fs::exists(segment_path(dir.path(), 1))) << "entries 1..2 are compacted";
  }
  auto wal = open_ok(options);
  ASSERT_TRUE(wal);
  const auto state = load_ok(*wal);
  ASSERT_TRUE(state.snapshot.has_value());
  EXPECT_EQ(state.snapshot->meta, meta_at(4, 4));
  EXPECT_EQ(state.entries, make_entries(5, 7, 4, 300)) << "entries past the snapshot are lost";
  EXPECT_EQ(state.hard_state.commit, 7u);
}

// A one-node engine over the WAL with the node's KV store as its state machine.
class KvMachine : public engine::StateMachinePort {
 public:
  void apply(const Entry& e) override { (void)kv.apply(e.index, e.data); }
  std::string snapshot() override { return kv.snapshot(); }
  Status restore(std::string_view data) override {
    auto r = engine::KvStore::restore(data);
    if (!r) return r.status();
    kv = std::move(r).value();
    return {};
  }
  Status check_snapshot(std::string_view data) override {
    return engine::KvStore::restore(data).status();
  }
  engine::KvStore kv;
};

TEST(WalSnapshot, ANodeRestartedAfterCompactionRestoresItsKvFromTheSnapshotAndTheTail) {
  TempDir dir;
  engine::RaftConfig config;
  config.id = 1;
  config.voters = {1};
  config.snapshot_entries = 20;
  config.snapshot_keep_entries = 5;
  engine::testing::ManualClock clock;
  engine::testing::CallbackNetwork net([](const engine::Message&) {});
  std::string expected;
  {
    auto wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
    ASSERT_TRUE(wal);
    KvMachine sm;
    auto host = engine::Host::open(config, *wal, net, sm, clock);
    ASSERT_TRUE(host.is_ok()) << host.status().to_string();
    for (std::uint64_t t = 1; !(*host)->raft().is_leader() && t < 10000; t++) {
      clock.set(t);
      ASSERT_TRUE((*host)->tick().is_ok());
    }
    ASSERT_TRUE((*host)->raft().is_leader());
    for (int i = 0; i < 107; i++) {
      const std::string key = "k" + std::to_string(i % 13);
      auto at = (*host)->propose(engine::encode_command(
          engine::KvCommand::put(key, "v" + std::to_string(i))));
      ASSERT_TRUE(at.is_ok()) << at.status().to_string();
    }
    EXPECT_GE((*host)->snapshots_taken(), 5u);
    EXPECT_GT((*host)->raft().log().first_index(), 50u) << "the log was compacted";
    expected = sm.kv.snapshot();
  }
  auto wal = open_ok(options_for(dir.path(), Wal::kMinSegmentBytes));
  ASSERT_TRUE(wal);
  EXPECT_GT(wal->recovery().first_index, 1u) << "old segments were removed";
  KvMachine sm;
  auto host = engine::Host::open(config, *wal, net, sm, clock);
  ASSERT_TRUE(host.is_ok()) << host.status().to_string();
  EXPECT_EQ((*host)->snapshots_restored(), 1u);
  ASSERT_TRUE((*host)->tick().is_ok());  // applies the tail after the snapshot
  EXPECT_EQ(sm.kv.snapshot(), expected);
  ASSERT_NE(sm.kv.get("k3"), nullptr);
  EXPECT_EQ(sm.kv.get("k3")->value, "v94");  // the last of i = 3, 16, ..., 94
}

}  // namespace
}  // namespace anya::transport

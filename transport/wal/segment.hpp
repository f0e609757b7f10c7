// The on-disk format of one WAL segment file, and the reader that validates it.
//
// A segment is named wal-<sequence as 16 hex digits>.seg and holds (integers little-endian):
//
//   header, 20 bytes:  magic "AWAL" | format version u32 (1) | sequence u64 |
//                      CRC-32C of the previous 16 bytes u32
//   records, back to back, each:
//                      payload length L u32 (1..kMaxRecordBytes) |
//                      CRC-32C of (the 4 length bytes, then the payload) u32 |
//                      payload: kind u8, then
//                        kind 1 (entry):  engine::encode_entry bytes
//                        kind 2 (commit): commit index u64
//                        kind 3 (snapshot): index u64, term u64 of a snapshot saved (the
//                                 snapshot itself is in its own file, snapshot.hpp): on replay,
//                                 entries that do not continue (index, term) are dropped
//
// Records are only ever appended. A later entry record at index i replaces every earlier one at
// index >= i (conflict truncation is replayed, never done in place), so a reader must visit
// segments in sequence order and records in file order.
//
// What the reader accepts: a crash may cut the last segment short anywhere, so in the last
// segment a bad tail is a torn tail (to be dropped) when the bad record is cut short by the end
// of the file, or ends exactly there (a torn sector), or when everything from it to the end of
// the file is zero bytes (a file extended by the file system but never written). Anything else
// is Errc::corrupt naming the file and byte offset: a record whose checksum holds but whose
// payload does not decode, a bad record followed by other bytes, any bad record in an earlier
// segment. A length over kMaxRecordBytes is corrupt wherever it is, and refused before reading.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/codec/codec.hpp"

namespace anya::transport {

inline constexpr std::string_view kSegmentMagic = "AWAL";
inline constexpr std::uint32_t kSegmentFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderBytes = 4 + 4 + 8 + 4;
inline constexpr std::size_t kRecordHeaderBytes = 4 + 4;  // length, checksum
// The largest record payload a writer can produce: a kind byte and one entry at the entry limit.
// A reader refuses a larger declared length before allocating anything for it.
inline constexpr std::size_t kMaxRecordBytes =
    1 + engine::kEntryFixedBytes + engine::Limits::max_entry_data_bytes;
inline constexpr std::size_t kCommitRecordPayloadBytes = 1 + 8;
inline constexpr std::size_t kSnapshotRecordPayloadBytes = 1 + 8 + 8;
static_assert(kSegmentMagic.size() == 4);
static_assert(kMaxRecordBytes < (std::uint64_t{1} << 32));  // fits the u32 length field

enum class RecordKind : std::uint8_t {
  entry = 1,
  commit = 2,
  snapshot = 3,
};

// "wal-0000000000000001.seg" and back; nullopt for any other name (other files are ignored).
std::string segment_file_name(std::uint64_t sequence);
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name);

std::string encode_segment_header(std::uint64_t sequence);
// Append one record to `out`. The entry must be encodable (engine::encode_entry asserts it).
void append_entry_record(const engine::Entry& entry, std::string& out);
void append_commit_record(engine::Index commit, std::string& out);
void append_snapshot_record(engine::Index index, engine::Term term, std::string& out);
std::size_t entry_record_bytes(const engine::Entry& entry);

// One valid record, as the reader hands it over.
struct Record {
  RecordKind kind = RecordKind::entry;
  std::uint64_t offset = 0;  // byte offset of the record's length field in the file
  engine::Entry entry;       // kind entry
  engine::Index commit = 0;  // kind commit; kind snapshot: its index
  engine::Term term = 0;     // kind snapshot
};
// Called for each valid record in order; an error stops the scan and is returned as is.
using RecordVisitor = std::function<Status(const Record&)>;

struct SegmentScan {
  std::uint64_t file_bytes = 0;
  // End of the header and valid records. Invariant: valid_bytes <= file_bytes, and
  // valid_bytes < file_bytes only when torn_tail is set.
  std::uint64_t valid_bytes = 0;
  // Why the bytes [valid_bytes, file_bytes) are a torn tail. valid_bytes == 0 when the header
  // itself is torn: the whole file is to go.
  std::optional<std::string> torn_tail;
};

// Reads and checks the segment at `path`, whose header must carry `expected_sequence`, calling
// `visit` on every valid record. Only when `last_segment` may it end in a torn tail. Reads only:
// dropping a torn tail is the caller's decision. Errors: corrupt (file, byte offset, what),
// unsupported (file, version), io_error.
Result<SegmentScan> scan_segment(const std::filesystem::path& path,
                                 std::uint64_t expected_sequence, bool last_segment,
                                 const RecordVisitor& visit);

}  // namespace anya::transport

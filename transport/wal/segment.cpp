#include "transport/wal/segment.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>

#include "engine/codec/crc32c.hpp"
#include "transport/wal/file_io.hpp"
#include "transport/wal/snapshot.hpp"
#include "engine/base/le_bytes.hpp"

namespace anya::transport {
namespace {

constexpr std::string_view kSegmentPrefix = "wal-";
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr std::size_t kSequenceHexDigits = 16;
// The zero-tail check reads the rest of a segment in chunks of this size.
constexpr std::size_t kZeroCheckChunkBytes = 64 * 1024;
// Records are read through a window of at least this size, so replaying a log of small entries
// costs one pread per window rather than two per record.
constexpr std::size_t kReadWindowBytes = 1 << 20;

std::uint32_t record_checksum(std::string_view length_bytes, std::string_view payload) {
  ANYA_ASSERT(length_bytes.size() == 4);
  return engine::crc32c_extend(engine::crc32c(length_bytes), payload);
}

// Wraps `payload` in a record (length, checksum) and appends it to `out`.
void append_record(std::string_view payload, std::string& out) {
  ANYA_ASSERT(!payload.empty());
  ANYA_ASSERT(payload.size() <= kMaxRecordBytes);
  std::string length_bytes;
  le::put_u32(length_bytes, static_cast<std::uint32_t>(payload.size()));
  out += length_bytes;
  le::put_u32(out, record_checksum(length_bytes, payload));
  out += payload;
}

// Reads one segment front to back. Keeps the file, its size and the torn-tail policy together
// so each check is one short function.
class SegmentReader {
 public:
  SegmentReader(const std::filesystem::path& path, Fd fd, std::uint64_t size, bool last)
      : path_(path), fd_(std::move(fd)), size_(size), last_(last) {}

  Result<SegmentScan> scan(std::uint64_t expected_sequence, const RecordVisitor& visit);

 private:
  std::string where(std::uint64_t offset) const {
    return path_.string() + ": byte offset " + std::to_string(offset) + ": ";
  }
  Status corrupt(std::uint64_t offset, const std::string& what) const {
    return {Errc::corrupt, where(offset) + what};
  }
  Status check_header(std::uint64_t expected_sequence, std::optional<std::string>& torn);
  // A bad record at `offset`: a torn tail if the policy allows it, else corrupt.
  Result<SegmentScan> bad_record(std::uint64_t offset, const std::string& what, bool at_end);
  Result<bool> rest_is_zero(std::uint64_t offset) const;
  Result<Record> decode(std::uint64_t offset, std::string_view payload) const;
  // `size` bytes at `offset`, all inside the file (asserted); valid until the next call.
  Result<std::string_view> read(std::uint64_t offset, std::size_t size);
  SegmentScan torn(std::uint64_t valid_bytes, std::string why) const {
    return SegmentScan{size_, valid_bytes, std::move(why)};
  }

  const std::filesystem::path& path_;
  Fd fd_;
  const std::uint64_t size_;
  const bool last_;
  std::string window_;  // the file's bytes [window_offset_, window_offset_ + window_.size())
  std::uint64_t window_offset_ = 0;
};

Result<std::string_view> SegmentReader::read(std::uint64_t offset, std::size_t size) {
  ANYA_ASSERT(offset + size <= size_);
  ANYA_ASSERT(size <= kRecordHeaderBytes + kMaxRecordBytes);
  if (offset < window_offset_ || offset + size > window_offset_ + window_.size()) {
    const auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>(std::max(size, kReadWindowBytes), size_ - offset));
    if (Status s = read_exact_at(fd_, path_, offset, n, window_); !s) return s;
    window_offset_ = offset;
  }
  return std::string_view(window_).substr(static_cast<std::size_t>(offset - window_offset_),
                                          size);
}

Status SegmentReader::check_header(std::uint64_t expected_sequence,
                                   std::optional<std::string>& torn) {
  std::string header;
  if (Status s = read_exact_at(fd_, path_, 0, kSegmentHeaderBytes, header); !s) return s;
  if (std::string_view(header).substr(0, 4) != kSegmentMagic) {
    return corrupt(0, "not a WAL segment (bad magic)");
  }
  const auto version = le::get(header, 4, 4);
  if (version != kSegmentFormatVersion) {
    return {Errc::unsupported, path_.string() + ": WAL segment format version " +
                                   std::to_string(version) + ", this build reads only " +
                                   std::to_string(kSegmentFormatVersion)};
  }
  const auto stored_crc = le::get(header, 16, 4);
  if (engine::crc32c(std::string_view(header).substr(0, 16)) != stored_crc) {
    // A header that fails its checksum and is all the file holds was being written in a crash.
    if (last_ && size_ == kSegmentHeaderBytes) {
      torn = "segment header checksum mismatch at the end of the file";
      return {};
    }
    return corrupt(16, "segment header checksum mismatch");
  }
  const auto sequence = le::get(header, 8, 8);
  if (sequence != expected_sequence) {
    return corrupt(8, "header sequence " + std::to_string(sequence) +
                          " does not match the file name's " +
                          std::to_string(expected_sequence));
  }
  return {};
}

Result<bool> SegmentReader::rest_is_zero(std::uint64_t offset) const {
  std::string chunk;
  while (offset < size_) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kZeroCheckChunkBytes,
                                                                    size_ - offset));
    if (Status s = read_exact_at(fd_, path_, offset, n, chunk); !s) return s;
    if (std::any_of(chunk.begin(), chunk.end(), [](char c) { return c != 0; })) return false;
    offset += n;
  }
  return true;
}

Result<SegmentScan> SegmentReader::bad_record(std::uint64_t offset, const std::string& what,
                                              bool at_end) {
  if (!last_) return corrupt(offset, what + " (in a segment that is not the last)");
  if (at_end) return torn(offset, what + " at the end of the last segment");
  auto zero = rest_is_zero(offset);
  if (!zero) return zero.status();
  if (*zero) return torn(offset, what + ", followed only by zero bytes");
  return corrupt(offset, what + ", followed by " + std::to_string(size_ - offset) +
                             " more bytes that are not zero");
}

Result<Record> SegmentReader::decode(std::uint64_t offset, std::string_view payload) const {
  ANYA_ASSERT(!payload.empty());
  Record record;
  record.offset = offset;
  const auto kind = static_cast<std::uint8_t>(payload[0]);
  if (kind == static_cast<std::uint8_t>(RecordKind::entry)) {
    auto entry = engine::decode_entry(payload.substr(1));
    if (!entry) {
      return corrupt(offset, "entry record with a valid checksum does not decode: " +
                                 entry.status().message());
    }
    record.kind = RecordKind::entry;
    record.entry = std::move(entry).value();
    return record;
  }
  if (kind == static_cast<std::uint8_t>(RecordKind::commit)) {
    if (payload.size() != kCommitRecordPayloadBytes) {
      return corrupt(offset, "commit record of " + std::to_string(payload.size()) +
                                 " bytes, expected " +
                                 std::to_string(kCommitRecordPayloadBytes));
    }
    record.kind = RecordKind::commit;
    record.commit = le::get(payload, 1, 8);
    return record;
  }
  if (kind == static_cast<std::uint8_t>(RecordKind::snapshot)) {
    if (payload.size() != kSnapshotRecordPayloadBytes) {
      return corrupt(offset, "snapshot record of " + std::to_string(payload.size()) +
                                 " bytes, expected " +
                                 std::to_string(kSnapshotRecordPayloadBytes));
    }
    record.kind = RecordKind::snapshot;
    record.commit = le::get(payload, 1, 8);
    record.term = le::get(payload, 9, 8);
    if (std::string problem = snapshot_meta_problem(SnapshotMeta{record.commit, record.term});
        !problem.empty()) {
      return corrupt(offset, "snapshot record with a valid checksum names " + problem);
    }
    return record;
  }
  return corrupt(offset, "unknown record kind " + std::to_string(kind));
}

Result<SegmentScan> SegmentReader::scan(std::uint64_t expected_sequence,
                                        const RecordVisitor& visit) {
  if (size_ < kSegmentHeaderBytes) {
    if (!last_) {
      return corrupt(0, "segment header cut short (" + std::to_string(size_) +
                            " bytes) in a segment that is not the last");
    }
    return torn(0, "segment header cut short (" + std::to_string(size_) + " of " +
                       std::to_string(kSegmentHeaderBytes) + " bytes)");
  }
  std::optional<std::string> torn_header;
  if (Status s = check_header(expected_sequence, torn_header); !s) return s;
  if (torn_header) return torn(0, *torn_header);

  std::uint64_t offset = kSegmentHeaderBytes;
  while (offset < size_) {
    const std::uint64_t remaining = size_ - offset;
    if (remaining < kRecordHeaderBytes) return bad_record(offset, "record header cut short", true);
    auto head_bytes = read(offset, kRecordHeaderBytes);
    if (!head_bytes) return head_bytes.status();
    const std::string head(*head_bytes);  // the next read may move the window
    const std::uint64_t length = le::get(head, 0, 4);
    if (length > kMaxRecordBytes) {
      return corrupt(offset, "record length " + std::to_string(length) + " over the maximum of " +
                                 std::to_string(kMaxRecordBytes));
    }
    if (length > remaining - kRecordHeaderBytes) {
      return bad_record(offset, "record of " + std::to_string(length) + " bytes cut short", true);
    }
    if (length == 0) return bad_record(offset, "empty record", false);
    auto payload_bytes = read(offset + kRecordHeaderBytes, static_cast<std::size_t>(length));
    if (!payload_bytes) return payload_bytes.status();
    const std::string_view payload = *payload_bytes;
    const std::uint64_t end = offset + kRecordHeaderBytes + length;
    if (record_checksum(std::string_view(head).substr(0, 4), payload) != le::get(head, 4, 4)) {
      return bad_record(offset, "record checksum mismatch", end == size_);
    }
    auto record = decode(offset, payload);
    if (!record) return record.status();
    if (Status s = visit(*record); !s) return s;
    offset = end;
  }
  ANYA_ASSERT(offset == size_);
  return SegmentScan{size_, size_, std::nullopt};
}

}  // namespace

std::string segment_file_name(std::uint64_t sequence) {
  char digits[kSequenceHexDigits + 1];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(sequence));
  return std::string(kSegmentPrefix) + digits + std::string(kSegmentSuffix);
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + kSequenceHexDigits + kSegmentSuffix.size() ||
      name.substr(0, kSegmentPrefix.size()) != kSegmentPrefix ||
      name.substr(name.size() - kSegmentSuffix.size()) != kSegmentSuffix) {
    return std::nullopt;
  }
  std::uint64_t sequence = 0;
  for (char c : name.substr(kSegmentPrefix.size(), kSequenceHexDigits)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return std::nullopt;
    sequence = (sequence << 4) | static_cast<std::uint64_t>(digit);
  }
  ANYA_ASSERT(segment_file_name(sequence) == name);
  return sequence;
}

std::string encode_segment_header(std::uint64_t sequence) {
  std::string header(kSegmentMagic);
  le::put_u32(header, kSegmentFormatVersion);
  le::put_u64(header, sequence);
  le::put_u32(header, engine::crc32c(header));
  ANYA_ASSERT(header.size() == kSegmentHeaderBytes);
  return header;
}

void append_entry_record(const engine::Entry& entry, std::string& out) {
  std::string payload(1, static_cast<char>(RecordKind::entry));
  engine::encode_entry(entry, payload);
  append_record(payload, out);
}

void append_commit_record(engine::Index commit, std::string& out) {
  std::string payload(1, static_cast<char>(RecordKind::commit));
  le::put_u64(payload, commit);
  ANYA_ASSERT(payload.size() == kCommitRecordPayloadBytes);
  append_record(payload, out);
}

void append_snapshot_record(engine::Index index, engine::Term term, std::string& out) {
  std::string payload(1, static_cast<char>(RecordKind::snapshot));
  le::put_u64(payload, index);
  le::put_u64(payload, term);
  ANYA_ASSERT(payload.size() == kSnapshotRecordPayloadBytes);
  append_record(payload, out);
}

std::size_t entry_record_bytes(const engine::Entry& entry) {
  return kRecordHeaderBytes + 1 + engine::encoded_entry_size(entry);
}

Result<SegmentScan> scan_segment(const std::filesystem::path& path,
                                 std::uint64_t expected_sequence, bool last_segment,
                                 const RecordVisitor& visit) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd) return fd.status();
  auto size = file_size(*fd, path);
  if (!size) return size.status();
  SegmentReader reader(path, std::move(fd).value(), *size, last_segment);
  return reader.scan(expected_sequence, visit);
}

}  // namespace anya::transport

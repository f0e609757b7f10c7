#include "engine/codec/codec.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "engine/codec/crc32c.hpp"
#include "engine/base/le_bytes.hpp"

namespace anya::engine {
namespace {

constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
static_assert(kMaxFramePayloadBytes <= kMaxU32, "payload length must fit its u32 field");
// Entry data and the message payload share this limit and the u32 length field.
static_assert(Limits::max_entry_data_bytes <= kMaxU32, "data length must fit its u32 field");
static_assert(Limits::max_entries_per_message <= kMaxU32, "entry count must fit its u32 field");
static_assert(kHardStateBytes <= kMaxFramePayloadBytes);
// The smallest message with the most entries must fit a frame, or the count limit is a lie.
static_assert(kMessageFixedBytes + Limits::max_entries_per_message * kEntryFixedBytes <=
              kMaxFramePayloadBytes);
// Likewise a message with no entries and the largest payload must fit, or that limit is a lie too.
static_assert(kMessageFixedBytes + Limits::max_entry_data_bytes <= kMaxFramePayloadBytes);
static_assert(kMessageFixedBytes + Limits::max_snapshot_payload_bytes <= kMaxFramePayloadBytes);
static_assert(Limits::max_snapshot_payload_bytes <= kMaxU32);

// A snapshot message carries the whole snapshot in its payload; every other type at most an
// entry's worth (a config_ack reason).
std::size_t payload_limit(MessageType type) {
  return type == MessageType::snapshot ? Limits::max_snapshot_payload_bytes
                                       : Limits::max_entry_data_bytes;
}

constexpr std::uint8_t kFlagReject = 1u << 0;
constexpr std::uint8_t kFlagTransfer = 1u << 1;
constexpr std::uint8_t kFlagUnhealthy = 1u << 2;
constexpr std::uint8_t kFlagChainView = 1u << 3;
constexpr std::uint8_t kFlagChainQuorum = 1u << 4;
constexpr std::uint8_t kKnownFlags =
    kFlagReject | kFlagTransfer | kFlagUnhealthy | kFlagChainView | kFlagChainQuorum;
// The optional chain fields must fit a frame next to the largest payload, like the rest.
static_assert(kMessageFixedBytes + kChainViewBytes + kChainQuorumBytes +
                  Limits::max_snapshot_payload_bytes <=
              kMaxFramePayloadBytes);

constexpr std::size_t kMagicOffset = 0;
constexpr std::size_t kVersionOffset = 4;
constexpr std::size_t kKindOffset = 5;
constexpr std::size_t kLengthOffset = 6;
static_assert(kLengthOffset + 4 == kFrameHeaderBytes);

// ---------------------------------------------------------------------------------------------
// Writing: explicit little-endian bytes, independent of the host's byte order.

void put_u8(std::string& out, std::uint8_t value) { out.push_back(static_cast<char>(value)); }

void put_le(std::string& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
  }
}

void put_u32(std::string& out, std::size_t value) {
  ANYA_ASSERT(value <= kMaxU32);
  put_le(out, value, 4);
}

void put_u64(std::string& out, std::uint64_t value) { put_le(out, value, 8); }

constexpr char kHexDigits[] = "0123456789abcdef";

std::string hex(std::uint64_t value) {
  std::string digits;
  do {
    digits.insert(digits.begin(), kHexDigits[value & 0xFu]);
    value >>= 4;
  } while (value != 0);
  return "0x" + digits;
}

// Bytes in their order on the wire, e.g. "414e5942" for "ANYB".
std::string hex_bytes(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<std::uint8_t>(c);
    out.push_back(kHexDigits[byte >> 4]);
    out.push_back(kHexDigits[byte & 0xFu]);
  }
  return out;
}

Status malformed_at(const std::string& what, std::size_t offset) {
  return Status(Errc::malformed, what + " at byte offset " + std::to_string(offset));
}

const char* frame_kind_name(std::uint8_t kind) {
  switch (kind) {
    case static_cast<std::uint8_t>(FrameKind::message): return "message";
    case static_cast<std::uint8_t>(FrameKind::hard_state): return "hard state";
    default: return "unknown";
  }
}

// ---------------------------------------------------------------------------------------------
// Reading: a cursor that never reads past its view. The first error sticks; later reads return
// zeros and do not move, so a decoder can read a group of fields and check once.

class Reader {
 public:
  // `base_offset` is where `bytes` starts in the frame, so errors name frame offsets.
  Reader(std::string_view bytes, std::size_t base_offset) : bytes_(bytes), base_(base_offset) {}

  std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(take_le(1, field)); }
  std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(take_le(4, field)); }
  std::uint64_t u64(const char* field) { return take_le(8, field); }

  std::string_view bytes(std::size_t count, const char* field) {
    if (!need(count, field)) return {};
    const std::string_view out = bytes_.substr(pos_, count);
    pos_ += count;
    return out;
  }

  // Records an error about the field that starts at frame offset `offset`; the first one wins.
  void fail_at(const std::string& what, std::size_t offset) {
    if (!status_.is_ok()) return;
    const std::string prefix =
        entry_ == kNoEntry ? std::string() : "entry " + std::to_string(entry_) + " ";
    status_ = malformed_at(prefix + what, offset);
    ANYA_ASSERT(!status_.is_ok());
  }

  void expect_end(const char* region) {
    if (ok() && remaining() != 0) {
      fail_at(std::to_string(remaining()) + " trailing bytes after the " + region, offset());
    }
  }

  // Names the entry being read in error messages.
  void set_entry(std::size_t entry) { entry_ = entry; }
  void clear_entry() { entry_ = kNoEntry; }

  bool ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }
  std::size_t offset() const { return base_ + pos_; }
  std::size_t remaining() const {
    ANYA_ASSERT(pos_ <= bytes_.size());
    return bytes_.size() - pos_;
  }

 private:
  static constexpr std::size_t kNoEntry = std::numeric_limits<std::size_t>::max();

  bool need(std::size_t count, const char* field) {
    if (!ok()) return false;
    if (count > remaining()) {
      fail_at(std::string(field) + " truncated: needs " + std::to_string(count) + " bytes, " +
                  std::to_string(remaining()) + " remain",
              offset());
      return false;
    }
    return true;
  }

  std::uint64_t take_le(std::size_t width, const char* field) {
    ANYA_ASSERT(width >= 1 && width <= 8);
    if (!need(width, field)) return 0;
    const std::uint64_t value = le::get(bytes_, pos_, width);
    pos_ += width;
    return value;
  }

  std::string_view bytes_;
  std::size_t base_;
  std::size_t pos_ = 0;
  std::size_t entry_ = kNoEntry;
  Status status_;
};

// ---------------------------------------------------------------------------------------------
// Frames.

struct FrameHeader {
  FrameKind kind = FrameKind::message;
  std::size_t payload_length = 0;
};

Result<FrameHeader> read_frame_header(std::string_view frame) {
  ANYA_ASSERT(frame.size() >= kFrameHeaderBytes);
  Reader r(frame.substr(0, kFrameHeaderBytes), 0);
  const std::string_view magic = r.bytes(kFrameMagic.size(), "magic");
  const std::uint8_t version = r.u8("version");
  const std::uint8_t kind = r.u8("frame kind");
  const std::uint32_t length = r.u32("payload length");
  ANYA_ASSERT(r.ok());  // the header is fixed-size and we hold all of it
  if (magic != kFrameMagic) {
    return malformed_at("bad magic " + hex_bytes(magic) + ", expected " + hex_bytes(kFrameMagic) +
                            " (\"ANYA\")",
                        kMagicOffset);
  }
  if (version != kFormatVersion) {
    return Status(Errc::unsupported, "unsupported format version " + std::to_string(version) +
                                         " (this build speaks " +
                                         std::to_string(kFormatVersion) + ") at byte offset " +
                                         std::to_string(kVersionOffset));
  }
  if (kind == 0 || kind > kMaxFrameKind) {
    return malformed_at("unknown frame kind " + std::to_string(kind), kKindOffset);
  }
  if (length > kMaxFramePayloadBytes) {
    return malformed_at("payload length " + std::to_string(length) + " exceeds limit " +
                            std::to_string(kMaxFramePayloadBytes),
                        kLengthOffset);
  }
  return FrameHeader{static_cast<FrameKind>(kind), length};
}

// Checks everything about a frame except its payload and returns the payload.
Result<std::string_view> open_frame(std::string_view frame, FrameKind expected) {
  if (frame.size() < kFrameHeaderBytes) {
    return malformed_at("frame truncated: header needs " + std::to_string(kFrameHeaderBytes) +
                            " bytes, have " + std::to_string(frame.size()),
                        frame.size());
  }
  const Result<FrameHeader> header = read_frame_header(frame);
  if (!header) return header.status();
  if (header->kind != expected) {
    const auto got = static_cast<std::uint8_t>(header->kind);
    const auto want = static_cast<std::uint8_t>(expected);
    return malformed_at("wrong frame kind " + std::to_string(got) + " (" + frame_kind_name(got) +
                            "), expected " + std::to_string(want) + " (" +
                            frame_kind_name(want) + ")",
                        kKindOffset);
  }
  const std::size_t checksum_offset = kFrameHeaderBytes + header->payload_length;
  const std::size_t total = checksum_offset + kFrameChecksumBytes;
  if (frame.size() < total) {
    return malformed_at("frame truncated: header declares " + std::to_string(total) +
                            " bytes, have " + std::to_string(frame.size()),
                        frame.size());
  }
  if (frame.size() > total) {
    return malformed_at(std::to_string(frame.size() - total) + " trailing bytes after the checksum",
                        total);
  }
  const std::uint32_t stored = Reader(frame.substr(checksum_offset), 0).u32("checksum");
  const std::uint32_t computed = crc32c(frame.substr(0, checksum_offset));
  if (stored != computed) {
    return malformed_at("checksum mismatch: stored " + hex(stored) + ", computed " + hex(computed),
                        checksum_offset);
  }
  return frame.substr(kFrameHeaderBytes, header->payload_length);
}

std::string begin_frame(FrameKind kind, std::size_t payload_length) {
  ANYA_ASSERT(payload_length <= kMaxFramePayloadBytes);
  std::string out;
  out.reserve(kFrameHeaderBytes + payload_length + kFrameChecksumBytes);
  out.append(kFrameMagic);
  put_u8(out, kFormatVersion);
  put_u8(out, static_cast<std::uint8_t>(kind));
  put_u32(out, payload_length);
  ANYA_ASSERT(out.size() == kFrameHeaderBytes);
  return out;
}

void end_frame(std::string& out, std::size_t payload_length) {
  // The size computed up front and the bytes written must agree, or the length field lies.
  ANYA_ASSERT(out.size() == kFrameHeaderBytes + payload_length);
  put_u32(out, crc32c(out));
}

// ---------------------------------------------------------------------------------------------
// Messages and entries.

std::size_t message_payload_size(const Message& message) {
  std::size_t size = kMessageFixedBytes + message.payload.size();
  if (message.chain_view) size += kChainViewBytes;
  if (message.chain_quorum_height) size += kChainQuorumBytes;
  for (const Entry& entry : message.entries) size += encoded_entry_size(entry);
  return size;
}

// Reads a u32 length (named `length_field` in errors), then that many bytes (`field`). The length
// is checked against `limit` and against the bytes present before anything is copied, so a 4-byte
// lie cannot make the node allocate.
std::string read_sized_bytes(Reader& r, const char* length_field, const char* field,
                             std::size_t limit) {
  ANYA_ASSERT(limit <= kMaxU32);
  const std::size_t length_offset = r.offset();
  const std::uint32_t length = r.u32(length_field);
  if (r.ok() && length > limit) {
    r.fail_at(std::string(length_field) + " " + std::to_string(length) + " exceeds limit " +
                  std::to_string(limit),
              length_offset);
  } else if (r.ok() && length > r.remaining()) {
    r.fail_at(std::string(length_field) + " " + std::to_string(length) + " exceeds the " +
                  std::to_string(r.remaining()) + " bytes remaining",
              length_offset);
  }
  // After a failure bytes() returns nothing; otherwise the length passed both checks above.
  const std::string_view bytes = r.bytes(length, field);
  ANYA_ASSERT(bytes.size() <= limit);
  return std::string(bytes);
}

Entry read_entry(Reader& r) {
  Entry entry;
  entry.term = r.u64("term");
  entry.index = r.u64("index");
  const std::size_t type_offset = r.offset();
  const std::uint8_t type = r.u8("entry type");
  if (r.ok() && type > kMaxEntryType) {
    r.fail_at("unknown entry type " + std::to_string(type), type_offset);
  }
  entry.type = static_cast<EntryType>(type);
  entry.data = read_sized_bytes(r, "data length", "data", Limits::max_entry_data_bytes);
  return entry;
}

void read_message_fields(Reader& r, Message& message) {
  const std::size_t type_offset = r.offset();
  const std::uint8_t type = r.u8("message type");
  if (r.ok() && (type < kMinMessageType || type > kMaxMessageType)) {
    r.fail_at("unknown message type " + std::to_string(type), type_offset);
  }
  message.type = static_cast<MessageType>(type);
  const std::size_t flags_offset = r.offset();
  const std::uint8_t flags = r.u8("flags");
  const auto unknown_flags = static_cast<std::uint8_t>(flags & ~kKnownFlags);
  if (r.ok() && unknown_flags != 0) {
    r.fail_at("unknown flag bits " + hex(unknown_flags), flags_offset);
  }
  message.reject = (flags & kFlagReject) != 0;
  message.transfer = (flags & kFlagTransfer) != 0;
  message.unhealthy = (flags & kFlagUnhealthy) != 0;
  message.cluster_id = r.u64("cluster_id");
  message.from = r.u64("from");
  message.to = r.u64("to");
  message.term = r.u64("term");
  message.log_term = r.u64("log_term");
  message.index = r.u64("index");
  message.commit = r.u64("commit");
  message.reject_hint = r.u64("reject_hint");
  message.reject_hint_term = r.u64("reject_hint_term");
  message.context = r.u64("context");
  // Present exactly when their flag is set, so every byte still has one meaning.
  if ((flags & kFlagChainView) != 0) {
    ChainView view;
    view.height = r.u64("chain height");
    const std::string_view tip = r.bytes(view.tip.size(), "chain tip");
    std::copy(tip.begin(), tip.end(), view.tip.begin());
    if (r.ok()) message.chain_view = view;
  }
  if ((flags & kFlagChainQuorum) != 0) {
    const std::uint64_t height = r.u64("chain quorum height");
    if (r.ok()) message.chain_quorum_height = height;
  }
}

void read_entries(Reader& r, std::vector<Entry>& entries) {
  const std::size_t count_offset = r.offset();
  const std::uint32_t count = r.u32("entry count");
  if (!r.ok()) return;
  if (count > Limits::max_entries_per_message) {
    r.fail_at("entry count " + std::to_string(count) + " exceeds limit " +
                  std::to_string(Limits::max_entries_per_message),
              count_offset);
    return;
  }
  // Each entry takes at least kEntryFixedBytes, so a count the payload cannot hold is refused
  // before the reserve below turns a 4-byte lie into a large allocation.
  if (count > r.remaining() / kEntryFixedBytes) {
    r.fail_at("entry count " + std::to_string(count) + " needs at least " +
                  std::to_string(std::size_t{count} * kEntryFixedBytes) + " bytes, " +
                  std::to_string(r.remaining()) + " remain",
              count_offset);
    return;
  }
  entries.reserve(count);
  for (std::size_t i = 0; i < count && r.ok(); ++i) {
    r.set_entry(i);
    entries.push_back(read_entry(r));
  }
  r.clear_entry();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status check_message_limits(const Message& message) {
  const auto type = static_cast<std::uint8_t>(message.type);
  if (type < kMinMessageType || type > kMaxMessageType) {
    return Status(Errc::invalid_argument, "unknown message type " + std::to_string(type));
  }
  if (message.entries.size() > Limits::max_entries_per_message) {
    return Status(Errc::invalid_argument,
                  std::to_string(message.entries.size()) + " entries exceed limit " +
                      std::to_string(Limits::max_entries_per_message));
  }
  for (std::size_t i = 0; i < message.entries.size(); ++i) {
    const Entry& entry = message.entries[i];
    if (static_cast<std::uint8_t>(entry.type) > kMaxEntryType) {
      return Status(Errc::invalid_argument,
                    "entry " + std::to_string(i) + " has unknown type " +
                        std::to_string(static_cast<std::uint8_t>(entry.type)));
    }
    if (entry.data.size() > Limits::max_entry_data_bytes) {
      return Status(Errc::invalid_argument,
                    "entry " + std::to_string(i) + " data length " +
                        std::to_string(entry.data.size()) + " exceeds limit " +
                        std::to_string(Limits::max_entry_data_bytes));
    }
  }
  if (message.payload.size() > payload_limit(message.type)) {
    return Status(Errc::invalid_argument,
                  "message payload length " + std::to_string(message.payload.size()) +
                      " exceeds limit " + std::to_string(payload_limit(message.type)) +
                      " for a " + message_type_name(message.type) + " message");
  }
  const std::size_t size = encoded_message_size(message);
  if (size > Limits::max_frame_bytes) {
    return Status(Errc::invalid_argument, "encoded message of " + std::to_string(size) +
                                              " bytes exceeds frame limit " +
                                              std::to_string(Limits::max_frame_bytes));
  }
  return Status::ok();
}

std::size_t encoded_message_size(const Message& message) {
  return kFrameHeaderBytes + message_payload_size(message) + kFrameChecksumBytes;
}

std::string encode_message(const Message& message) {
  ANYA_ASSERT(check_message_limits(message).is_ok());
  const std::size_t payload_length = message_payload_size(message);
  std::string out = begin_frame(FrameKind::message, payload_length);
  put_u8(out, static_cast<std::uint8_t>(message.type));
  const auto flags = static_cast<std::uint8_t>(
      (message.reject ? kFlagReject : 0u) | (message.transfer ? kFlagTransfer : 0u) |
      (message.unhealthy ? kFlagUnhealthy : 0u) | (message.chain_view ? kFlagChainView : 0u) |
      (message.chain_quorum_height ? kFlagChainQuorum : 0u));
  ANYA_ASSERT((flags & ~kKnownFlags) == 0);
  put_u8(out, flags);
  put_u64(out, message.cluster_id);
  put_u64(out, message.from);
  put_u64(out, message.to);
  put_u64(out, message.term);
  put_u64(out, message.log_term);
  put_u64(out, message.index);
  put_u64(out, message.commit);
  put_u64(out, message.reject_hint);
  put_u64(out, message.reject_hint_term);
  put_u64(out, message.context);
  if (message.chain_view) {
    put_u64(out, message.chain_view->height);
    out.append(reinterpret_cast<const char*>(message.chain_view->tip.data()),
               message.chain_view->tip.size());
  }
  if (message.chain_quorum_height) put_u64(out, *message.chain_quorum_height);
  put_u32(out, message.entries.size());
  for (const Entry& entry : message.entries) encode_entry(entry, out);
  put_u32(out, message.payload.size());
  out.append(message.payload);
  end_frame(out, payload_length);
  return out;
}

Result<Message> decode_message(std::string_view frame) {
  const Result<std::string_view> payload = open_frame(frame, FrameKind::message);
  if (!payload) return payload.status();
  Reader r(*payload, kFrameHeaderBytes);
  Message message;
  read_message_fields(r, message);
  read_entries(r, message.entries);
  message.payload = read_sized_bytes(r, "message payload length", "message payload",
                                     payload_limit(message.type));
  r.expect_end("message payload");
  if (!r.ok()) return r.status();
  // Decode accepts exactly what encode produces; both sides of the boundary hold the limits.
  ANYA_ASSERT(check_message_limits(message).is_ok());
  ANYA_ASSERT(encoded_message_size(message) == frame.size());
  return message;
}

std::string encode_hard_state(const HardState& state) {
  std::string out = begin_frame(FrameKind::hard_state, kHardStateBytes);
  put_u64(out, state.term);
  put_u64(out, state.vote);
  put_u64(out, state.commit);
  end_frame(out, kHardStateBytes);
  return out;
}

Result<HardState> decode_hard_state(std::string_view frame) {
  const Result<std::string_view> payload = open_frame(frame, FrameKind::hard_state);
  if (!payload) return payload.status();
  Reader r(*payload, kFrameHeaderBytes);
  HardState state;
  state.term = r.u64("term");
  state.vote = r.u64("vote");
  state.commit = r.u64("commit");
  r.expect_end("payload");
  if (!r.ok()) return r.status();
  ANYA_ASSERT(payload->size() == kHardStateBytes);
  return state;
}

Result<std::size_t> frame_length(std::string_view prefix) {
  ANYA_ASSERT(prefix.size() >= kFrameHeaderBytes);
  const Result<FrameHeader> header = read_frame_header(prefix);
  if (!header) return header.status();
  const std::size_t total = kFrameHeaderBytes + header->payload_length + kFrameChecksumBytes;
  ANYA_ASSERT(total <= Limits::max_frame_bytes);
  return total;
}

std::size_t encoded_entry_size(const Entry& entry) {
  return kEntryFixedBytes + entry.data.size();
}

void encode_entry(const Entry& entry, std::string& out) {
  ANYA_ASSERT(static_cast<std::uint8_t>(entry.type) <= kMaxEntryType);
  ANYA_ASSERT(entry.data.size() <= Limits::max_entry_data_bytes);
  const std::size_t start = out.size();
  put_u64(out, entry.term);
  put_u64(out, entry.index);
  put_u8(out, static_cast<std::uint8_t>(entry.type));
  put_u32(out, entry.data.size());
  out.append(entry.data);
  ANYA_ASSERT(out.size() - start == encoded_entry_size(entry));
}

Result<Entry> decode_entry(std::string_view bytes) {
  Reader r(bytes, 0);
  Entry entry = read_entry(r);
  r.expect_end("entry");
  if (!r.ok()) return r.status();
  ANYA_ASSERT(encoded_entry_size(entry) == bytes.size());
  return entry;
}

}  // namespace anya::engine

// Unit tests of the wire codec: round trips, one test per rejection rule (each checking that the
// error names the problem and its offset), CRC-32C vectors, and truncation at every length.
#include "engine/codec/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/codec/crc32c.hpp"

namespace anya::engine {
namespace {

// Offsets into a message frame, spelled out here independently of the implementation so a
// layout change shows up as a test failure.
constexpr std::size_t kTypeOffset = 10;
constexpr std::size_t kFlagsOffset = 11;
constexpr std::size_t kClusterIdOffset = 12;
constexpr std::size_t kToOffset = 12 + 2 * 8;          // 28
constexpr std::size_t kCountOffset = 10 + 2 + 10 * 8;  // 92
constexpr std::size_t kFirstEntryOffset = kCountOffset + 4;
// With no entries the message payload's length follows the count.
constexpr std::size_t kBarePayloadLengthOffset = kCountOffset + 4;  // 96
constexpr std::size_t kEntryTypeOffset = 8 + 8;        // within an entry
constexpr std::size_t kEntryLengthOffset = 8 + 8 + 1;  // within an entry

Message sample_message(MessageType type) {
  Message m;
  m.type = type;
  m.cluster_id = 0x1122334455667788ull;
  m.from = 1;
  m.to = 0x0102030405060708ull;
  m.term = 7;
  m.log_term = 6;
  m.index = 41;
  m.commit = 40;
  m.reject = type == MessageType::append_response;
  m.transfer = type == MessageType::vote;
  m.unhealthy = type == MessageType::heartbeat_response || type == MessageType::config_ack;
  m.reject_hint = 39;
  m.reject_hint_term = 5;
  m.context = ~0ull;
  if (type == MessageType::append) {
    m.entries = {
        Entry{6, 42, EntryType::normal, "set x=1"},
        Entry{7, 43, EntryType::noop, ""},
        Entry{7, 44, EntryType::config_change, std::string("\0\xff\x01", 3)},
        Entry{7, 45, EntryType::config_txn, "prepare v12"},
    };
  }
  if (type == MessageType::config_ack) {
    m.reject = true;
    m.payload = std::string("port 5432 in use\0\xff", 18);
  }
  if (type == MessageType::snapshot) m.payload = std::string("membership\0state\xff", 17);
  return m;
}

std::vector<MessageType> all_message_types() {
  std::vector<MessageType> types;
  for (int t = kMinMessageType; t <= kMaxMessageType; ++t) {
    types.push_back(static_cast<MessageType>(t));
  }
  return types;
}

// Recomputes the trailing checksum, so a test can reach the payload checks behind it.
void reseal(std::string& frame) {
  ASSERT_GE(frame.size(), kFrameHeaderBytes + kFrameChecksumBytes);
  const std::size_t at = frame.size() - kFrameChecksumBytes;
  const std::uint32_t crc = crc32c(std::string_view(frame).substr(0, at));
  for (std::size_t i = 0; i < 4; ++i) frame[at + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

void set_u32(std::string& frame, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    frame[at + i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  }
}

// Sets the header's payload length to match the frame's current size.
void fix_payload_length(std::string& frame) {
  set_u32(frame, 6,
          static_cast<std::uint32_t>(frame.size() - kFrameHeaderBytes - kFrameChecksumBytes));
}

// Expects `result` to fail with `code` and a message containing every one of `parts`.
template <typename T>
void expect_error(const Result<T>& result, Errc code, const std::vector<std::string>& parts) {
  ASSERT_FALSE(result.is_ok());
  EXPECT_EQ(result.status().code(), code) << result.status().to_string();
  for (const std::string& part : parts) {
    EXPECT_NE(result.status().message().find(part), std::string::npos)
        << "message \"" << result.status().message() << "\" lacks \"" << part << "\"";
  }
}

// --- CRC-32C ---

TEST(Crc32c, MatchesTheStandardCheckValue) { EXPECT_EQ(crc32c("123456789"), 0xE3069283u); }

TEST(Crc32c, MatchesRfc3720Vectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, ExtendEqualsChecksumOfConcatenation) {
  const std::string data = "the quick brown fox jumps over the lazy dog";
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::string_view view(data);
    EXPECT_EQ(crc32c_extend(crc32c(view.substr(0, split)), view.substr(split)), crc32c(data));
  }
}

// --- round trips ---

TEST(CodecRoundTrip, EveryMessageType) {
  for (const MessageType type : all_message_types()) {
    const Message m = sample_message(type);
    const std::string frame = encode_message(m);
    EXPECT_EQ(frame.size(), encoded_message_size(m));
    const Result<Message> decoded = decode_message(frame);
    ASSERT_TRUE(decoded.is_ok()) << message_type_name(type) << ": "
                                 << decoded.status().to_string();
    EXPECT_EQ(*decoded, m) << message_type_name(type);
  }
}

TEST(CodecRoundTrip, EveryFlagCombination) {
  for (int flags = 0; flags < 8; ++flags) {
    Message m = sample_message(MessageType::heartbeat_response);
    m.reject = (flags & 1) != 0;
    m.transfer = (flags & 2) != 0;
    m.unhealthy = (flags & 4) != 0;
    const std::string frame = encode_message(m);
    EXPECT_EQ(frame[kFlagsOffset], static_cast<char>(flags));
    const Result<Message> decoded = decode_message(frame);
    ASSERT_TRUE(decoded.is_ok()) << flags << ": " << decoded.status().to_string();
    EXPECT_EQ(*decoded, m) << flags;
  }
}

// ---- the optional chain fields ----

ChainView sample_chain_view() {
  ChainView v;
  v.height = 0x00000000000c3500ull;  // 800'000
  for (std::size_t i = 0; i < v.tip.size(); ++i) v.tip[i] = static_cast<std::uint8_t>(0xA0 + i);
  return v;
}

TEST(CodecChain, ViewAndQuorumHeightRoundTripInEveryCombination) {
  for (const MessageType type : all_message_types()) {
    for (int present = 0; present < 4; ++present) {
      Message m = sample_message(type);
      if ((present & 1) != 0) m.chain_view = sample_chain_view();
      if ((present & 2) != 0) m.chain_quorum_height = 799'998;
      const std::string frame = encode_message(m);
      EXPECT_EQ(frame.size(), encoded_message_size(m));
      const Result<Message> decoded = decode_message(frame);
      ASSERT_TRUE(decoded.is_ok()) << message_type_name(type) << " " << present << ": "
                                   << decoded.status().to_string();
      EXPECT_EQ(*decoded, m) << message_type_name(type) << " " << present;
    }
  }
}

TEST(CodecChain, FieldsAreFlaggedAndSitAfterTheContextAsDocumented) {
  Message m = sample_message(MessageType::heartbeat_response);  // unhealthy: flag bit 2
  m.chain_view = sample_chain_view();
  m.chain_quorum_height = 0x1122;
  const std::string frame = encode_message(m);
  EXPECT_EQ(frame[kFlagsOffset], static_cast<char>(0x04 | 0x08 | 0x10));
  EXPECT_EQ(frame.substr(kCountOffset, 8), std::string("\x00\x35\x0c\x00\x00\x00\x00\x00", 8));
  EXPECT_EQ(static_cast<std::uint8_t>(frame[kCountOffset + 8]), 0xA0);       // tip byte 0
  EXPECT_EQ(static_cast<std::uint8_t>(frame[kCountOffset + 8 + 31]), 0xBF);  // tip byte 31
  EXPECT_EQ(frame.substr(kCountOffset + 40, 8), std::string("\x22\x11\0\0\0\0\0\0", 8));
  EXPECT_EQ(frame.substr(kCountOffset + 48, 4), std::string(4, '\0'));  // then the entry count
  EXPECT_EQ(frame.size(), kFrameHeaderBytes + kMessageFixedBytes + kChainViewBytes +
                              kChainQuorumBytes + kFrameChecksumBytes);
}

TEST(CodecChain, WithoutChainFieldsTheFrameIsUnchanged) {
  // A node that never sets a chain view sends exactly what builds before the chain fields did.
  const Message m = sample_message(MessageType::heartbeat);
  ASSERT_FALSE(m.chain_view.has_value());
  const std::string frame = encode_message(m);
  EXPECT_EQ(frame[kFlagsOffset], 0);
  EXPECT_EQ(frame.size(), kFrameHeaderBytes + kMessageFixedBytes + kFrameChecksumBytes);
}

TEST(CodecChain, FlagWithoutItsBytesIsRefusedNamingTheField) {
  // A chain-view flag on a bare heartbeat: the entry count and payload length (8 bytes) read
  // as the height, and nothing is left of the 32-byte tip.
  std::string frame = encode_message(sample_message(MessageType::heartbeat));
  frame[kFlagsOffset] = static_cast<char>(0x08);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"chain tip truncated: needs 32 bytes, 0 remain",
                "byte offset " + std::to_string(kCountOffset + 8)});
  // The quorum height flag alone eats the entry count and payload length (8 bytes) and leaves
  // nothing for them.
  frame[kFlagsOffset] = static_cast<char>(0x10);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry count truncated", "byte offset " + std::to_string(kCountOffset + 8)});
}

TEST(CodecChain, ShortTipIsRefusedNamingTheField) {
  Message m = sample_message(MessageType::append_response);
  m.chain_view = sample_chain_view();
  std::string frame = encode_message(m);
  // Cut the frame inside the tip, keep the header honest and the checksum valid.
  frame.resize(kCountOffset + 8 + 10);
  frame.append(4, '\0');
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"chain tip truncated", "byte offset " + std::to_string(kCountOffset + 8)});
}

TEST(CodecRoundTrip, ClusterIdAndPayloadAreCarried) {
  Message m = sample_message(MessageType::config_ack);
  for (const std::uint64_t cluster_id : {std::uint64_t{0}, std::uint64_t{1}, ~std::uint64_t{0}}) {
    for (const std::string& payload : {std::string(), std::string(1, '\0'), std::string("no")}) {
      m.cluster_id = cluster_id;
      m.payload = payload;
      const std::string frame = encode_message(m);
      EXPECT_EQ(frame.size(), encoded_message_size(m));
      const Result<Message> decoded = decode_message(frame);
      ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
      EXPECT_EQ(*decoded, m);
    }
  }
}

TEST(CodecRoundTrip, DefaultMessageIsTheSmallestFrame) {
  const std::string frame = encode_message(Message{});
  EXPECT_EQ(frame.size(), kFrameHeaderBytes + kMessageFixedBytes + kFrameChecksumBytes);
  ASSERT_TRUE(decode_message(frame).is_ok());
  EXPECT_EQ(*decode_message(frame), Message{});
}

TEST(CodecRoundTrip, LayoutIsLittleEndianAsDocumented) {
  const std::string frame = encode_message(sample_message(MessageType::heartbeat));
  EXPECT_EQ(frame.substr(0, 4), "ANYA");
  EXPECT_EQ(frame[4], 1);   // version
  EXPECT_EQ(frame[5], 1);   // kind: message
  EXPECT_EQ(frame[6], static_cast<char>(kMessageFixedBytes));
  EXPECT_EQ(frame.substr(7, 3), std::string(3, '\0'));
  EXPECT_EQ(frame[kTypeOffset], 7);  // heartbeat
  EXPECT_EQ(frame[kFlagsOffset], 0);
  EXPECT_EQ(frame.substr(kClusterIdOffset, 8), "\x88\x77\x66\x55\x44\x33\x22\x11");
  EXPECT_EQ(frame.substr(kToOffset, 8), "\x08\x07\x06\x05\x04\x03\x02\x01");  // byte by byte
  EXPECT_EQ(frame.substr(kCountOffset, 4), std::string(4, '\0'));
  EXPECT_EQ(frame.substr(kBarePayloadLengthOffset, 4), std::string(4, '\0'));
}

TEST(CodecRoundTrip, PayloadFollowsTheEntries) {
  Message m = sample_message(MessageType::append);
  m.payload = "tail";
  const std::string frame = encode_message(m);
  const std::size_t payload_at = frame.size() - kFrameChecksumBytes - 4;
  EXPECT_EQ(frame.substr(payload_at - 4, 8), std::string("\x04\0\0\0tail", 8));
  const Result<Message> decoded = decode_message(frame);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);
}

TEST(CodecRoundTrip, HardState) {
  const HardState state{.term = 9, .vote = 3, .commit = ~0ull};
  const std::string frame = encode_hard_state(state);
  EXPECT_EQ(frame.size(), kFrameHeaderBytes + kHardStateBytes + kFrameChecksumBytes);
  EXPECT_EQ(frame[5], 2);  // kind: hard state
  const Result<HardState> decoded = decode_hard_state(frame);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, state);
}

TEST(CodecRoundTrip, BareEntry) {
  const Entry entry{3, 17, EntryType::config_change, "add node 4"};
  std::string bytes = "prefix";
  encode_entry(entry, bytes);
  EXPECT_EQ(bytes.size(), 6 + encoded_entry_size(entry));
  const Result<Entry> decoded = decode_entry(std::string_view(bytes).substr(6));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, entry);
}

TEST(CodecRoundTrip, EntryDataAtTheLimit) {
  Message m = sample_message(MessageType::append);
  m.entries = {Entry{1, 1, EntryType::normal, std::string(Limits::max_entry_data_bytes, 'x')}};
  const Result<Message> decoded = decode_message(encode_message(m));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);
}

TEST(CodecRoundTrip, PayloadAtTheLimit) {
  Message m = sample_message(MessageType::config_ack);
  m.payload.assign(Limits::max_entry_data_bytes, '\xa5');
  const Result<Message> decoded = decode_message(encode_message(m));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);
}

TEST(FrameLength, ReturnsTheWholeFrameSizeFromTheHeader) {
  const std::string frame = encode_message(sample_message(MessageType::append));
  for (std::size_t n = kFrameHeaderBytes; n <= frame.size(); ++n) {
    const Result<std::size_t> length = frame_length(std::string_view(frame).substr(0, n));
    ASSERT_TRUE(length.is_ok()) << length.status().to_string();
    EXPECT_EQ(*length, frame.size());
  }
}

TEST(FrameLength, RefusesAnOversizedDeclaredLength) {
  std::string header = encode_hard_state(HardState{}).substr(0, kFrameHeaderBytes);
  set_u32(header, 6, static_cast<std::uint32_t>(kMaxFramePayloadBytes + 1));
  expect_error(frame_length(header), Errc::malformed,
               {"payload length " + std::to_string(kMaxFramePayloadBytes + 1),
                "exceeds limit " + std::to_string(kMaxFramePayloadBytes), "byte offset 6"});
  set_u32(header, 6, 0xFFFFFFFFu);
  expect_error(frame_length(header), Errc::malformed, {"payload length 4294967295"});
}

TEST(FrameLength, RefusesBadMagicVersionAndKind) {
  const std::string good = encode_hard_state(HardState{}).substr(0, kFrameHeaderBytes);
  std::string bad = good;
  bad[0] = 'X';
  expect_error(frame_length(bad), Errc::malformed, {"bad magic"});
  bad = good;
  bad[4] = 2;
  expect_error(frame_length(bad), Errc::unsupported, {"version 2"});
  bad = good;
  bad[5] = 9;
  expect_error(frame_length(bad), Errc::malformed, {"unknown frame kind 9"});
}

// --- rejections: the frame ---

TEST(CodecRejects, BadMagic) {
  std::string frame = encode_message(sample_message(MessageType::vote));
  frame[3] = 'B';
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"bad magic 414e5942", "\"ANYA\"", "byte offset 0"});
}

TEST(CodecRejects, UnknownVersionAsUnsupported) {
  std::string frame = encode_message(sample_message(MessageType::vote));
  for (const char version : {'\0', '\2', '\xff'}) {
    frame[4] = version;
    reseal(frame);
    expect_error(decode_message(frame), Errc::unsupported,
                 {"version " + std::to_string(static_cast<std::uint8_t>(version)),
                  "byte offset 4"});
  }
}

TEST(CodecRejects, UnknownFrameKind) {
  std::string frame = encode_message(sample_message(MessageType::vote));
  for (const char kind : {'\0', '\3', '\xff'}) {
    frame[5] = kind;
    reseal(frame);
    expect_error(decode_message(frame), Errc::malformed,
                 {"unknown frame kind " + std::to_string(static_cast<std::uint8_t>(kind)),
                  "byte offset 5"});
  }
}

TEST(CodecRejects, WrongFrameKind) {
  expect_error(decode_message(encode_hard_state(HardState{})), Errc::malformed,
               {"wrong frame kind 2 (hard state), expected 1 (message)", "byte offset 5"});
  expect_error(decode_hard_state(encode_message(Message{})), Errc::malformed,
               {"wrong frame kind 1 (message), expected 2 (hard state)", "byte offset 5"});
}

TEST(CodecRejects, BadChecksum) {
  std::string frame = encode_message(sample_message(MessageType::append));
  frame[kFirstEntryOffset] ^= 0x01;
  expect_error(decode_message(frame), Errc::malformed,
               {"checksum mismatch", "byte offset " + std::to_string(frame.size() - 4)});
  frame = encode_hard_state(HardState{.term = 1, .vote = 2, .commit = 3});
  frame.back() ^= 0x40;
  expect_error(decode_hard_state(frame), Errc::malformed, {"checksum mismatch"});
}

TEST(CodecRejects, PayloadLengthOverTheLimit) {
  std::string frame = encode_message(Message{});
  set_u32(frame, 6, static_cast<std::uint32_t>(kMaxFramePayloadBytes + 1));
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"payload length " + std::to_string(kMaxFramePayloadBytes + 1), "exceeds limit",
                "byte offset 6"});
}

TEST(CodecRejects, TrailingBytesAfterTheChecksum) {
  std::string frame = encode_message(sample_message(MessageType::heartbeat));
  const std::size_t size = frame.size();
  frame += "xyz";
  expect_error(decode_message(frame), Errc::malformed,
               {"3 trailing bytes after the checksum", "byte offset " + std::to_string(size)});
}

TEST(CodecRejects, DeclaredLengthLongerThanTheBuffer) {
  std::string frame = encode_message(sample_message(MessageType::heartbeat));
  set_u32(frame, 6, static_cast<std::uint32_t>(kMessageFixedBytes + 100));
  expect_error(decode_message(frame), Errc::malformed,
               {"frame truncated", "declares " + std::to_string(frame.size() + 100)});
}

TEST(CodecRejects, EveryTruncation) {
  const std::string frame = encode_message(sample_message(MessageType::append));
  for (std::size_t n = 0; n < frame.size(); ++n) {
    const Result<Message> decoded = decode_message(std::string_view(frame).substr(0, n));
    EXPECT_FALSE(decoded.is_ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), Errc::malformed) << n;
    EXPECT_NE(decoded.status().message().find("truncated"), std::string::npos)
        << n << ": " << decoded.status().message();
  }
  const std::string hard = encode_hard_state(HardState{.term = 1, .vote = 2, .commit = 3});
  for (std::size_t n = 0; n < hard.size(); ++n) {
    EXPECT_FALSE(decode_hard_state(std::string_view(hard).substr(0, n)).is_ok()) << n;
  }
}

// --- rejections: the payload (checksum made valid so these checks are reached) ---

TEST(CodecRejects, UnknownMessageType) {
  std::string frame = encode_message(sample_message(MessageType::heartbeat));
  for (const int type : {0, kMaxMessageType + 1, 255}) {
    frame[kTypeOffset] = static_cast<char>(type);
    reseal(frame);
    expect_error(decode_message(frame), Errc::malformed,
                 {"unknown message type " + std::to_string(type), "byte offset 10"});
  }
}

TEST(CodecRejects, UnknownFlagBits) {
  std::string frame = encode_message(sample_message(MessageType::heartbeat));
  frame[kFlagsOffset] = static_cast<char>(0x07 | 0x20);  // bit 5 is the first unknown
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"unknown flag bits 0x20", "byte offset 11"});
  frame[kFlagsOffset] = static_cast<char>(0x80);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed, {"unknown flag bits 0x80"});
}

TEST(CodecRejects, UnknownEntryType) {
  std::string frame = encode_message(sample_message(MessageType::append));
  const std::size_t at = kFirstEntryOffset + kEntryTypeOffset;
  frame[at] = static_cast<char>(kMaxEntryType + 1);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry 0 unknown entry type " + std::to_string(kMaxEntryType + 1),
                "byte offset " + std::to_string(at)});
}

TEST(CodecRejects, EntryCountOverTheLimit) {
  std::string frame = encode_message(Message{});
  set_u32(frame, kCountOffset, Limits::max_entries_per_message + 1);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry count 4097 exceeds limit 4096", "byte offset 92"});
}

TEST(CodecRejects, EntryCountOverTheBytesPresent) {
  std::string frame = encode_message(sample_message(MessageType::append));
  set_u32(frame, kCountOffset, 1000);  // within the limit, but 4 entries' worth of bytes
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry count 1000 needs at least 21000 bytes", "byte offset 92"});
}

TEST(CodecRejects, EntryDataLengthOverTheLimit) {
  std::string frame = encode_message(sample_message(MessageType::append));
  const std::size_t second_entry = kFirstEntryOffset + kEntryFixedBytes + 7;  // "set x=1"
  const std::size_t at = second_entry + kEntryLengthOffset;
  set_u32(frame, at, 5000000);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry 1 data length 5000000 exceeds limit 1048576 at byte offset " +
                std::to_string(at)});
}

TEST(CodecRejects, EntryDataLengthOverTheBytesPresent) {
  std::string frame = encode_message(sample_message(MessageType::append));
  const std::size_t at = kFirstEntryOffset + kEntryLengthOffset;
  set_u32(frame, at, 500);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"entry 0 data length 500 exceeds the", "bytes remaining",
                "byte offset " + std::to_string(at)});
}

TEST(CodecRejects, MessagePayloadLengthOverTheLimit) {
  std::string frame = encode_message(Message{});
  set_u32(frame, kBarePayloadLengthOffset, Limits::max_entry_data_bytes + 1);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length 1048577 exceeds limit 1048576 at byte offset 96"});
  set_u32(frame, kBarePayloadLengthOffset, 0xFFFFFFFFu);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length 4294967295 exceeds limit 1048576"});
}

TEST(CodecRoundTrip, SnapshotPayloadMayExceedTheEntryLimit) {
  Message m = sample_message(MessageType::snapshot);
  m.payload.assign(Limits::max_snapshot_payload_bytes, '\x5a');
  ASSERT_TRUE(check_message_limits(m).is_ok());
  const std::string frame = encode_message(m);
  EXPECT_LE(frame.size(), Limits::max_frame_bytes);
  const Result<Message> decoded = decode_message(frame);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);
}

TEST(CodecRejects, SnapshotPayloadOverItsLimit) {
  Message m = sample_message(MessageType::snapshot);
  m.payload.assign(Limits::max_snapshot_payload_bytes + 1, 'x');
  const Status s = check_message_limits(m);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_NE(s.message().find("for a snapshot message"), std::string::npos) << s.message();
  // On the wire: the declared length is refused before the bytes are looked at.
  std::string frame = encode_message(sample_message(MessageType::snapshot));
  set_u32(frame, kBarePayloadLengthOffset, Limits::max_snapshot_payload_bytes + 1);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length " + std::to_string(Limits::max_snapshot_payload_bytes + 1) +
                " exceeds limit " + std::to_string(Limits::max_snapshot_payload_bytes)});
}

TEST(CodecRejects, LargePayloadOnlyForSnapshots) {
  Message m = sample_message(MessageType::config_ack);
  m.payload.assign(Limits::max_entry_data_bytes + 1, 'x');
  EXPECT_EQ(check_message_limits(m).code(), Errc::invalid_argument);
  m.type = MessageType::snapshot;
  EXPECT_TRUE(check_message_limits(m).is_ok());
}

TEST(CodecRejects, MessagePayloadLengthOverTheBytesPresent) {
  std::string frame = encode_message(sample_message(MessageType::config_ack));  // 18-byte payload
  set_u32(frame, kBarePayloadLengthOffset, 500);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length 500 exceeds the 18 bytes remaining",
                "byte offset " + std::to_string(kBarePayloadLengthOffset)});
}

TEST(CodecRejects, PayloadShorterThanItsContent) {
  // Cut the last byte of the message payload and declare the shorter frame payload: the frame is
  // well-formed, but the message promises bytes it does not have.
  std::string frame = encode_message(sample_message(MessageType::config_ack));
  frame.erase(frame.size() - kFrameChecksumBytes - 1, 1);
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length 18 exceeds the 17 bytes remaining"});

  // Cut the last entry's data: that entry then swallows a byte of the payload length.
  frame = encode_message(sample_message(MessageType::append));
  frame.erase(frame.size() - kFrameChecksumBytes - 4 - 1, 1);
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"message payload length truncated: needs 4 bytes, 3 remain"});

  frame = encode_message(Message{});
  frame.erase(kFrameHeaderBytes + 30, 10);  // inside the fixed fields
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed, {"truncated: needs"});
}

TEST(CodecRejects, TrailingBytesAfterThePayload) {
  std::string frame = encode_message(sample_message(MessageType::append));
  frame.insert(frame.size() - kFrameChecksumBytes, "junk");
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_message(frame), Errc::malformed,
               {"4 trailing bytes after the message payload",
                "byte offset " + std::to_string(frame.size() - kFrameChecksumBytes - 4)});

  frame = encode_hard_state(HardState{});
  frame.insert(frame.size() - kFrameChecksumBytes, 1, '\0');
  fix_payload_length(frame);
  reseal(frame);
  expect_error(decode_hard_state(frame), Errc::malformed, {"1 trailing bytes after the payload"});
}

TEST(CodecRejects, BareEntryErrors) {
  std::string bytes;
  encode_entry(Entry{1, 2, EntryType::normal, "abc"}, bytes);
  expect_error(decode_entry(bytes + "!"), Errc::malformed,
               {"1 trailing bytes after the entry", "byte offset 24"});
  expect_error(decode_entry(std::string_view(bytes).substr(0, 10)), Errc::malformed,
               {"index truncated: needs 8 bytes, 2 remain", "byte offset 8"});
}

// --- the encoder's side of the limits ---

TEST(CheckMessageLimits, NamesTheLimitExceeded) {
  Message m = sample_message(MessageType::append);
  EXPECT_TRUE(check_message_limits(m).is_ok());
  m.entries[1].data.assign(Limits::max_entry_data_bytes + 1, 'x');
  Status status = check_message_limits(m);
  EXPECT_EQ(status.code(), Errc::invalid_argument);
  EXPECT_NE(status.message().find("entry 1 data length 1048577 exceeds limit"), std::string::npos);

  m = sample_message(MessageType::append);
  m.entries.resize(Limits::max_entries_per_message + 1);
  EXPECT_NE(check_message_limits(m).message().find("4097 entries exceed limit 4096"),
            std::string::npos);

  m = Message{};
  m.entries.assign(9, Entry{1, 1, EntryType::normal, std::string(Limits::max_entry_data_bytes,
                                                                  'y')});
  EXPECT_NE(check_message_limits(m).message().find("exceeds frame limit 8388608"),
            std::string::npos);

  m = sample_message(MessageType::config_ack);
  m.payload.assign(Limits::max_entry_data_bytes + 1, 'z');
  status = check_message_limits(m);
  EXPECT_EQ(status.code(), Errc::invalid_argument);
  EXPECT_NE(status.message().find("message payload length 1048577 exceeds limit 1048576"),
            std::string::npos)
      << status.message();

  m = sample_message(MessageType::heartbeat);
  m.type = static_cast<MessageType>(kMaxMessageType + 1);
  EXPECT_NE(check_message_limits(m).message().find("unknown message type 12"), std::string::npos);

  m = sample_message(MessageType::append);
  m.entries[3].type = static_cast<EntryType>(kMaxEntryType + 1);
  EXPECT_NE(check_message_limits(m).message().find("entry 3 has unknown type 4"),
            std::string::npos);
}

// The payload counts toward the frame: entries that fit alone no longer fit beside it.
TEST(CheckMessageLimits, PayloadCountsTowardTheFrameLimit) {
  Message m;
  m.entries.assign(7, Entry{1, 1, EntryType::normal, std::string(Limits::max_entry_data_bytes,
                                                                  'y')});
  ASSERT_TRUE(check_message_limits(m).is_ok());
  m.payload.assign(Limits::max_entry_data_bytes, 'p');
  EXPECT_GT(encoded_message_size(m), Limits::max_frame_bytes);
  const Status status = check_message_limits(m);
  EXPECT_EQ(status.code(), Errc::invalid_argument);
  EXPECT_NE(status.message().find("exceeds frame limit 8388608"), std::string::npos)
      << status.message();
}

TEST(CodecDeathTest, EncodingAnOversizedMessageIsABug) {
  Message m = sample_message(MessageType::append);
  m.entries[0].data.assign(Limits::max_entry_data_bytes + 1, 'x');
  EXPECT_DEATH((void)encode_message(m), "check_message_limits");
  m = sample_message(MessageType::config_ack);
  m.payload.assign(Limits::max_entry_data_bytes + 1, 'x');
  EXPECT_DEATH((void)encode_message(m), "check_message_limits");
}

}  // namespace
}  // namespace anya::engine

// Properties of the wire codec: any valid message or hard state round-trips exactly, and no strict
// prefix and no single bit flip of a valid frame decodes. The table-driven CRC-32C is compared
// with a dumb bit-at-a-time model.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/codec/codec.hpp"
#include "engine/codec/crc32c.hpp"

namespace anya::engine {
namespace {

constexpr int kMaxEntries = 8;
constexpr int kMaxDataBytes = 64;

// Mostly arbitrary values, with the edges (0, 1, max) drawn often enough to matter.
rc::Gen<std::uint64_t> gen_u64() {
  return rc::gen::weightedOneOf<std::uint64_t>({
      {3, rc::gen::arbitrary<std::uint64_t>()},
      {1, rc::gen::element(std::uint64_t{0}, std::uint64_t{1}, ~std::uint64_t{0})},
  });
}

// A uniform tag in [min, max]. RapidCheck's inRange scales with the test size, which starts at 0,
// so plain inRange(1, 11) draws the last message type in about 1% of cases; tags are not
// magnitudes, and each should be drawn as often as the others.
rc::Gen<int> gen_tag(int min, int max) {
  return rc::gen::resize(rc::kNominalSize, rc::gen::inRange(min, max + 1));
}

// Any bytes, NUL and 0xff included, not just printable text. Used for entry data and for the
// message payload, which share a limit far above kMaxDataBytes (that edge is in codec_test).
rc::Gen<std::string> gen_bytes() {
  return rc::gen::mapcat(rc::gen::inRange(0, kMaxDataBytes + 1), [](int length) {
    return rc::gen::container<std::string>(static_cast<std::size_t>(length),
                                           rc::gen::arbitrary<char>());
  });
}

rc::Gen<Entry> gen_entry() {
  return rc::gen::apply(
      [](std::uint64_t term, std::uint64_t index, int type, std::string data) {
        return Entry{term, index, static_cast<EntryType>(type), std::move(data)};
      },
      gen_u64(), gen_u64(), gen_tag(0, kMaxEntryType), gen_bytes());
}

// Every type, config_ack and config_txn entries included: the ranges run to the kMax constants.
Message draw_message() {
  Message m;
  m.type = static_cast<MessageType>(*gen_tag(kMinMessageType, kMaxMessageType));
  m.cluster_id = *gen_u64();
  m.from = *gen_u64();
  m.to = *gen_u64();
  m.term = *gen_u64();
  m.log_term = *gen_u64();
  m.index = *gen_u64();
  m.commit = *gen_u64();
  m.reject = *rc::gen::arbitrary<bool>();
  m.transfer = *rc::gen::arbitrary<bool>();
  m.unhealthy = *rc::gen::arbitrary<bool>();
  m.reject_hint = *gen_u64();
  m.reject_hint_term = *gen_u64();
  m.context = *gen_u64();
  const int count = *rc::gen::inRange(0, kMaxEntries + 1);
  m.entries = *rc::gen::container<std::vector<Entry>>(static_cast<std::size_t>(count), gen_entry());
  // The codec carries a payload for any type; config_ack and snapshot use one, and empty is the
  // common value of the first (an accepting ack), so draw it often. (The larger snapshot limit
  // is an edge tested in codec_test.)
  m.payload = *rc::gen::weightedOneOf<std::string>({
      {1, rc::gen::just(std::string())},
      {2, gen_bytes()},
  });
  RC_ASSERT(check_message_limits(m).is_ok());  // the generator only makes valid messages
  RC_CLASSIFY(m.type == MessageType::config_ack, "config_ack");
  RC_CLASSIFY(m.type == MessageType::snapshot, "snapshot");
  RC_CLASSIFY(std::any_of(m.entries.begin(), m.entries.end(),
                          [](const Entry& e) { return e.type == EntryType::config_txn; }),
              "config_txn entry");
  return m;
}

HardState draw_hard_state() { return HardState{*gen_u64(), *gen_u64(), *gen_u64()}; }

// The definition of CRC-32C, one bit at a time, for comparison with the table-driven code.
std::uint32_t crc32c_model(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<std::uint8_t>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) != 0 ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

// --- round trips ---

RC_GTEST_PROP(CodecProps, MessagesRoundTripExactly, ()) {
  const Message m = draw_message();
  const std::string frame = encode_message(m);
  RC_ASSERT(frame.size() == encoded_message_size(m));
  const Result<Message> decoded = decode_message(frame);
  RC_ASSERT(decoded.is_ok());
  RC_ASSERT(*decoded == m);
  RC_ASSERT(encode_message(*decoded) == frame);
}

RC_GTEST_PROP(CodecProps, HardStatesRoundTripExactly, ()) {
  const HardState state = draw_hard_state();
  const std::string frame = encode_hard_state(state);
  const Result<HardState> decoded = decode_hard_state(frame);
  RC_ASSERT(decoded.is_ok());
  RC_ASSERT(*decoded == state);
}

RC_GTEST_PROP(CodecProps, BareEntriesRoundTripExactly, ()) {
  const Entry entry = *gen_entry();
  std::string bytes;
  encode_entry(entry, bytes);
  RC_ASSERT(bytes.size() == encoded_entry_size(entry));
  const Result<Entry> decoded = decode_entry(bytes);
  RC_ASSERT(decoded.is_ok());
  RC_ASSERT(*decoded == entry);
}

RC_GTEST_PROP(CodecProps, FrameLengthIsKnownFromAnyPrefixHoldingTheHeader, ()) {
  const std::string frame = encode_message(draw_message());
  const auto cut = *rc::gen::inRange(kFrameHeaderBytes, frame.size() + 1);
  const Result<std::size_t> length = frame_length(std::string_view(frame).substr(0, cut));
  RC_ASSERT(length.is_ok());
  RC_ASSERT(*length == frame.size());
}

// --- rejections ---

RC_GTEST_PROP(CodecProps, EveryStrictTruncationIsRejected, ()) {
  const std::string frame = encode_message(draw_message());
  for (std::size_t n = 0; n < frame.size(); ++n) {
    RC_ASSERT_FALSE(decode_message(std::string_view(frame).substr(0, n)).is_ok());
  }
  const std::string hard = encode_hard_state(draw_hard_state());
  for (std::size_t n = 0; n < hard.size(); ++n) {
    RC_ASSERT_FALSE(decode_hard_state(std::string_view(hard).substr(0, n)).is_ok());
  }
}

// Every bit is checked, not a sample: frames here are at most ~1 KiB, so this is ~8k decodes.
// The checksum is what guarantees it (CRC-32C detects every error of one bit), so this also
// proves that no header field is read in a way that could accept a damaged frame before the
// checksum is compared.
RC_GTEST_PROP(CodecProps, EverySingleBitFlipIsRejected, ()) {
  std::string frame = encode_message(draw_message());
  for (std::size_t bit = 0; bit < frame.size() * 8; ++bit) {
    const auto mask = static_cast<char>(1u << (bit % 8));
    frame[bit / 8] ^= mask;
    RC_ASSERT_FALSE(decode_message(frame).is_ok());
    frame[bit / 8] ^= mask;
  }
  std::string hard = encode_hard_state(draw_hard_state());
  for (std::size_t bit = 0; bit < hard.size() * 8; ++bit) {
    const auto mask = static_cast<char>(1u << (bit % 8));
    hard[bit / 8] ^= mask;
    RC_ASSERT_FALSE(decode_hard_state(hard).is_ok());
    hard[bit / 8] ^= mask;
  }
}

RC_GTEST_PROP(CodecProps, AnyAppendedBytesAreRejected, ()) {
  const std::string frame = encode_message(draw_message());
  const std::string extra = *rc::gen::nonEmpty(gen_bytes());
  RC_ASSERT_FALSE(decode_message(frame + extra).is_ok());
}

// --- CRC-32C ---

RC_GTEST_PROP(Crc32cProps, TableDrivenMatchesTheBitwiseModel, ()) {
  const std::string data = *gen_bytes();
  RC_ASSERT(crc32c(data) == crc32c_model(data));
}

RC_GTEST_PROP(Crc32cProps, ExtendEqualsChecksumOfConcatenation, ()) {
  const std::string a = *gen_bytes();
  const std::string b = *gen_bytes();
  RC_ASSERT(crc32c_extend(crc32c(a), b) == crc32c(a + b));
}

}  // namespace
}  // namespace anya::engine

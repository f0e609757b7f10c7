// The codec's seed corpus (fuzz/corpus/codec/) is generated from the table below and checked in.
// This test pins it: every seed file must hold exactly the bytes the table says, valid seeds must
// decode and invalid ones must be rejected. It doubles as a golden test of the wire format: an
// unintended change to the encoding fails here. After an intended change (with a version bump once
// frames have been deployed), regenerate the files with
//   ./build/fuzz/codec_seeds_test --gtest_also_run_disabled_tests --gtest_filter='*WriteSeed*'
// Fuzzer findings live in the same folder under other names and are replayed by codec_corpus.
// It lives in fuzz/, not beside the codec, because engine/ does no file I/O.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/codec/codec.hpp"
#include "engine/codec/crc32c.hpp"

#ifndef ANYA_CODEC_CORPUS_DIR
#error "fuzz/meson.build defines ANYA_CODEC_CORPUS_DIR as the path of fuzz/corpus/codec"
#endif

namespace anya::engine {
namespace {

struct Seed {
  std::string name;  // file name in the corpus folder
  std::string bytes;
  bool valid = true;
};

Message seed_message(MessageType type) {
  Message m;
  m.type = type;
  m.cluster_id = 0xA5A5000000000001ull;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.log_term = 2;
  m.index = 10;
  m.commit = 9;
  m.context = type == MessageType::heartbeat || type == MessageType::heartbeat_response ? 77 : 0;
  m.transfer = type == MessageType::vote || type == MessageType::pre_vote;
  m.unhealthy = type == MessageType::heartbeat_response;
  if (type == MessageType::append_response) {
    m.reject = true;
    m.reject_hint = 8;
    m.reject_hint_term = 2;
  }
  if (type == MessageType::append) {
    m.entries = {
        Entry{3, 11, EntryType::noop, ""},
        Entry{3, 12, EntryType::normal, "put k v"},
        Entry{3, 13, EntryType::config_change, std::string("\x01\x00\x04", 3)},
        Entry{3, 14, EntryType::config_txn, "prepare 7"},
    };
  }
  if (type == MessageType::config_ack) {  // a rejecting ack carries its reason
    m.reject = true;
    m.unhealthy = true;
    m.payload = "vip 10.0.0.5 unreachable";
  }
  if (type == MessageType::snapshot) {  // index/log_term: the snapshot's; payload: its envelope
    m.index = 12;
    m.log_term = 3;
    m.payload = std::string("\x02\0\0\0\x01\0state", 11);
  }
  return m;
}

// Recomputes a frame's trailing checksum after an edit, so the edit is what gets judged.
void reseal(std::string& frame) {
  const std::size_t at = frame.size() - kFrameChecksumBytes;
  const std::uint32_t crc = crc32c(std::string_view(frame).substr(0, at));
  for (std::size_t i = 0; i < kFrameChecksumBytes; ++i) {
    frame[at + i] = static_cast<char>((crc >> (8 * i)) & 0xFFu);
  }
}

std::vector<Seed> seed_table() {
  std::vector<Seed> seeds;
  for (int t = kMinMessageType; t <= kMaxMessageType; ++t) {
    const auto type = static_cast<MessageType>(t);
    seeds.push_back({std::string("valid-") + message_type_name(type),
                     encode_message(seed_message(type))});
  }
  seeds.push_back({"valid-hard_state", encode_hard_state(HardState{3, 1, 9})});
  // The optional chain fields: a follower's view in its answer, the quorum height in a
  // heartbeat, and a view flagged but cut off (the checksum resealed, so the flag is what fails).
  ChainView view;
  view.height = 800'000;
  for (std::size_t i = 0; i < view.tip.size(); ++i) view.tip[i] = static_cast<std::uint8_t>(i);
  Message answer = seed_message(MessageType::heartbeat_response);
  answer.chain_view = view;
  seeds.push_back({"valid-heartbeat_response-chain_view", encode_message(answer)});
  Message heartbeat = seed_message(MessageType::heartbeat);
  heartbeat.chain_quorum_height = 799'999;
  seeds.push_back({"valid-heartbeat-chain_quorum_height", encode_message(heartbeat)});
  std::string cut = encode_message(seed_message(MessageType::heartbeat_response));
  cut[kFrameHeaderBytes + 1] = static_cast<char>(cut[kFrameHeaderBytes + 1] | 0x08);
  reseal(cut);

  const std::string append = encode_message(seed_message(MessageType::append));
  std::string bad_magic = append;
  bad_magic[0] = 'X';
  std::string bad_version = append;
  bad_version[4] = 2;
  std::string bad_checksum = append;
  bad_checksum[kFrameHeaderBytes + 20] ^= 0x10;
  seeds.push_back({"invalid-truncated", append.substr(0, append.size() - 5), false});
  seeds.push_back({"invalid-bad_magic", bad_magic, false});
  seeds.push_back({"invalid-version_2", bad_version, false});
  seeds.push_back({"invalid-bad_checksum", bad_checksum, false});
  seeds.push_back({"invalid-trailing_bytes", append + "!!", false});
  seeds.push_back({"invalid-chain_view_truncated", cut, false});
  return seeds;
}

std::filesystem::path seed_path(const Seed& seed) {
  return std::filesystem::path(ANYA_CODEC_CORPUS_DIR) / seed.name;
}

bool decodes(const std::string& bytes) {
  return decode_message(bytes).is_ok() || decode_hard_state(bytes).is_ok();
}

TEST(CodecSeeds, TableCoversEveryMessageTypeAndBothOutcomes) {
  const std::vector<Seed> seeds = seed_table();
  EXPECT_EQ(seeds.size(), std::size_t{kMaxMessageType} + 1 + 2 + 6);
  for (const Seed& seed : seeds) EXPECT_EQ(decodes(seed.bytes), seed.valid) << seed.name;
}

TEST(CodecSeeds, CheckedInCorpusMatchesTheTable) {
  for (const Seed& seed : seed_table()) {
    std::ifstream in(seed_path(seed), std::ios::binary);
    ASSERT_TRUE(in.good()) << "missing seed " << seed_path(seed);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(bytes, seed.bytes) << seed.name << " differs from the table: regenerate it";
    EXPECT_EQ(decodes(bytes), seed.valid) << seed.name;
  }
}

TEST(CodecSeeds, DISABLED_WriteSeedCorpus) {
  for (const Seed& seed : seed_table()) {
    std::ofstream out(seed_path(seed), std::ios::binary | std::ios::trunc);
    out.write(seed.bytes.data(), static_cast<std::streamsize>(seed.bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << seed_path(seed);
  }
}

}  // namespace
}  // namespace anya::engine

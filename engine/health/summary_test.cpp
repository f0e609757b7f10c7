#include "engine/health/summary.hpp"

#include <gtest/gtest.h>

namespace anya::engine::health {
namespace {

HealthSummary sample() {
  HealthSummary s;
  s.healthy = false;
  s.probe_count = 5;
  s.failing_probes = 0b10010;
  s.cpu_percent = 97;
  s.memory_percent = 40;
  s.disk_used_percent = kUnknownLevel;
  s.fd_percent = 0;
  s.exceeded = 0b0001;
  return s;
}

std::string error_of(std::string_view bytes) {
  Result<HealthSummary> r = decode_summary(bytes);
  return r.is_ok() ? std::string("(accepted)") : r.status().message();
}

TEST(HealthSummary, EncodesToTheDocumentedLayout) {
  const std::string bytes = encode_summary(sample());
  ASSERT_EQ(bytes.size(), kSummaryBytes);
  const std::string expected("\x01\x00\x05\x12\x00\x00\x00\x61\x28\xff\x00\x01", 12);
  EXPECT_EQ(bytes, expected);
}

TEST(HealthSummary, RoundTrips) {
  for (HealthSummary s : {HealthSummary{}, sample()}) {
    Result<HealthSummary> back = decode_summary(encode_summary(s));
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(*back, s);
  }
  HealthSummary full;
  full.probe_count = 32;
  full.failing_probes = 0xFFFFFFFFu;
  full.exceeded = 0x0F;
  full.cpu_percent = 100;
  Result<HealthSummary> back = decode_summary(encode_summary(full));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(*back, full);
}

TEST(HealthSummary, EveryTruncationNamesTheFieldAndOffset) {
  const std::string bytes = encode_summary(sample());
  // The field each prefix length stops in, and where that field starts.
  const struct {
    std::size_t length;
    const char* message;
  } cases[] = {
      {0, "health summary: version truncated: needs 1 bytes, 0 remain at byte offset 0"},
      {1, "health summary: flags truncated: needs 1 bytes, 0 remain at byte offset 1"},
      {2, "health summary: probe_count truncated: needs 1 bytes, 0 remain at byte offset 2"},
      {3, "health summary: failing_probes truncated: needs 4 bytes, 0 remain at byte offset 3"},
      {4, "health summary: failing_probes truncated: needs 4 bytes, 1 remain at byte offset 3"},
      {5, "health summary: failing_probes truncated: needs 4 bytes, 2 remain at byte offset 3"},
      {6, "health summary: failing_probes truncated: needs 4 bytes, 3 remain at byte offset 3"},
      {7, "health summary: cpu_percent truncated: needs 1 bytes, 0 remain at byte offset 7"},
      {8, "health summary: memory_percent truncated: needs 1 bytes, 0 remain at byte offset 8"},
      {9, "health summary: disk_used_percent truncated: needs 1 bytes, 0 remain at byte offset "
          "9"},
      {10, "health summary: fd_percent truncated: needs 1 bytes, 0 remain at byte offset 10"},
      {11, "health summary: exceeded truncated: needs 1 bytes, 0 remain at byte offset 11"},
  };
  static_assert(std::size(cases) == kSummaryBytes, "every proper prefix");
  for (const auto& c : cases) {
    EXPECT_EQ(error_of(std::string_view(bytes).substr(0, c.length)), c.message) << c.length;
  }
  EXPECT_EQ(error_of(bytes + "x"), "health summary: 1 trailing bytes at byte offset 12");
}

TEST(HealthSummary, BadFieldsAreRefusedNamingThem) {
  const std::string good = encode_summary(sample());
  const auto with = [&good](std::size_t offset, unsigned char value) {
    std::string b = good;
    b[offset] = static_cast<char>(value);
    return error_of(b);
  };
  EXPECT_EQ(with(0, 2), "health summary: version 2 unsupported (expected 1) at byte offset 0");
  EXPECT_EQ(with(1, 0x02), "health summary: flags 2 has reserved bits set at byte offset 1");
  EXPECT_EQ(with(2, 33), "health summary: probe_count 33 above 32 at byte offset 2");
  EXPECT_EQ(with(2, 4), "health summary: failing_probes has a bit for a probe at or above "
                        "probe_count 4 at byte offset 3");
  EXPECT_EQ(with(7, 101), "health summary: cpu_percent 101 is neither 0..100 nor 255 at byte "
                          "offset 7");
  EXPECT_EQ(with(10, 200), "health summary: fd_percent 200 is neither 0..100 nor 255 at byte "
                           "offset 10");
  EXPECT_EQ(with(11, 0x10), "health summary: exceeded 16 has reserved bits set at byte offset "
                            "11");
  EXPECT_EQ(with(9, kUnknownLevel), "(accepted)");
}

TEST(HealthSummary, EveryByteValueAtEveryOffsetDecodesOrIsRefusedWithoutCrashing) {
  const std::string good = encode_summary(sample());
  for (std::size_t offset = 0; offset < good.size(); offset++) {
    for (int value = 0; value < 256; value++) {
      std::string b = good;
      b[offset] = static_cast<char>(value);
      Result<HealthSummary> r = decode_summary(b);
      if (r.is_ok()) {
        EXPECT_EQ(encode_summary(*r), b) << "decode is the inverse of encode";
      }
    }
  }
}

}  // namespace
}  // namespace anya::engine::health

#include "engine/health/probe.hpp"

#include <gtest/gtest.h>

namespace anya::engine::health {
namespace {

ProbeSpec spec(std::uint32_t fall = 3, std::uint32_t rise = 2) {
  ProbeSpec s;
  s.name = "signer-http";
  s.kind = ProbeKind::http;
  s.interval_ms = 1000;
  s.timeout_ms = 500;
  s.fall = fall;
  s.rise = rise;
  return s;
}

TEST(ProbeTracker, StartsUnknownAndTheFirstResultDecides) {
  ProbeTracker up(spec());
  EXPECT_EQ(up.state(), ProbeState::unknown);
  EXPECT_FALSE(up.counts_as_passing()) << "unknown counts as failing";
  EXPECT_EQ(up.describe(), "unknown (no result yet)");
  EXPECT_TRUE(up.record(true, 5, 1000, ""));
  EXPECT_EQ(up.state(), ProbeState::passing);

  ProbeTracker down(spec());
  EXPECT_TRUE(down.record(false, 5, 1000, "connection refused"));
  EXPECT_EQ(down.state(), ProbeState::failing);
  EXPECT_EQ(down.describe(), "failing (1 consecutive failure: connection refused)");
}

TEST(ProbeTracker, PassingTurnsFailingOnlyAfterFallFailuresInARow) {
  ProbeTracker t(spec(3, 2));
  std::uint64_t now = 1000;
  ASSERT_TRUE(t.record(true, 1, now, ""));
  EXPECT_FALSE(t.record(false, 1, now += 1000, "refused"));
  EXPECT_FALSE(t.record(false, 1, now += 1000, "refused"));
  EXPECT_EQ(t.state(), ProbeState::passing);
  EXPECT_EQ(t.describe(), "passing (2 of 3 failures to fail: refused)");
  EXPECT_FALSE(t.record(true, 1, now += 1000, "")) << "a success resets the count";
  EXPECT_FALSE(t.record(false, 1, now += 1000, "refused"));
  EXPECT_FALSE(t.record(false, 1, now += 1000, "refused"));
  EXPECT_TRUE(t.record(false, 1, now += 1000, "connection refused"));
  EXPECT_EQ(t.state(), ProbeState::failing);
  EXPECT_EQ(t.consecutive_failures(), 3u);
  EXPECT_EQ(t.describe(), "failing (3 consecutive failures: connection refused)");
}

TEST(ProbeTracker, FailingTurnsPassingOnlyAfterRiseSuccessesInARow) {
  ProbeTracker t(spec(1, 3));
  std::uint64_t now = 1000;
  ASSERT_TRUE(t.record(false, 1, now, "down"));
  EXPECT_FALSE(t.record(true, 1, now += 1000, ""));
  EXPECT_FALSE(t.record(true, 1, now += 1000, ""));
  EXPECT_EQ(t.describe(), "failing (2 of 3 successes to pass; last error: down)");
  EXPECT_FALSE(t.record(false, 1, now += 1000, "down again"));
  EXPECT_FALSE(t.record(true, 1, now += 1000, ""));
  EXPECT_FALSE(t.record(true, 1, now += 1000, ""));
  EXPECT_TRUE(t.record(true, 1, now += 1000, ""));
  EXPECT_EQ(t.state(), ProbeState::passing);
  EXPECT_EQ(t.last_error(), "down again") << "the last error is kept after recovery";
}

TEST(ProbeTracker, OneFailureInThreeNeverFlapsWithFallThree) {
  ProbeTracker t(spec(3, 2));
  std::uint64_t now = 1000;
  int changes = 0;
  for (int i = 0; i < 300; i++) changes += t.record(i % 3 != 2, 1, now += 100, "timeout");
  EXPECT_EQ(changes, 1) << "only unknown -> passing";
  EXPECT_EQ(t.state(), ProbeState::passing);
}

TEST(ProbeTracker, WindowGivesErrorRatioAndPercentiles) {
  ProbeTracker t(spec(), 60'000);
  std::uint64_t now = 1000;
  // 100 results: latencies 1..100 ms, every fourth a failure.
  for (std::uint64_t i = 1; i <= 100; i++) t.record(i % 4 != 0, i, now += 100, "slow");
  const WindowStats w = t.window(now);
  EXPECT_EQ(w.samples, 100u);
  EXPECT_EQ(w.failures, 25u);
  EXPECT_DOUBLE_EQ(w.error_ratio, 0.25);
  ASSERT_TRUE(w.p50_ms.has_value());
  EXPECT_EQ(*w.p50_ms, 50u);
  EXPECT_EQ(*w.p99_ms, 99u);
}

TEST(ProbeTracker, WindowForgetsOldResults) {
  ProbeTracker t(spec(), 10'000);
  t.record(false, 900, 1000, "timeout");
  t.record(true, 10, 6000, "");
  EXPECT_EQ(t.window(6000).samples, 2u);
  const WindowStats later = t.window(11'500);
  EXPECT_EQ(later.samples, 1u) << "the result at 1000 is older than 10 s";
  EXPECT_EQ(later.failures, 0u);
  EXPECT_EQ(*later.p99_ms, 10u);
  const WindowStats empty = t.window(100'000);
  EXPECT_EQ(empty.samples, 0u);
  EXPECT_DOUBLE_EQ(empty.error_ratio, 0.0);
  EXPECT_FALSE(empty.p50_ms.has_value());
}

TEST(ProbeTracker, WindowIsBoundedInCount) {
  ProbeTracker t(spec(), ProbeLimits::max_window_ms);
  for (std::uint64_t i = 0; i < 3 * ProbeLimits::max_window_samples; i++) {
    t.record(true, i, 1000 + i, "");
  }
  const WindowStats w = t.window(1000 + 3 * ProbeLimits::max_window_samples);
  EXPECT_EQ(w.samples, ProbeLimits::max_window_samples) << "the oldest are dropped";
  EXPECT_GE(*w.p50_ms, 2 * ProbeLimits::max_window_samples);
}

TEST(ProbeTracker, LongErrorsAreCut) {
  ProbeTracker t(spec());
  t.record(false, 1, 1000, std::string(5000, 'x'));
  EXPECT_EQ(t.last_error().size(), ProbeLimits::max_error_bytes);
  t.record(false, 1, 1001, "");
  EXPECT_EQ(t.last_error(), "failed") << "a failure without a reason still says something";
}

TEST(ProbeSpec, ValidationNamesTheField) {
  const auto error = [](auto change) {
    ProbeSpec s = spec();
    change(s);
    const Status st = validate_probe_spec(s, "health.probe[1].");
    return st.is_ok() ? std::string("(accepted)") : st.message();
  };
  EXPECT_EQ(error([](ProbeSpec&) {}), "(accepted)");
  EXPECT_EQ(error([](ProbeSpec& s) { s.name = ""; }).rfind("health.probe[1].name: ", 0), 0u);
  EXPECT_EQ(error([](ProbeSpec& s) { s.name = "a b"; }).rfind("health.probe[1].name: ", 0), 0u);
  EXPECT_EQ(error([](ProbeSpec& s) { s.name = std::string(65, 'a'); })
                .rfind("health.probe[1].name: ", 0),
            0u);
  EXPECT_EQ(error([](ProbeSpec& s) { s.interval_ms = 5; }).rfind("health.probe[1].interval: ", 0),
            0u);
  EXPECT_EQ(error([](ProbeSpec& s) { s.timeout_ms = 1000; }),
            "health.probe[1].timeout: must be at least 1ms and less than the interval (1000 ms), "
            "so one run ends before the next starts");
  EXPECT_EQ(error([](ProbeSpec& s) { s.timeout_ms = 0; }).rfind("health.probe[1].timeout: ", 0),
            0u);
  EXPECT_EQ(error([](ProbeSpec& s) { s.fall = 0; }), "health.probe[1].fall: must be between 1 "
                                                      "and 100");
  EXPECT_EQ(error([](ProbeSpec& s) { s.rise = 101; }), "health.probe[1].rise: must be between 1 "
                                                       "and 100");
  EXPECT_EQ(error([](ProbeSpec& s) { s.weight = 0; }).rfind("health.probe[1].weight: ", 0), 0u);
}

TEST(ProbeKind, NamesRoundTrip) {
  for (ProbeKind k : {ProbeKind::http, ProbeKind::tcp, ProbeKind::exec, ProbeKind::callback}) {
    EXPECT_EQ(parse_probe_kind(probe_kind_name(k)), k);
  }
  EXPECT_FALSE(parse_probe_kind("https").has_value());
}

}  // namespace
}  // namespace anya::engine::health

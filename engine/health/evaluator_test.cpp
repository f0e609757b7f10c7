#include "engine/health/evaluator.hpp"

#include <gtest/gtest.h>

namespace anya::engine::health {
namespace {

ProbeSpec probe(std::string name, std::uint32_t fall = 3, std::uint32_t rise = 2,
                std::uint32_t weight = 1) {
  ProbeSpec s;
  s.name = std::move(name);
  s.interval_ms = 1000;
  s.timeout_ms = 500;
  s.fall = fall;
  s.rise = rise;
  s.weight = weight;
  return s;
}

HealthPolicy two_probes(std::string_view rule) {
  HealthPolicy p;
  p.probes = {probe("signer-http", 3, 2), probe("bitcoind-rpc", 1, 1)};
  p.aggregation = *parse_aggregation(rule, "aggregate");
  return p;
}

TEST(HealthEvaluator, ANodeThatNeverRanItsProbesIsNotHealthy) {
  HealthEvaluator e(two_probes("all"));
  EXPECT_FALSE(e.verdict().healthy);
  EXPECT_EQ(e.verdict().explanation,
            "unhealthy: probe signer-http unknown (no result yet); probe bitcoind-rpc unknown "
            "(no result yet); 0 of 2 probes passing, rule all needs all 2");
  EXPECT_EQ(e.verdict().summary.failing_probes, 0b11u);
  EXPECT_FALSE(e.verdict().summary.healthy);
}

TEST(HealthEvaluator, TransitionsAreExplained) {
  HealthEvaluator e(two_probes("all"));
  std::uint64_t now = 1000;
  HealthUpdate u = e.record_probe(0, true, 3, now, "");
  EXPECT_TRUE(u.probe_changed);
  EXPECT_FALSE(u.verdict_changed);
  ASSERT_EQ(u.transitions.size(), 1u);
  EXPECT_EQ(u.transitions[0], "probe signer-http: unknown -> passing (1 in a row)");
  u = e.record_probe(1, true, 3, now, "");
  EXPECT_TRUE(u.verdict_changed);
  ASSERT_EQ(u.transitions.size(), 2u);
  EXPECT_EQ(u.transitions[1], "healthy: 2 of 2 probes passing, rule all needs all 2; "
                              "no resource limits");
  EXPECT_TRUE(e.verdict().healthy);
  EXPECT_TRUE(e.verdict().reasons.empty());

  for (int i = 0; i < 2; i++) {
    u = e.record_probe(0, false, 2, now += 1000, "connection refused");
    EXPECT_FALSE(u.verdict_changed) << "fall is 3";
    EXPECT_TRUE(u.transitions.empty());
  }
  u = e.record_probe(0, false, 2, now += 1000, "connection refused");
  EXPECT_TRUE(u.verdict_changed);
  ASSERT_EQ(u.transitions.size(), 2u);
  EXPECT_EQ(u.transitions[0], "probe signer-http: passing -> failing (3 consecutive failures: "
                              "connection refused)");
  EXPECT_EQ(u.transitions[1], "unhealthy: probe signer-http failing (3 consecutive failures: "
                              "connection refused); 1 of 2 probes passing, rule all needs all 2");
  EXPECT_EQ(e.verdict().summary.failing_probes, 0b01u);
}

TEST(HealthEvaluator, AggregationDecidesWhichFailuresMatter) {
  HealthEvaluator e(two_probes("any"));
  e.record_probe(0, true, 1, 1000, "");
  e.record_probe(1, false, 1, 1000, "rpc timeout");
  EXPECT_TRUE(e.verdict().healthy) << "any: one passing probe is enough";
  EXPECT_EQ(e.verdict().summary.failing_probes, 0b10u) << "the summary still shows it";

  HealthPolicy weighted;
  weighted.probes = {probe("a", 1, 1, 3), probe("b", 1, 1, 1), probe("c", 1, 1, 1)};
  weighted.aggregation = *parse_aggregation("weighted:3", "aggregate");
  HealthEvaluator w(weighted);
  w.record_probe(1, true, 1, 1000, "");
  w.record_probe(2, true, 1, 1000, "");
  EXPECT_FALSE(w.verdict().healthy) << "weight 2 of the 3 needed";
  w.record_probe(0, true, 1, 1000, "");
  EXPECT_TRUE(w.verdict().healthy);
}

HealthPolicy resources_only() {
  HealthPolicy p;
  p.limits.max_cpu_percent = 90;
  p.limits.min_disk_free_percent = 5;
  p.resource_fall = 2;
  p.resource_rise = 2;
  return p;
}

ResourceSample at(double cpu, double disk_free) {
  ResourceSample s;
  s.cpu_percent = cpu;
  s.data_dir_free_percent = disk_free;
  s.open_fds = 10;
  s.max_fds = 1000;
  return s;
}

TEST(HealthEvaluator, ResourcesNeedFallSamplesOverAndRiseUnder) {
  HealthEvaluator e(resources_only());
  EXPECT_TRUE(e.verdict().healthy) << "no probes, nothing known: healthy";
  std::uint64_t now = 1000;
  EXPECT_FALSE(e.record_resources(at(97, 50), now += 5000).verdict_changed);
  EXPECT_TRUE(e.verdict().healthy) << "one sample over is not enough";
  HealthUpdate u = e.record_resources(at(98, 50), now += 5000);
  EXPECT_TRUE(u.verdict_changed);
  ASSERT_EQ(u.transitions.size(), 2u);
  EXPECT_EQ(u.transitions[0], "resource cpu exceeded: cpu 98.0% above max_cpu_percent 90.0%");
  EXPECT_EQ(u.transitions[1], "unhealthy: cpu 98.0% above max_cpu_percent 90.0%");
  EXPECT_EQ(e.verdict().summary.exceeded, 1u << static_cast<unsigned>(Resource::cpu));
  EXPECT_EQ(e.verdict().summary.cpu_percent, 98);
  EXPECT_EQ(e.verdict().summary.disk_used_percent, 50);
  EXPECT_EQ(e.verdict().summary.fd_percent, 1);
  ASSERT_EQ(e.exceeded().size(), 1u);
  EXPECT_EQ(e.exceeded()[0].resource, Resource::cpu);

  EXPECT_FALSE(e.record_resources(at(10, 50), now += 5000).verdict_changed);
  ResourceSample unknown;  // the sampler failed: the state holds
  EXPECT_FALSE(e.record_resources(unknown, now += 5000).verdict_changed);
  EXPECT_EQ(e.verdict().summary.cpu_percent, kUnknownLevel);
  u = e.record_resources(at(10, 50), now += 5000);
  EXPECT_TRUE(u.verdict_changed);
  EXPECT_EQ(u.transitions[0], "resource cpu back within its limit: cpu 10.0% within "
                              "max_cpu_percent 90.0%");
  EXPECT_TRUE(e.verdict().healthy);
}

TEST(HealthEvaluator, ExceededResourcesMakeTheNodeUnhealthyWhateverTheProbesSay) {
  HealthPolicy p = resources_only();
  p.probes = {probe("svc", 1, 1)};
  p.resource_fall = 1;
  HealthEvaluator e(p);
  e.record_probe(0, true, 1, 1000, "");
  ASSERT_TRUE(e.verdict().healthy);
  e.record_resources(at(5, 1), 1000);
  EXPECT_FALSE(e.verdict().healthy);
  ASSERT_EQ(e.verdict().reasons.size(), 1u);
  EXPECT_EQ(e.verdict().reasons[0], "disk free 1.0% below min_disk_free_percent 5.0%");
}

TEST(HealthEvaluator, PolicyValidationNamesTheField) {
  const auto error = [](auto change) {
    HealthPolicy p = two_probes("all");
    change(p);
    const Status s = validate_health_policy(p, "health.");
    return s.is_ok() ? std::string("(accepted)") : s.message();
  };
  EXPECT_EQ(error([](HealthPolicy&) {}), "(accepted)");
  EXPECT_EQ(error([](HealthPolicy& p) { p.probes[1].name = "signer-http"; }),
            "health.probe[1].name: \"signer-http\" names another probe too");
  EXPECT_EQ(error([](HealthPolicy& p) { p.probes[1].timeout_ms = 5000; })
                .rfind("health.probe[1].timeout: ", 0),
            0u);
  EXPECT_EQ(error([](HealthPolicy& p) {
              p.aggregation = *parse_aggregation("at_least:3", "x");
            }),
            "health.aggregate: at_least:3 needs at least 3 probes; 2 are configured");
  EXPECT_EQ(error([](HealthPolicy& p) {
              p.probes.resize(33, probe("x"));
              for (std::size_t i = 0; i < p.probes.size(); i++) {
                p.probes[i].name = "p" + std::to_string(i);
              }
            }),
            "health.probe: at most 32 probes (33 given)");
  EXPECT_EQ(error([](HealthPolicy& p) { p.resource_fall = 0; }),
            "health.resource_fall: must be between 1 and 100");
  EXPECT_EQ(error([](HealthPolicy& p) { p.resource_rise = 101; }),
            "health.resource_rise: must be between 1 and 100");
  EXPECT_EQ(error([](HealthPolicy& p) { p.window_ms = 10; }),
            "health.window: must be between 1s and 1h");
  EXPECT_EQ(error([](HealthPolicy& p) { p.limits.max_fd_percent = 0; }),
            "health.max_fd_percent: must be between 1 and 100");
}

TEST(HealthEvaluator, ThirtyTwoProbesFillTheSummaryBitmap) {
  HealthPolicy p;
  for (int i = 0; i < 32; i++) p.probes.push_back(probe("p" + std::to_string(i), 1, 1));
  HealthEvaluator e(p);
  EXPECT_EQ(e.verdict().summary.failing_probes, 0xFFFFFFFFu);
  for (std::size_t i = 0; i < 32; i++) e.record_probe(i, i != 31, 1, 1000, "down");
  EXPECT_EQ(e.verdict().summary.failing_probes, 0x80000000u);
  EXPECT_EQ(e.verdict().summary.probe_count, 32);
  Result<HealthSummary> back = decode_summary(encode_summary(e.verdict().summary));
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, e.verdict().summary);
}

}  // namespace
}  // namespace anya::engine::health

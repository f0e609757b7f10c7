#include "engine/health/aggregation.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace anya::engine::health {
namespace {

Aggregation parse(std::string_view text) {
  Result<Aggregation> a = parse_aggregation(text, "health.aggregate");
  EXPECT_TRUE(a.is_ok()) << a.status().message();
  return a.is_ok() ? *a : Aggregation{};
}

std::string parse_error(std::string_view text) {
  Result<Aggregation> a = parse_aggregation(text, "health.aggregate");
  return a.is_ok() ? std::string("(accepted)") : a.status().message();
}

std::vector<ProbeSpec> probes(std::vector<std::uint32_t> weights) {
  std::vector<ProbeSpec> out;
  for (std::size_t i = 0; i < weights.size(); i++) {
    ProbeSpec s;
    s.name = "p" + std::to_string(i);
    s.weight = weights[i];
    out.push_back(s);
  }
  return out;
}

TEST(Aggregation, ParsesEveryFormAndRendersItBack) {
  for (std::string_view text : {"all", "any", "at_least:2", "weighted:30"}) {
    EXPECT_EQ(aggregation_text(parse(text)), text);
  }
  EXPECT_EQ(parse("at_least:2"), (Aggregation{Aggregation::Rule::at_least, 2}));
}

TEST(Aggregation, BadTextNamesTheField) {
  EXPECT_EQ(parse_error("most"), "health.aggregate: \"most\": expected \"all\", \"any\", "
                                 "\"at_least:K\" or \"weighted:W\"");
  EXPECT_EQ(parse_error("at_least"), "health.aggregate: \"at_least\" needs a number after ':' "
                                     "(e.g. \"at_least:2\")");
  for (std::string_view bad : {"at_least:", "at_least:0", "at_least:-1", "weighted:2x",
                               "weighted:99999999999"}) {
    EXPECT_NE(parse_error(bad).find("health.aggregate: \"" + std::string(bad) +
                                    "\": the number after ':' must be a positive whole number"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(parse_error("ALL").find("expected"), std::string::npos) << "names are lower case";
}

TEST(Aggregation, ThresholdsAreCheckedAgainstTheProbes) {
  const auto error = [](std::string_view text, std::vector<std::uint32_t> weights) {
    const Status s = validate_aggregation(parse(text), probes(weights), "health.aggregate");
    return s.is_ok() ? std::string("(accepted)") : s.message();
  };
  EXPECT_EQ(error("at_least:3", {1, 1, 1}), "(accepted)");
  EXPECT_EQ(error("at_least:4", {1, 1, 1}),
            "health.aggregate: at_least:4 needs at least 4 probes; 3 are configured");
  EXPECT_EQ(error("weighted:5", {2, 3}), "(accepted)");
  EXPECT_EQ(error("weighted:6", {2, 3}),
            "health.aggregate: weighted:6 is more than the probes' weights add up to (5)");
  EXPECT_EQ(error("all", {}), "(accepted)");
  EXPECT_EQ(error("at_least:1", {}),
            "health.aggregate: at_least:1 needs at least 1 probes; 0 are configured");
}

TEST(Aggregation, EachRuleCountsPassingProbes) {
  const std::vector<ProbeVote> votes = {{true, 1}, {false, 5}, {true, 2}};
  EXPECT_FALSE(aggregate(parse("all"), votes).healthy);
  EXPECT_TRUE(aggregate(parse("any"), votes).healthy);
  EXPECT_TRUE(aggregate(parse("at_least:2"), votes).healthy);
  EXPECT_FALSE(aggregate(parse("at_least:3"), votes).healthy);
  EXPECT_TRUE(aggregate(parse("weighted:3"), votes).healthy);
  EXPECT_FALSE(aggregate(parse("weighted:4"), votes).healthy);
  const std::vector<ProbeVote> none_passing = {{false, 1}, {false, 1}};
  EXPECT_FALSE(aggregate(parse("any"), none_passing).healthy);
  const AggregateResult r = aggregate(parse("weighted:4"), votes);
  EXPECT_EQ(r.passing, 2u);
  EXPECT_EQ(r.passing_weight, 3u);
  EXPECT_EQ(r.total_weight, 8u);
  EXPECT_EQ(r.describe(parse("weighted:4")),
            "2 of 3 probes passing (weight 3 of 8), rule weighted:4 needs weight 4");
  EXPECT_EQ(aggregate(parse("all"), votes).describe(parse("all")),
            "2 of 3 probes passing, rule all needs all 3");
}

TEST(Aggregation, NoProbesIsHealthyUnderEveryRule) {
  for (std::string_view text : {"all", "any"}) {
    EXPECT_TRUE(aggregate(parse(text), std::vector<ProbeVote>{}).healthy) << text;
  }
}

}  // namespace
}  // namespace anya::engine::health

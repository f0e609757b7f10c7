// How the states of a node's probes make one verdict. Written in the configuration as text:
//
//   "all"          every probe passing (the default)
//   "any"          at least one probe passing
//   "at_least:K"   at least K probes passing; 1 <= K <= the number of probes
//   "weighted:W"   the weights of the passing probes add up to at least W;
//                  1 <= W <= the sum of all the weights
//
// A probe counts as passing only in state passing: unknown (no result yet) counts as failing.
// With no probes at all, the probes say nothing against the node: the verdict is healthy under
// every rule (resources may still make it unhealthy; see evaluator.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/health/probe.hpp"

namespace anya::engine::health {

struct Aggregation {
  enum class Rule : std::uint8_t { all, any, at_least, weighted };
  Rule rule = Rule::all;
  // at_least: K probes; weighted: the weight W. 0 for all and any.
  std::uint32_t threshold = 0;

  friend bool operator==(const Aggregation&, const Aggregation&) = default;
};

// Parses the text above. Errc::invalid_argument beginning with `field` ("health.aggregate: ").
Result<Aggregation> parse_aggregation(std::string_view text, std::string_view field);
// The text parse_aggregation reads back: "all", "any", "at_least:2", "weighted:3".
std::string aggregation_text(const Aggregation& aggregation);
// Checks the threshold against the probes it will count. Messages begin with `field`.
Status validate_aggregation(const Aggregation& aggregation, std::span<const ProbeSpec> probes,
                            std::string_view field);

struct ProbeVote {
  bool passing = false;
  std::uint32_t weight = 1;
};

struct AggregateResult {
  bool healthy = true;
  std::uint32_t passing = 0;          // probes passing
  std::uint32_t total = 0;            // probes counted
  std::uint64_t passing_weight = 0;
  std::uint64_t total_weight = 0;
  // For people: "2 of 3 probes passing, rule at_least:2 needs 2".
  std::string describe(const Aggregation& aggregation) const;
};

AggregateResult aggregate(const Aggregation& aggregation, std::span<const ProbeVote> votes);

}  // namespace anya::engine::health

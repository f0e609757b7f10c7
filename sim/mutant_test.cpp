// Proof that the simulator finds real bugs: this executable is built with one deliberately
// broken engine variant (ANYA_MUTANT, see engine/base/mutants.hpp) and must catch it within a
// bounded number of swarm seeds. It prints how many seeds that took.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "engine/base/mutants.hpp"
#include "sim/scenarios.hpp"
#include "sim/simulation.hpp"

#ifndef ANYA_MUTANT
#error "mutant_test.cpp is built only with -DANYA_MUTANT=<id>"
#endif

namespace anya::sim {
namespace {

constexpr std::uint64_t kMaxSeeds = 400;

TEST(Mutant, SimulatorCatchesIt) {
  static_assert(mutants::kActive != mutants::none);
  std::uint64_t first = 1;
  if (const char* from = std::getenv("ANYA_MUTANT_FROM")) first = std::strtoull(from, nullptr, 10);
  for (std::uint64_t seed = first; seed < first + kMaxSeeds; seed++) {
    // Each seed runs the swarm, the two harshest named scenarios, the one whose quorum
    // outages leave many learners up, the two that aim at reads and leases, and the one whose
    // Bitcoin backends diverge, and the one whose wallets contend for outpoints.
    for (const char* scenario : {"swarm", "leader-churn", "figure-8", "many-learners",
                                 "stale-reads", "slow-clocks", "chain-divergence",
                                 "utxo-contention"}) {
      Simulation sim(*scenario_options(scenario, seed, 0));
      RunResult r = sim.run();
      if (!r.ok) {
        std::printf("mutant %s caught at seed %llu (%llu seeds tried), scenario %s: %s\n",
                    ANYA_MUTANT_NAME, static_cast<unsigned long long>(seed),
                    static_cast<unsigned long long>(seed - first + 1), scenario,
                    r.violation.c_str());
        RecordProperty("seeds_needed", static_cast<int>(seed - first + 1));
#ifdef ANYA_MUTANT_EXPECT
        // Caught, and by the checker meant for it: proof that this checker bites.
        EXPECT_EQ(r.violation.rfind(ANYA_MUTANT_EXPECT, 0), 0u)
            << "expected the " << ANYA_MUTANT_EXPECT << " checker to catch it first";
#endif
        return;
      }
    }
  }
  FAIL() << "mutant " << ANYA_MUTANT_NAME << " survived " << kMaxSeeds << " swarm seeds";
}

}  // namespace
}  // namespace anya::sim

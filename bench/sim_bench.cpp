// Simulator speed: simulated time per wall second and events per second for a 5-node cluster
// with 50 ms heartbeats and faults on (crashes, partitions, pauses, clock jumps, 1% loss), with
// and without client load. Run: build/bench/sim_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "sim/simulation.hpp"

namespace anya::sim {
namespace {

SimOptions five_nodes_faults_on(std::uint64_t seed, std::uint64_t propose_every_ms) {
  SimOptions o;
  o.seed = seed;
  o.scenario = "bench";
  o.nodes = 5;
  o.heartbeat_ms = 50;
  o.election_timeout_ms = 300;
  o.safety_ms = 60'000;
  o.propose_every_ms = propose_every_ms;
  o.link.loss_ppm = 10'000;
  o.link.reorder_ppm = 10'000;
  o.faults.crash_every_ms = 3000;
  o.faults.partition_every_ms = 4000;
  o.faults.pause_every_ms = 6000;
  o.faults.clock_jump_every_ms = 5000;
  o.faults.torn_write_ppm = 500'000;
  o.clocks.max_drift_ppm = 200;
  return o;
}

void BM_Simulate(benchmark::State& state) {
  std::uint64_t seed = 1;
  double sim_seconds = 0;
  double events = 0;
  for (auto _ : state) {
    Simulation sim(five_nodes_faults_on(seed++, static_cast<std::uint64_t>(state.range(0))));
    RunResult r = sim.run();
    if (!r.ok) state.SkipWithError(r.violation.c_str());
    sim_seconds += static_cast<double>(r.stats.sim_time_us) / 1e6;
    events += static_cast<double>(r.stats.events);
  }
  state.counters["sim_s_per_wall_s"] = benchmark::Counter(sim_seconds, benchmark::Counter::kIsRate);
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
}
// Argument: milliseconds between client proposals (a large value means nearly idle).
BENCHMARK(BM_Simulate)->Arg(1'000'000)->Arg(100)->Arg(20)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace anya::sim

BENCHMARK_MAIN();

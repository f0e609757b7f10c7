// The engine alone, no I/O: one heartbeat round trip, one proposal committed in a 3- and a 5-node
// in-memory cluster (zero-latency network, instant storage, invariant checker off), and the wire
// codec's encode and decode. Run: build/bench/engine_bench (or `meson test --benchmark`).
#include <benchmark/benchmark.h>

#include "engine/codec/codec.hpp"
#include "engine/testing/cluster.hpp"

namespace anya::engine {
namespace {

testing::ClusterOptions bench_options(std::size_t voters, std::uint64_t heartbeat_ms) {
  testing::ClusterOptions o;
  o.voters = voters;
  o.heartbeat_interval_ms = heartbeat_ms;
  o.election_timeout_ms = 10'000;  // no elections during the measurement
  o.check_invariants = false;
  return o;
}

// One heartbeat from the leader to every follower and every response, per iteration.
void BM_HeartbeatRoundTrip(benchmark::State& state) {
  testing::Cluster c(bench_options(static_cast<std::size_t>(state.range(0)), 1));
  if (!c.run_until_leader(60'000)) state.SkipWithError("no leader");
  const std::uint64_t before = c.messages_delivered();
  for (auto _ : state) c.run_for(1);  // heartbeat interval is 1 ms: one round per ms
  state.counters["msgs/round"] = benchmark::Counter(
      static_cast<double>(c.messages_delivered() - before) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_HeartbeatRoundTrip)->Arg(3)->Arg(5);

// Propose on the leader and deliver until the entry is applied on the leader.
void BM_ProposalCommitted(benchmark::State& state) {
  testing::Cluster c(bench_options(static_cast<std::size_t>(state.range(0)), 1000));
  auto leader = c.run_until_leader(60'000);
  if (!leader) {
    state.SkipWithError("no leader");
    return;
  }
  const std::string value(256, 'v');
  for (auto _ : state) {
    Result<Index> index = c.propose(*leader, value);  // delivers until the network is quiet
    if (!index || c.raft(*leader).log().applied() < *index) state.SkipWithError("not committed");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ProposalCommitted)->Arg(3)->Arg(5);

Message append_with_entries(std::size_t count, std::size_t bytes) {
  Message m;
  m.type = MessageType::append;
  m.from = 1;
  m.to = 2;
  m.term = 7;
  m.log_term = 7;
  m.index = 1000;
  m.commit = 999;
  for (std::size_t i = 0; i < count; i++) {
    m.entries.push_back(Entry{7, 1001 + i, EntryType::normal, std::string(bytes, 'x')});
  }
  return m;
}

void BM_Encode(benchmark::State& state) {
  const Message m = append_with_entries(static_cast<std::size_t>(state.range(0)), 256);
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string frame = encode_message(m);
    bytes += frame.size();
    benchmark::DoNotOptimize(frame);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_Encode)->Arg(0)->Arg(1)->Arg(64);

void BM_Decode(benchmark::State& state) {
  const std::string frame = encode_message(append_with_entries(
      static_cast<std::size_t>(state.range(0)), 256));
  for (auto _ : state) {
    Result<Message> m = decode_message(frame);
    if (!m) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_Decode)->Arg(0)->Arg(1)->Arg(64);

}  // namespace
}  // namespace anya::engine

BENCHMARK_MAIN();

// anya-sim: the simulation runner.
//
//   anya-sim run --seed S [--scenario NAME] [--nodes N] [--duration D] [--timeline FILE]
//   anya-sim swarm --seeds N [--from S] [--jobs J] [--scenario NAME] [--tap]
//   anya-sim scenarios
//
// Exit codes: 0 every run passed, 1 a run found a violation, 2 bad usage.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sim/linearizability.hpp"
#include "sim/scenarios.hpp"
#include "sim/simulation.hpp"

namespace {

using anya::sim::RunResult;

// The seed each swarm worker is running, so that an engine assertion (which aborts the whole
// process) still tells which seed to replay. Read only by the SIGABRT handler.
constexpr std::size_t kMaxJobs = 256;
std::atomic<std::uint64_t> g_running_seed[kMaxJobs];
std::string g_running_scenario = "swarm";

void on_abort(int) {
  const char head[] = "anya-sim: aborted while running seed(s):";
  (void)!write(STDERR_FILENO, head, sizeof head - 1);
  for (auto& slot : g_running_seed) {
    std::uint64_t seed = slot.load();
    if (seed == 0) continue;
    char buf[24];
    int n = 0;
    do {
      buf[sizeof buf - 1 - n++] = static_cast<char>('0' + seed % 10);
      seed /= 10;
    } while (seed != 0 && n < 20);
    (void)!write(STDERR_FILENO, " ", 1);
    (void)!write(STDERR_FILENO, buf + sizeof buf - n, static_cast<std::size_t>(n));
  }
  const char tail[] = "\nreplay each with: anya-sim run --seed S (add --scenario if not swarm)\n";
  (void)!write(STDERR_FILENO, tail, sizeof tail - 1);
  std::signal(SIGABRT, SIG_DFL);
}
using anya::sim::SimOptions;

int usage(const std::string& problem) {
  std::fprintf(stderr,
               "anya-sim: %s\n"
               "usage:\n"
               "  anya-sim run --seed S [--scenario NAME] [--nodes N] [--duration D] "
               "[--timeline FILE]\n"
               "  anya-sim swarm --seeds N [--from S] [--jobs J] [--scenario NAME] [--tap]\n"
               "  anya-sim scenarios\n"
               "  anya-sim check-history FILE   (a KV history from real processes; see "
               "sim/linearizability.hpp)\n"
               "D is a duration with a unit: 500ms, 20s, 2m.\n",
               problem.c_str());
  return 2;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> parse_duration_ms(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') digits++;
  auto number = parse_u64(text.substr(0, digits));
  if (!number) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") return *number;
  if (unit == "s") return *number * 1000;
  if (unit == "m") return *number * 60'000;
  return std::nullopt;
}

struct Args {
  std::map<std::string, std::string> values;
  std::vector<std::string> flags;  // flags without a value
};

// Parses --name value pairs; `boolean` names take no value.
std::optional<std::string> parse_args(int argc, char** argv, int from,
                                      const std::vector<std::string>& allowed,
                                      const std::vector<std::string>& boolean, Args& out) {
  for (int i = from; i < argc; i++) {
    std::string flag = argv[i];
    if (std::find(boolean.begin(), boolean.end(), flag) != boolean.end()) {
      out.flags.push_back(flag);
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), flag) == allowed.end()) {
      return "unknown flag " + flag;
    }
    if (i + 1 >= argc) return "flag " + flag + " needs a value";
    out.values[flag] = argv[++i];
  }
  return std::nullopt;
}

std::string replay_command(const SimOptions& o) {
  std::string cmd = "anya-sim run --seed " + std::to_string(o.seed);
  if (o.scenario != "swarm") cmd += " --scenario " + o.scenario;
  return cmd;
}

void print_result(const SimOptions& o, const RunResult& r, double wall_s) {
  const auto& s = r.stats;
  std::printf("%s\n", o.describe().c_str());
  std::printf("events %llu, simulated %.1f s in %.3f s wall (%.0fx), delivered %llu, dropped %llu\n",
              static_cast<unsigned long long>(s.events), s.sim_time_us / 1e6, wall_s,
              wall_s > 0 ? s.sim_time_us / 1e6 / wall_s : 0.0,
              static_cast<unsigned long long>(s.messages_delivered),
              static_cast<unsigned long long>(s.messages_dropped));
  std::printf("faults: %llu crashes, %llu restarts, %llu pauses, %llu partitions, %llu clock "
              "jumps, %llu torn records, %llu corrupt disks, %llu storage fail-stops\n",
              static_cast<unsigned long long>(s.crashes), static_cast<unsigned long long>(s.restarts),
              static_cast<unsigned long long>(s.pauses), static_cast<unsigned long long>(s.partitions),
              static_cast<unsigned long long>(s.clock_jumps),
              static_cast<unsigned long long>(s.torn_records),
              static_cast<unsigned long long>(s.disks_corrupted),
              static_cast<unsigned long long>(s.storage_failures));
  std::printf("cluster: max term %llu, max commit %llu, %llu leader changes, %llu/%llu proposals "
              "acknowledged, recovered %llu ms after healing\n",
              static_cast<unsigned long long>(s.max_term),
              static_cast<unsigned long long>(s.max_commit),
              static_cast<unsigned long long>(s.leader_changes),
              static_cast<unsigned long long>(s.acked), static_cast<unsigned long long>(s.proposals),
              static_cast<unsigned long long>(s.liveness_recovery_ms));
  std::printf("membership: %llu changes; configuration: %llu transactions, highest version "
              "activated %llu, %llu versions aborted\n",
              static_cast<unsigned long long>(s.membership_changes),
              static_cast<unsigned long long>(s.config_writes),
              static_cast<unsigned long long>(s.config_activated),
              static_cast<unsigned long long>(s.config_aborted));
  std::printf("snapshots: %llu taken, %llu installed from a leader, %llu restored on restart\n",
              static_cast<unsigned long long>(s.snapshots_taken),
              static_cast<unsigned long long>(s.snapshots_installed),
              static_cast<unsigned long long>(s.snapshots_restored));
  const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("clients: %llu operations with a known outcome (%llu reads, %llu by lease), %llu "
              "unknown, %llu refused; %llu asked of a paused node; linearizable (%llu search "
              "steps%s)\n",
              u(s.kv_ops), u(s.kv_reads), u(s.kv_lease_reads), u(s.kv_unknown), u(s.kv_refused),
              u(s.kv_calls_while_paused), u(s.linearizability_steps),
              s.linearizability_inconclusive ? ", some key inconclusive" : "");
  std::printf("leases: %llu instants with a lease held, %llu transfers, %llu fast failovers, "
              "%llu late requests refused by the fenced resource\n",
              u(s.lease_checks), u(s.transfers), u(s.fast_failovers), u(s.fence_refused));
  std::printf("records: %s\n", s.records.describe().c_str());
  if (s.chain_blocks > 0) {
    std::printf("chain: %llu blocks, %llu backend stalls, %llu blind probes, %llu leaderships "
                "ended behind the chain, longest led while behind %llu ms\n",
                u(s.chain_blocks), u(s.chain_stalls), u(s.chain_blinds), u(s.chain_handoffs),
                u(s.chain_behind_max_ms));
  }
  if (s.config_crashes_in_prepare + s.config_crashes_in_commit + s.config_races > 0) {
    std::printf("forced: %llu leader crashes during PREPARE, %llu during COMMIT; %llu config "
                "races (%llu won, %llu refused with the current version)\n",
                u(s.config_crashes_in_prepare), u(s.config_crashes_in_commit), u(s.config_races),
                u(s.config_race_wins), u(s.config_race_conflicts));
  }
  if (s.quorum_outages > 0 || s.learners_reported > 0) {
    std::printf("learners: %llu voter-majority outages (%llu live learners during them, no "
                "commit), %llu learners reported caught up by the leader\n",
                u(s.quorum_outages), u(s.outage_live_learners), u(s.learners_reported));
  }
  if (!s.config_converge_ms.empty()) {
    std::vector<std::uint64_t> v = s.config_converge_ms;
    std::sort(v.begin(), v.end());
    std::printf("configuration changes converged on every member: %zu, median %llu ms, "
                "p90 %llu ms, max %llu ms (virtual time)\n",
                v.size(), static_cast<unsigned long long>(v[v.size() / 2]),
                static_cast<unsigned long long>(v[v.size() * 9 / 10]),
                static_cast<unsigned long long>(v.back()));
  }
  std::printf("hash %016llx\n", static_cast<unsigned long long>(r.hash));
  if (!r.ok) {
    std::printf("VIOLATION: %s\nreplay: %s\n", r.violation.c_str(), replay_command(o).c_str());
  } else {
    std::printf("ok\n");
  }
}

int cmd_run(int argc, char** argv) {
  Args a;
  if (auto err = parse_args(argc, argv, 2,
                            {"--seed", "--scenario", "--nodes", "--duration", "--timeline"}, {},
                            a)) {
    return usage(*err);
  }
  if (!a.values.count("--seed")) return usage("run needs --seed S");
  auto seed = parse_u64(a.values["--seed"]);
  if (!seed) return usage("--seed: not a number: " + a.values["--seed"]);
  std::uint32_t nodes = 0;
  if (a.values.count("--nodes")) {
    auto n = parse_u64(a.values["--nodes"]);
    if (!n || *n < 1 || *n > 7) return usage("--nodes: must be 1 to 7");
    nodes = static_cast<std::uint32_t>(*n);
  }
  const std::string scenario = a.values.count("--scenario") ? a.values["--scenario"] : "swarm";
  auto options = anya::sim::scenario_options(scenario, *seed, nodes);
  if (!options) return usage("--scenario: unknown scenario " + scenario + " (see anya-sim scenarios)");
  if (a.values.count("--duration")) {
    auto d = parse_duration_ms(a.values["--duration"]);
    if (!d || *d == 0) return usage("--duration: expected a duration like 500ms, 20s or 2m");
    options->safety_ms = *d;
  }
  anya::sim::Simulation sim(*options);
  if (a.values.count("--timeline")) sim.record_timeline();
  const auto start = std::chrono::steady_clock::now();
  RunResult r = sim.run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_result(*options, r, wall);
  if (a.values.count("--timeline")) {
    std::ofstream out(a.values["--timeline"]);
    out << sim.timeline()->render_html("anya-sim " + replay_command(*options) + " -- " +
                                           (r.ok ? "ok" : r.violation),
                                       options->nodes);
    if (!out) {
      std::fprintf(stderr, "anya-sim: cannot write timeline %s\n", a.values["--timeline"].c_str());
      return 1;
    }
    std::printf("timeline written to %s\n", a.values["--timeline"].c_str());
  }
  return r.ok ? 0 : 1;
}

int cmd_swarm(int argc, char** argv) {
  Args a;
  if (auto err = parse_args(argc, argv, 2, {"--seeds", "--from", "--jobs", "--scenario"},
                            {"--tap"}, a)) {
    return usage(*err);
  }
  if (!a.values.count("--seeds")) return usage("swarm needs --seeds N");
  auto count = parse_u64(a.values["--seeds"]);
  if (!count || *count == 0) return usage("--seeds: must be a positive number");
  auto from = a.values.count("--from") ? parse_u64(a.values["--from"]) : std::optional<std::uint64_t>(1);
  if (!from) return usage("--from: not a number");
  auto jobs = a.values.count("--jobs") ? parse_u64(a.values["--jobs"])
                                       : std::optional<std::uint64_t>(std::max(1u, std::thread::hardware_concurrency()));
  if (!jobs || *jobs == 0 || *jobs > kMaxJobs) return usage("--jobs: must be 1 to 256");
  const std::string scenario = a.values.count("--scenario") ? a.values["--scenario"] : "swarm";
  if (!anya::sim::scenario_options(scenario, 1, 0)) return usage("--scenario: unknown scenario " + scenario);
  const bool tap = std::find(a.flags.begin(), a.flags.end(), "--tap") != a.flags.end();
  const bool tty = !tap && isatty(STDERR_FILENO);

  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  std::map<std::uint64_t, std::pair<SimOptions, RunResult>> results;
  std::uint64_t done = 0, failures = 0, sim_us = 0, events = 0;
  anya::sim::RecordStats records;  // summed over the seeds
  const auto start = std::chrono::steady_clock::now();
  auto last_print = start;
  std::signal(SIGABRT, on_abort);
  std::atomic<std::size_t> next_slot{0};
  auto worker = [&] {
    const std::size_t slot = next_slot.fetch_add(1);
    for (;;) {
      const std::uint64_t i = next.fetch_add(1);
      if (i >= *count) {
        g_running_seed[slot] = 0;
        return;
      }
      const std::uint64_t seed = *from + i;
      g_running_seed[slot] = seed;
      SimOptions o = *anya::sim::scenario_options(scenario, seed, 0);
      anya::sim::Simulation sim(o);
      RunResult r = sim.run();
      std::lock_guard<std::mutex> lock(mu);
      done++;
      failures += r.ok ? 0 : 1;
      sim_us += r.stats.sim_time_us;
      events += r.stats.events;
      records.add(r.stats.records);
      if (!r.ok) {
        std::fprintf(stderr, "%sFAIL seed %llu: %s\n  replay: %s\n", tty ? "\r\033[K" : "",
                     static_cast<unsigned long long>(seed), r.violation.c_str(),
                     replay_command(o).c_str());
      }
      results.emplace(seed, std::make_pair(o, r));
      const auto now = std::chrono::steady_clock::now();
      const double wall = std::chrono::duration<double>(now - start).count();
      if (!tap && (tty || now - last_print > std::chrono::seconds(10) || done == *count)) {
        last_print = now;
        const int width = 30;
        const int filled = static_cast<int>(width * done / *count);
        std::fprintf(stderr, "%s[%s%s] %llu/%llu seeds, %llu failed, %.0fx real time%s",
                     tty ? "\r\033[K" : "", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(*count),
                     static_cast<unsigned long long>(failures), wall > 0 ? sim_us / 1e6 / wall : 0.0,
                     tty ? "" : "\n");
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::uint64_t j = 0; j < std::min(*jobs, *count); j++) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\n");
  if (tap) {
    std::printf("1..%llu\n", static_cast<unsigned long long>(*count));
    std::uint64_t k = 0;
    for (const auto& [seed, pr] : results) {
      const auto& [o, r] = pr;
      std::printf("%s %llu - seed %llu nodes %u %s\n", r.ok ? "ok" : "not ok",
                  static_cast<unsigned long long>(++k), static_cast<unsigned long long>(seed),
                  o.nodes, r.ok ? "" : ("# " + r.violation + " replay: " + replay_command(o)).c_str());
    }
  }
  std::fprintf(tap ? stderr : stdout,
               "swarm: %llu seeds from %llu, %llu passed, %llu failed; simulated %.0f s in %.1f s "
               "wall (%.0fx real time), %.0f events/s\n",
               static_cast<unsigned long long>(*count), static_cast<unsigned long long>(*from),
               static_cast<unsigned long long>(*count - failures),
               static_cast<unsigned long long>(failures), sim_us / 1e6, wall,
               wall > 0 ? sim_us / 1e6 / wall : 0.0, wall > 0 ? events / wall : 0.0);
  std::fprintf(tap ? stderr : stdout, "records: %s\n", records.describe().c_str());
  return failures == 0 ? 0 : 1;
}

// Exit 0: linearizable; 1: not (the key and its operations are printed), or undecided within
// the search bound (a correct history is decided in about one step per operation); 2: bad file.
int cmd_check_history(int argc, char** argv) {
  if (argc != 3) return usage("check-history needs exactly one FILE");
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) return usage(std::string("check-history: cannot read ") + argv[2]);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto history = anya::sim::parse_history(text);
  if (!history) return usage(std::string(argv[2]) + ": " + history.status().message());
  const anya::sim::LinearizabilityResult r =
      anya::sim::check_linearizable(*history, 20'000'000);
  if (r.inconclusive) {
    std::printf("UNDECIDED: the search for an order gave up after %llu steps on %llu "
                "operations\n",
                static_cast<unsigned long long>(r.steps),
                static_cast<unsigned long long>(r.operations));
    return 1;
  }
  if (!r.ok) {
    std::printf("NOT LINEARIZABLE: key %s (%llu operations checked)\n%s", r.key.c_str(),
                static_cast<unsigned long long>(r.operations), r.explanation.c_str());
    return 1;
  }
  std::printf("linearizable: %llu operations, %llu search steps\n",
              static_cast<unsigned long long>(r.operations),
              static_cast<unsigned long long>(r.steps));
  return 0;
}

int cmd_scenarios() {
  for (const auto& s : anya::sim::scenario_catalogue()) {
    std::printf("%-20s %s\n", s.name.c_str(), s.description.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("missing command");
  const std::string_view cmd = argv[1];
  if (cmd == "run") return cmd_run(argc, argv);
  if (cmd == "swarm") return cmd_swarm(argc, argv);
  if (cmd == "scenarios") return cmd_scenarios();
  if (cmd == "check-history") return cmd_check_history(argc, argv);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage("the simulation runner");
    return 0;
  }
  return usage("unknown command " + std::string(cmd));
}

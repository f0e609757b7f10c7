// Runs the node's health probes and samples its resources, and feeds the results to the
// engine's HealthEvaluator (engine/health), which makes every decision. I/O only:
//
//   - each probe runs every `interval` (from one run's start to the next), at most one run in
//     flight per probe. HTTP(S) and TCP probes run asynchronously on the io_context; exec and
//     callback probes block, so they run on a small thread pool of the monitor's (one thread per
//     such probe) and their results are posted back to the io thread.
//   - a run that does not return in time fails: exec probes are killed by their runner at the
//     timeout; a callback that has not returned after its timeout is recorded as failed by a
//     watchdog, and every interval it stays stuck counts one more failure (a run is never
//     started beside it).
//   - resources are sampled every resource_interval (the first at start, without a CPU figure).
//   - every result is recorded with the time from the steady clock the node passes in, and
//     every change the evaluator reports (a probe's state, a resource's exceeded flag, the
//     verdict) is handed to the listener on the io thread, with the verdict after it.
//
// Everything but the pool's threads runs on the io thread; nothing here locks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/health/evaluator.hpp"
#include "transport/config/node_config.hpp"
#include "transport/health/network_probes.hpp"
#include "transport/health/resource_sampler.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace anya::transport {

// A callback probe: the embedding program's check. Ok passes; an error fails with its message
// as the reason; an exception fails too. It runs on a thread of the monitor's, and must return
// within the probe's timeout (it cannot be interrupted: shutdown waits for it).
using HealthCheck = std::function<Status()>;
// The function registered for a callback probe, by the probe's name; null when none is.
using HealthCheckLookup = std::function<HealthCheck(const std::string& name)>;

using HealthListener = std::function<void(const engine::health::HealthUpdate& update,
                                          const engine::health::HealthVerdict& verdict)>;

struct HealthMonitorOptions {
  HealthConfig config;                    // validated (validate_health)
  std::filesystem::path data_dir;         // whose file system's free space is sampled
  std::function<std::uint64_t()> now_ms;  // monotonic milliseconds: the node's clock
  HealthCheckLookup checks;               // for callback probes; may be null without them
  Logger log;                             // sampler problems, once per change of reason
};

class HealthMonitor {
 public:
  // An exec run that has not reported this long after its timeout is recorded as failed; its
  // runner kills it at the timeout, so this only covers a stuck kill.
  static constexpr std::uint64_t kExecGraceMs = 1000;

  HealthMonitor(boost::asio::io_context& io, HealthMonitorOptions options,
                HealthListener listener);
  // stop(), then waits for exec and callback runs in progress (exec: within their timeout).
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Makes the https probes' TLS contexts (Errc::invalid_argument naming the field,
  // "health.probe[0].ca_file: ...") and starts probing and sampling. Once.
  Status start();
  // Stops scheduling and cancels network runs; results still to come are dropped. Idempotent.
  void stop();

  const engine::health::HealthEvaluator& evaluator() const { return evaluator_; }
  const HealthConfig& config() const { return options_.config; }
  // Why the last resource sample lacks a value; empty when it was complete.
  const std::string& sampler_error() const { return sampler_.last_error(); }
  std::uint64_t now_ms() const { return options_.now_ms(); }

 private:
  struct Slot;
  void run(Slot& slot);
  void run_blocking(Slot& slot, std::uint64_t id, std::function<ProbeResult()> fn,
                    std::uint64_t watchdog_ms);
  void finish(Slot& slot, std::uint64_t id, const ProbeResult& result);
  void overdue(Slot& slot, std::uint64_t id);
  void record(Slot& slot, const ProbeResult& result);
  void sample_resources();
  void schedule_sample();

  boost::asio::io_context& io_;
  HealthMonitorOptions options_;
  HealthListener listener_;
  engine::health::HealthEvaluator evaluator_;
  ResourceSampler sampler_;
  std::string logged_sampler_error_;
  std::vector<std::unique_ptr<Slot>> slots_;  // one per probe, configuration order
  struct SampleTimer;
  std::unique_ptr<SampleTimer> sample_timer_;
  std::unique_ptr<boost::asio::thread_pool> pool_;  // exec and callback runs; null without
  // Shared with every pending handler: false once stopped, so a late handler touches nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace anya::transport

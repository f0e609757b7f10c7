#include "transport/health/health_monitor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <exception>

#include "transport/health/exec_runner.hpp"

namespace anya::transport {

namespace asio = boost::asio;
using engine::health::ProbeKind;
using SteadyClock = std::chrono::steady_clock;

struct HealthMonitor::Slot {
  Slot(asio::io_context& io, std::size_t i, HealthProbeConfig c)
      : index(i), config(std::move(c)), next(io), watchdog(io) {}

  std::size_t index;
  HealthProbeConfig config;
  asio::steady_timer next;      // the next run
  asio::steady_timer watchdog;  // exec and callback: a run that has not returned in time
  std::shared_ptr<asio::ssl::context> tls;  // https only
  std::shared_ptr<ProbeRun> network_run;    // http and tcp: the run in flight
  bool in_flight = false;
  bool overdue = false;         // the watchdog already recorded this run as failed
  std::uint64_t started_ms = 0;
  std::uint64_t run_id = 0;     // a result for an older run is dropped
};

struct HealthMonitor::SampleTimer {
  explicit SampleTimer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

namespace {

std::uint64_t ms_since(SteadyClock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count());
}

ProbeResult run_exec_probe(const ExecOptions& options) {
  Result<ExecOutcome> outcome = run_exec(options);
  if (!outcome) return ProbeResult{false, 0, outcome.status().message()};
  if (outcome->succeeded()) return ProbeResult{true, outcome->elapsed_ms, {}};
  return ProbeResult{false, outcome->elapsed_ms, outcome->describe(options)};
}

ProbeResult run_callback_probe(const HealthCheck& check) {
  const SteadyClock::time_point start = SteadyClock::now();
  ProbeResult r;
  try {
    const Status s = check();
    r.ok = s.is_ok();
    if (!r.ok) r.error = s.message().empty() ? std::string(errc_name(s.code())) : s.message();
  } catch (const std::exception& e) {
    r.error = std::string("the check threw: ") + e.what();
  } catch (...) {
    r.error = "the check threw";
  }
  r.latency_ms = ms_since(start);
  return r;
}

std::size_t blocking_probes(const HealthConfig& config) {
  std::size_t n = 0;
  for (const HealthProbeConfig& p : config.probes) {
    n += p.spec.kind == ProbeKind::exec || p.spec.kind == ProbeKind::callback;
  }
  return n;
}

}  // namespace

HealthMonitor::HealthMonitor(asio::io_context& io, HealthMonitorOptions options,
                             HealthListener listener)
    : io_(io), options_(std::move(options)), listener_(std::move(listener)),
      evaluator_(options_.config.policy()), sampler_(options_.data_dir),
      sample_timer_(std::make_unique<SampleTimer>(io)) {
  ANYA_ASSERT(validate_health(options_.config).is_ok());
  ANYA_ASSERT(options_.now_ms != nullptr);
  ANYA_ASSERT(listener_ != nullptr);
  for (std::size_t i = 0; i < options_.config.probes.size(); i++) {
    slots_.push_back(std::make_unique<Slot>(io, i, options_.config.probes[i]));
  }
}

HealthMonitor::~HealthMonitor() {
  stop();
  if (pool_) pool_->join();  // exec runs end within their timeout; callbacks must return
}

Status HealthMonitor::start() {
  ANYA_ASSERT(!started_);
  started_ = true;
  for (auto& slot : slots_) {
    const HealthProbeConfig& c = slot->config;
    if (c.spec.kind != ProbeKind::http || !c.url.https) continue;
    Result<std::shared_ptr<asio::ssl::context>> tls = make_probe_tls_context(c.ca_file);
    if (!tls) {
      return Status(Errc::invalid_argument, "health.probe[" + std::to_string(slot->index) +
                                                "].ca_file: " + tls.status().message());
    }
    slot->tls = *tls;
  }
  if (const std::size_t threads = blocking_probes(options_.config); threads > 0) {
    pool_ = std::make_unique<asio::thread_pool>(threads);
  }
  asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    for (auto& slot : slots_) run(*slot);
    sample_resources();
  });
  return {};
}

void HealthMonitor::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  sample_timer_->timer.cancel();
  for (auto& slot : slots_) {
    slot->next.cancel();
    slot->watchdog.cancel();
    if (slot->network_run) slot->network_run->cancel();
    slot->network_run.reset();
  }
}

void HealthMonitor::run(Slot& slot) {
  if (stopped_) return;
  const std::uint64_t now = now_ms();
  slot.next.expires_after(std::chrono::milliseconds(slot.config.spec.interval_ms));
  slot.next.async_wait([this, alive = alive_, &slot](const boost::system::error_code& ec) {
    if (!ec && *alive) run(slot);
  });
  if (slot.in_flight) {
    // Still running from an earlier interval (a stuck callback): one more failure, and no
    // second run beside it.
    record(slot, ProbeResult{false, now - slot.started_ms,
                             "still running after " + std::to_string(now - slot.started_ms) +
                                 " ms"});
    return;
  }
  slot.in_flight = true;
  slot.overdue = false;
  slot.started_ms = now;
  const std::uint64_t id = ++slot.run_id;
  const HealthProbeConfig& c = slot.config;
  ProbeDone done = [this, alive = alive_, &slot, id](ProbeResult r) {
    if (*alive) finish(slot, id, r);
  };
  switch (c.spec.kind) {
    case ProbeKind::http:
      slot.network_run = start_http_probe(io_, HttpProbeTarget{c.url, c.expect_status, slot.tls},
                                          c.spec.timeout_ms, std::move(done));
      return;
    case ProbeKind::tcp:
      slot.network_run = start_tcp_probe(io_, c.address, c.spec.timeout_ms, std::move(done));
      return;
    case ProbeKind::exec: {
      ExecOptions options;
      options.argv = c.command;
      options.timeout_ms = c.spec.timeout_ms;
      options.kill_on_too_much_output = false;  // only the exit status matters
      run_blocking(slot, id, [options] { return run_exec_probe(options); },
                   c.spec.timeout_ms + kExecGraceMs);
      return;
    }
    case ProbeKind::callback: {
      HealthCheck check = options_.checks ? options_.checks(c.spec.name) : nullptr;
      if (!check) {
        return finish(slot, id, ProbeResult{false, 0, "no check is registered for this "
                                                      "callback probe"});
      }
      run_blocking(slot, id, [check] { return run_callback_probe(check); }, c.spec.timeout_ms);
      return;
    }
  }
  ANYA_ASSERT(false);
}

void HealthMonitor::run_blocking(Slot& slot, std::uint64_t id, std::function<ProbeResult()> fn,
                                 std::uint64_t watchdog_ms) {
  ANYA_ASSERT(pool_ != nullptr);  // sized for every exec and callback probe
  slot.watchdog.expires_after(std::chrono::milliseconds(watchdog_ms));
  slot.watchdog.async_wait([this, alive = alive_, &slot, id](const boost::system::error_code& ec) {
    if (!ec && *alive) overdue(slot, id);
  });
  // The pool thread reads nothing of the monitor's: `fn` owns copies of what it needs, and the
  // result goes back through the io_context, where `alive` is checked before `this` is used.
  asio::post(*pool_, [this, alive = alive_, &io = io_, &slot, id, fn = std::move(fn)] {
    ProbeResult result = fn();
    asio::post(io, [this, alive, &slot, id, result = std::move(result)] {
      if (*alive) finish(slot, id, result);
    });
  });
}

void HealthMonitor::finish(Slot& slot, std::uint64_t id, const ProbeResult& result) {
  if (id != slot.run_id || !slot.in_flight) return;
  slot.in_flight = false;
  slot.network_run.reset();
  slot.watchdog.cancel();
  if (slot.overdue) return;  // the watchdog counted it as failed already
  record(slot, result);
}

void HealthMonitor::overdue(Slot& slot, std::uint64_t id) {
  if (id != slot.run_id || !slot.in_flight || slot.overdue) return;
  slot.overdue = true;
  const std::uint64_t elapsed_ms = now_ms() - slot.started_ms;
  record(slot, ProbeResult{false, elapsed_ms, "did not return within " +
                                                  std::to_string(slot.config.spec.timeout_ms) +
                                                  " ms"});
}

void HealthMonitor::record(Slot& slot, const ProbeResult& result) {
  ANYA_ASSERT(slot.index < evaluator_.probe_count());
  ANYA_ASSERT(!result.ok || result.error.empty());
  const engine::health::HealthUpdate update =
      evaluator_.record_probe(slot.index, result.ok, result.latency_ms, now_ms(), result.error);
  if (!update.transitions.empty()) listener_(update, evaluator_.verdict());
}

void HealthMonitor::sample_resources() {
  if (stopped_) return;
  const engine::health::ResourceSample sample = sampler_.sample();
  if (sampler_.last_error() != logged_sampler_error_) {
    logged_sampler_error_ = sampler_.last_error();
    if (logged_sampler_error_.empty()) {
      options_.log.info("resource sampling complete again");
    } else {
      options_.log.warn("resource sampling incomplete (those values are unknown and never "
                        "count as over a limit): ", logged_sampler_error_);
    }
  }
  const engine::health::HealthUpdate update = evaluator_.record_resources(sample, now_ms());
  if (!update.transitions.empty()) listener_(update, evaluator_.verdict());
  schedule_sample();
}

void HealthMonitor::schedule_sample() {
  sample_timer_->timer.expires_after(
      std::chrono::milliseconds(options_.config.resource_interval_ms));
  sample_timer_->timer.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) sample_resources();
  });
}

}  // namespace anya::transport

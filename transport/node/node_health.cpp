// The node's health monitoring of the service it protects: a HealthMonitor (transport/health)
// on the node's io_context when [health] configures probes or resource limits. Every decision
// is the engine's (engine/health decides the verdict, engine/raft what an unhealthy node does);
// here the verdict is handed to the host, logged with its reasons, and shown in status and
// metrics.
#include <boost/asio/io_context.hpp>

#include "engine/health/summary.hpp"
#include "transport/node/node.hpp"
#include "transport/node/node_metrics.hpp"

namespace anya::transport {

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

ProbeStatusView probe_view(const engine::health::ProbeTracker& t, std::uint64_t now_ms) {
  const engine::health::ProbeSpec& spec = t.spec();
  const engine::health::WindowStats w = t.window(now_ms);
  ProbeStatusView p;
  p.name = spec.name;
  p.type = engine::health::probe_kind_name(spec.kind);
  p.state = engine::health::probe_state_name(t.state());
  p.consecutive_successes = t.consecutive_successes();
  p.consecutive_failures = t.consecutive_failures();
  p.fall = spec.fall;
  p.rise = spec.rise;
  p.weight = spec.weight;
  p.window_samples = w.samples;
  p.error_ratio = w.error_ratio;
  p.p50_ms = w.p50_ms;
  p.p99_ms = w.p99_ms;
  p.last_error = t.last_error();
  if (t.last_result_ms()) {
    p.last_result_age_ms = now_ms >= *t.last_result_ms() ? now_ms - *t.last_result_ms() : 0;
  }
  return p;
}

ResourceLevelsView levels_view(const engine::health::HealthEvaluator& e, std::uint64_t now_ms) {
  ResourceLevelsView r;
  if (!e.last_sample()) return r;
  const engine::health::ResourceSample& s = *e.last_sample();
  r.cpu_percent = s.cpu_percent;
  r.memory_used_percent = s.memory_used_percent;
  r.data_dir_free_bytes = s.data_dir_free_bytes;
  r.data_dir_free_percent = s.data_dir_free_percent;
  r.open_fds = s.open_fds;
  r.max_fds = s.max_fds;
  ANYA_ASSERT(e.last_sample_ms().has_value());
  r.age_ms = now_ms >= *e.last_sample_ms() ? now_ms - *e.last_sample_ms() : 0;
  return r;
}

}  // namespace

void Node::set_health_checks(std::map<std::string, HealthCheck> checks) {
  health_checks_ = std::move(checks);
}

Status Node::start_health() {
  ANYA_ASSERT(core_ != nullptr);
  ANYA_ASSERT(health_ == nullptr);
  if (!config_.health.enabled()) return {};
  HealthMonitorOptions o;
  o.config = config_.health;
  o.data_dir = config_.data_dir;
  o.now_ms = [this] { return now_ms(); };
  o.checks = [this](const std::string& name) -> HealthCheck {
    auto it = health_checks_.find(name);
    return it == health_checks_.end() ? HealthCheck{} : it->second;
  };
  o.log = log_.with("health");
  auto monitor = std::make_unique<HealthMonitor>(
      io_, std::move(o),
      [this](const engine::health::HealthUpdate& update,
             const engine::health::HealthVerdict& verdict) { on_health(update, verdict); });
  if (Status s = monitor->start(); !s) return s;
  health_ = std::move(monitor);
  const HealthConfig& h = config_.health;
  log_.info("health: ", h.probes.size(), " probes (rule ",
            engine::health::aggregation_text(h.aggregate), "), resources every ",
            format_duration_ms(h.resource_interval_ms));
  // A probe with no result yet counts as failing, so a node that never ran its probes is not
  // healthy: it does not campaign until they report.
  const engine::health::HealthVerdict& verdict = health_->evaluator().verdict();
  if (!verdict.healthy) {
    log_.info("health: ", verdict.explanation, "; this node does not campaign until its probes "
              "report");
    after_host_call(core_->host().set_healthy(false));
  }
  return {};
}

void Node::on_health(const engine::health::HealthUpdate& update,
                     const engine::health::HealthVerdict& verdict) {
  if (core_ == nullptr || fatal_) return;
  for (const std::string& line : update.transitions) {
    if (update.verdict_changed && line == verdict.explanation) continue;  // logged below
    log_.info("health: ", line);
  }
  if (!update.verdict_changed) return;
  metrics_->health_changes->inc();
  if (verdict.healthy) {
    log_.info(verdict.explanation);
  } else {
    log_.warn(verdict.explanation, core_->raft().is_leader()
                                       ? " (leader: hands leadership to a healthy, caught-up "
                                         "voter if there is one)"
                                       : " (this node will not campaign)");
  }
  after_host_call(core_->host().set_healthy(verdict.healthy));
}

HealthStatusView Node::health_status() const {
  HealthStatusView v;
  if (health_ == nullptr) return v;
  const engine::health::HealthEvaluator& e = health_->evaluator();
  const std::uint64_t now = health_->now_ms();
  v.monitored = true;
  v.healthy = e.verdict().healthy;
  v.aggregate = engine::health::aggregation_text(e.policy().aggregation);
  v.explanation = e.verdict().explanation;
  v.reasons = e.verdict().reasons;
  for (std::size_t i = 0; i < e.probe_count(); i++) v.probes.push_back(probe_view(e.probe(i), now));
  for (const engine::health::ResourceStatus& r : e.resources()) {
    ResourceLimitView l;
    l.resource = engine::health::resource_name(r.check.resource);
    l.limit_key = r.check.limit_key;
    l.value = r.check.value;
    l.limit = r.check.limit;
    l.upper = r.check.upper;
    l.over = r.check.over;
    l.exceeded = r.exceeded;
    v.limits.push_back(std::move(l));
  }
  v.resources = levels_view(e, now);
  v.resources.error = health_->sampler_error();
  v.summary_hex = hex(engine::health::encode_summary(e.verdict().summary));
  return v;
}

}  // namespace anya::transport

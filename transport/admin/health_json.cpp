#include "transport/admin/health_json.hpp"

#include "transport/admin/json_util.hpp"

namespace anya::transport {

namespace {

template <typename T>
json::value or_null(const std::optional<T>& value) {
  if (!value) return nullptr;
  return json::value(*value);
}

json::object probe_json(const ProbeStatusView& p) {
  json::object o;
  o["name"] = p.name;
  o["type"] = p.type;
  o["state"] = p.state;
  o["consecutive_successes"] = p.consecutive_successes;
  o["consecutive_failures"] = p.consecutive_failures;
  o["fall"] = p.fall;
  o["rise"] = p.rise;
  o["weight"] = p.weight;
  o["window_samples"] = p.window_samples;
  o["error_ratio"] = p.window_samples == 0 ? json::value(nullptr) : json::value(p.error_ratio);
  o["p50_ms"] = or_null(p.p50_ms);
  o["p99_ms"] = or_null(p.p99_ms);
  o["last_error"] = json_safe(p.last_error);
  o["last_result_age_ms"] = or_null(p.last_result_age_ms);
  return o;
}

json::object limit_json(const ResourceLimitView& l) {
  json::object o;
  o["resource"] = l.resource;
  o["key"] = l.limit_key;
  o["bound"] = l.upper ? "max" : "min";
  o["limit"] = l.limit;
  o["value"] = or_null(l.value);
  o["over"] = l.over;
  o["exceeded"] = l.exceeded;
  return o;
}

json::object resources_json(const ResourceLevelsView& r) {
  json::object o;
  o["cpu_percent"] = or_null(r.cpu_percent);
  o["memory_used_percent"] = or_null(r.memory_used_percent);
  o["data_dir_free_bytes"] = or_null(r.data_dir_free_bytes);
  o["data_dir_free_percent"] = or_null(r.data_dir_free_percent);
  o["open_fds"] = or_null(r.open_fds);
  o["max_fds"] = or_null(r.max_fds);
  o["age_ms"] = or_null(r.age_ms);
  o["error"] = json_safe(r.error);
  return o;
}

}  // namespace

json::object health_json(const HealthStatusView& h) {
  json::object o;
  o["monitored"] = h.monitored;
  o["healthy"] = h.healthy;
  if (!h.monitored) return o;
  o["aggregate"] = h.aggregate;
  o["explanation"] = json_safe(h.explanation);
  json::array reasons;
  for (const std::string& r : h.reasons) reasons.emplace_back(json_safe(r));
  o["reasons"] = std::move(reasons);
  json::array probes;
  for (const ProbeStatusView& p : h.probes) probes.emplace_back(probe_json(p));
  o["probes"] = std::move(probes);
  json::array limits;
  for (const ResourceLimitView& l : h.limits) limits.emplace_back(limit_json(l));
  o["limits"] = std::move(limits);
  o["resources"] = resources_json(h.resources);
  o["summary"] = h.summary_hex;
  return o;
}

}  // namespace anya::transport

#include "transport/admin/health_json.hpp"

#include <gtest/gtest.h>

namespace anya::transport {
namespace {

TEST(HealthJson, UnmonitoredIsJustHealthy) {
  EXPECT_EQ(boost::json::serialize(health_json(HealthStatusView{})),
            R"({"monitored":false,"healthy":true})");
}

TEST(HealthJson, EveryFieldWithUnknownsAsNull) {
  HealthStatusView h;
  h.monitored = true;
  h.healthy = false;
  h.aggregate = "all";
  h.explanation = "unhealthy: probe web failing (2 consecutive failures: HTTP 503 (expected 200))";
  h.reasons = {"probe web failing", std::string("bad \xff byte")};
  ProbeStatusView p;
  p.name = "web";
  p.type = "http";
  p.state = "failing";
  p.consecutive_failures = 2;
  p.fall = 2;
  p.rise = 1;
  p.window_samples = 4;
  p.error_ratio = 0.5;
  p.p50_ms = 3;
  p.p99_ms = 9;
  p.last_error = "HTTP 503 (expected 200)";
  p.last_result_age_ms = 120;
  h.probes = {p};
  ResourceLimitView l;
  l.resource = "disk";
  l.limit_key = "min_disk_free_percent";
  l.upper = false;
  l.limit = 5;
  h.limits = {l};
  h.resources.open_fds = 12;
  h.summary_hex = "010001010000000000ffff000000";
  const boost::json::object o = health_json(h);
  EXPECT_EQ(o.at("healthy"), false);
  EXPECT_EQ(o.at("reasons").as_array().at(1), "bad \\xFF byte") << "made valid UTF-8";
  const boost::json::object& probe = o.at("probes").as_array().at(0).as_object();
  EXPECT_EQ(probe.at("state"), "failing");
  EXPECT_EQ(probe.at("error_ratio"), 0.5);
  EXPECT_EQ(probe.at("p99_ms"), 9u);
  EXPECT_EQ(probe.at("last_error"), "HTTP 503 (expected 200)");
  const boost::json::object& limit = o.at("limits").as_array().at(0).as_object();
  EXPECT_EQ(limit.at("bound"), "min");
  EXPECT_TRUE(limit.at("value").is_null()) << "unknown";
  EXPECT_EQ(o.at("resources").at("open_fds"), 12u);
  EXPECT_TRUE(o.at("resources").at("cpu_percent").is_null());
  EXPECT_EQ(o.at("summary").as_string(), h.summary_hex);
}

}  // namespace
}  // namespace anya::transport

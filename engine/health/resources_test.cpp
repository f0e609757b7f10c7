#include "engine/health/resources.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace anya::engine::health {
namespace {

ResourceSample busy_sample() {
  ResourceSample s;
  s.cpu_percent = 97.0;
  s.memory_used_percent = 40.0;
  s.data_dir_free_bytes = 1ull << 30;
  s.data_dir_free_percent = 3.0;
  s.open_fds = 900;
  s.max_fds = 1000;
  return s;
}

TEST(Resources, NoLimitsNoChecks) {
  EXPECT_TRUE(check_resources(busy_sample(), ResourceLimits{}).empty());
  EXPECT_FALSE(ResourceLimits{}.any());
}

TEST(Resources, EachLimitIsCheckedAndDescribed) {
  ResourceLimits l;
  l.max_cpu_percent = 90;
  l.max_memory_percent = 80;
  l.min_disk_free_percent = 5;
  l.min_disk_free_bytes = 2ull << 30;
  l.max_fd_percent = 95;
  const std::vector<ResourceCheck> c = check_resources(busy_sample(), l);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_TRUE(c[0].over);
  EXPECT_EQ(c[0].describe(), "cpu 97.0% above max_cpu_percent 90.0%");
  EXPECT_FALSE(c[1].over);
  EXPECT_EQ(c[1].describe(), "memory used 40.0% within max_memory_percent 80.0%");
  EXPECT_TRUE(c[2].over);
  EXPECT_EQ(c[2].describe(), "disk free 3.0% below min_disk_free_percent 5.0%");
  EXPECT_TRUE(c[3].over);
  EXPECT_EQ(c[3].describe(), "disk free 1.0GiB below min_disk_free 2.0GiB");
  EXPECT_EQ(c[3].resource, Resource::disk);
  EXPECT_FALSE(c[4].over) << "90% of descriptors is under 95%";
  EXPECT_EQ(c[4].resource, Resource::fds);
}

TEST(Resources, UnknownValuesAreNeverOver) {
  ResourceLimits l;
  l.max_cpu_percent = 1;
  l.max_fd_percent = 1;
  ResourceSample s;
  s.open_fds = 10;  // without max_fds there is no percentage
  for (const ResourceCheck& c : check_resources(s, l)) {
    EXPECT_FALSE(c.over);
    EXPECT_FALSE(c.value.has_value());
    EXPECT_NE(c.describe().find("unknown"), std::string::npos);
  }
}

TEST(Resources, LimitsAreValidatedNamingTheKey) {
  const auto error = [](auto change) {
    ResourceLimits l;
    change(l);
    const Status s = validate_resource_limits(l, "health.");
    return s.is_ok() ? std::string("(accepted)") : s.message();
  };
  EXPECT_EQ(error([](ResourceLimits& l) { l.max_cpu_percent = 100; }), "(accepted)");
  EXPECT_EQ(error([](ResourceLimits& l) { l.max_cpu_percent = 101; }),
            "health.max_cpu_percent: must be between 1 and 100");
  EXPECT_EQ(error([](ResourceLimits& l) { l.max_memory_percent = 0; }),
            "health.max_memory_percent: must be between 1 and 100");
  EXPECT_EQ(error([](ResourceLimits& l) { l.max_memory_percent = std::nan(""); }),
            "health.max_memory_percent: must be between 1 and 100");
  EXPECT_EQ(error([](ResourceLimits& l) { l.min_disk_free_percent = 100; }),
            "health.min_disk_free_percent: must be between 0.01 and 99");
  EXPECT_EQ(error([](ResourceLimits& l) { l.min_disk_free_bytes = 0; }),
            "health.min_disk_free: must be more than 0 (leave it out for no limit)");
  EXPECT_EQ(error([](ResourceLimits& l) { l.max_fd_percent = -3; }),
            "health.max_fd_percent: must be between 1 and 100");
}

TEST(Resources, DerivedPercentages) {
  const ResourceSample s = busy_sample();
  EXPECT_DOUBLE_EQ(*s.fd_used_percent(), 90.0);
  EXPECT_DOUBLE_EQ(*s.disk_used_percent(), 97.0);
  ResourceSample no_max = s;
  no_max.max_fds = 0;
  EXPECT_FALSE(no_max.fd_used_percent().has_value());
  EXPECT_EQ(percent_u8(-1), 0);
  EXPECT_EQ(percent_u8(49.5), 50);
  EXPECT_EQ(percent_u8(250), 100);
  EXPECT_EQ(percent_u8(std::nan("")), 0);
  EXPECT_EQ(bytes_text(100), "100B");
  EXPECT_EQ(bytes_text(3ull << 20), "3.0MiB");
}

}  // namespace
}  // namespace anya::engine::health

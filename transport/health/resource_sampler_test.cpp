#include "transport/health/resource_sampler.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

namespace anya::transport {
namespace {

TEST(ProcStat, ReadsTheCpuLine) {
  const std::optional<CpuTimes> t = parse_proc_stat(
      "cpu  100 5 50 800 20 3 2 1 40 0\ncpu0 50 2 25 400 10 1 1 0 20 0\nintr 1 2 3\n");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->busy, 100u + 5 + 50 + 3 + 2 + 1) << "guest time is already in user";
  EXPECT_EQ(t->total, t->busy + 800 + 20);
  EXPECT_TRUE(parse_proc_stat("cpu  1 2 3 4").has_value()) << "old kernels print four fields";
  EXPECT_FALSE(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu  1 2\n").has_value());
  EXPECT_FALSE(parse_proc_stat("").has_value());
}

TEST(ProcMeminfo, UsedIsTotalLessAvailable) {
  const std::optional<double> used = parse_meminfo_used_percent(
      "MemTotal:       16000000 kB\nMemFree:          1000000 kB\n"
      "MemAvailable:    4000000 kB\nBuffers:          100 kB\n");
  ASSERT_TRUE(used.has_value());
  EXPECT_DOUBLE_EQ(*used, 75.0);
  EXPECT_FALSE(parse_meminfo_used_percent("MemTotal: 100 kB\n").has_value());
  EXPECT_FALSE(parse_meminfo_used_percent("MemTotal: 100 kB\nMemAvailable: 200 kB\n")
                   .has_value());
  EXPECT_FALSE(parse_meminfo_used_percent("MemTotalX: 100 kB\nMemAvailable: 50 kB\n")
                   .has_value());
}

TEST(ResourceSampler, SamplesThisMachine) {
  ResourceSampler sampler(::testing::TempDir());
  const engine::health::ResourceSample first = sampler.sample();
  EXPECT_EQ(sampler.last_error(), "");
  EXPECT_FALSE(first.cpu_percent.has_value()) << "CPU needs two readings";
  ASSERT_TRUE(first.memory_used_percent.has_value());
  EXPECT_GT(*first.memory_used_percent, 0.0);
  EXPECT_LE(*first.memory_used_percent, 100.0);
  ASSERT_TRUE(first.data_dir_free_percent.has_value());
  EXPECT_LE(*first.data_dir_free_percent, 100.0);
  ASSERT_TRUE(first.data_dir_free_bytes.has_value());
  ASSERT_TRUE(first.open_fds.has_value());
  ASSERT_TRUE(first.max_fds.has_value());
  EXPECT_LE(*first.open_fds, *first.max_fds);

  // Open 20 more descriptors: the count follows exactly.
  std::vector<int> fds;
  for (int i = 0; i < 20; i++) fds.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  // Burn a little CPU so the machine's counters move between the two readings.
  volatile std::uint64_t sink = 0;
  for (std::uint64_t i = 0; i < 20'000'000; i++) sink = sink + i;
  const engine::health::ResourceSample second = sampler.sample();
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(second.open_fds.has_value());
  EXPECT_EQ(*second.open_fds, *first.open_fds + 20);
  ASSERT_TRUE(second.cpu_percent.has_value());
  EXPECT_GE(*second.cpu_percent, 0.0);
  EXPECT_LE(*second.cpu_percent, 100.0);
}

TEST(ResourceSampler, AMissingDataDirectoryIsUnknownWithAReason) {
  ResourceSampler sampler("/nonexistent/anya-ha-data");
  const engine::health::ResourceSample s = sampler.sample();
  EXPECT_FALSE(s.data_dir_free_bytes.has_value());
  EXPECT_FALSE(s.data_dir_free_percent.has_value());
  EXPECT_NE(sampler.last_error().find("cannot statvfs /nonexistent/anya-ha-data"),
            std::string::npos)
      << sampler.last_error();
}

}  // namespace
}  // namespace anya::transport

#include "poolwatch/process_collector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

namespace poolwatch {
namespace {

TEST(ProcessCollectorTest, ReadsPlausibleValuesFromProc) {
  const auto stats = ReadProcessStats();
  ASSERT_TRUE(stats);
  EXPECT_GT(stats->resident_memory_bytes, 1 << 20);
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->threads, 1);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GT(stats->max_fds, stats->open_fds);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(stats->start_time_seconds, now + 1);
  EXPECT_GT(stats->start_time_seconds, now - 3600);
}

TEST(ProcessCollectorTest, SeesAnExtraThreadAndAnExtraDescriptor) {
  const auto before = ReadProcessStats();
  const int fd = dup(1);
  ASSERT_GE(fd, 0);
  std::jthread extra([](const std::stop_token& stop) {
    while (!stop.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  });
  const auto after = ReadProcessStats();
  close(fd);
  ASSERT_TRUE(before && after);
  EXPECT_EQ(after->open_fds, before->open_fds + 1);
  // At least: a sanitizer runtime may start a helper thread of its own with the first one.
  EXPECT_GE(after->threads, before->threads + 1);
}

TEST(ProcessCollectorTest, ExposesTheStandardNames) {
  const auto families = ProcessCollector().Collect();
  std::vector<std::string> names;
  names.reserve(families.size());
  for (const auto& family : families) names.push_back(family.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"process_cpu_seconds_total", "process_resident_memory_bytes",
                                      "process_virtual_memory_bytes", "process_start_time_seconds",
                                      "process_open_fds", "process_max_fds", "process_threads"}));
}

}  // namespace
}  // namespace poolwatch

#include "poolwatch/process_collector.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

namespace poolwatch {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The descriptors this process has open, counted apart from the collector.
double CountOpenDescriptors() {
  double count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count - 1;  // the iterator's own
}

TEST(ProcessCollectorTest, ReadsPlausibleValuesFromProc) {
  const auto stats = ProcessCollector().Read();
  ASSERT_TRUE(stats);
  EXPECT_GT(stats->resident_memory_bytes, 1 << 20);
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->threads, 1);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GT(stats->max_fds, stats->open_fds);
  EXPECT_LE(stats->start_time_seconds, Now() + 1);
  EXPECT_GT(stats->start_time_seconds, Now() - 3600);
}

// Every open descriptor once, the collector's own two (kept open) among them, and nothing it
// opens only to read.
TEST(ProcessCollectorTest, CountsEachOpenDescriptorOnce) {
  const ProcessCollector collector;
  const auto stats = collector.Read();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->open_fds, CountOpenDescriptors());
}

TEST(ProcessCollectorTest, SeesAnExtraThreadAndAnExtraDescriptor) {
  const ProcessCollector collector;
  const auto before = collector.Read();
  const int fd = dup(1);
  ASSERT_GE(fd, 0);
  std::jthread extra([](const std::stop_token& stop) {
    while (!stop.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  });
  const auto after = collector.Read();
  close(fd);
  ASSERT_TRUE(before && after);
  EXPECT_EQ(after->open_fds, before->open_fds + 1);
  // At least: a sanitizer runtime may start a helper thread of its own with the first one.
  EXPECT_GE(after->threads, before->threads + 1);
}

// Out of descriptors is when open_fds against max_fds matters: the collector reads all of it
// without opening one.
TEST(ProcessCollectorTest, ReadsEverythingWithNoDescriptorLeft) {
  const ProcessCollector collector;
  // The lowest free descriptor as the limit: no open() can succeed.
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit exhausted = saved;
  exhausted.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &exhausted), 0);
  const int refused = dup(0);
  const int refused_errno = errno;
  const auto stats = collector.Read();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  if (refused >= 0) close(refused);

  ASSERT_EQ(refused, -1) << "a descriptor was still free";
  EXPECT_EQ(refused_errno, EMFILE);
  ASSERT_TRUE(stats) << "nothing read with no descriptor left";
  EXPECT_EQ(stats->open_fds, CountOpenDescriptors());
  EXPECT_EQ(stats->max_fds, lowest_free);
  EXPECT_GT(stats->start_time_seconds, Now() - 3600);
  EXPECT_GT(stats->resident_memory_bytes, 1 << 20);
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

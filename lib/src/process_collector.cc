#include "poolwatch/process_collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "single_value_family.h"

namespace poolwatch {

namespace {

// Seconds since the epoch at which the system booted (the btime line of /proc/stat).
std::optional<double> BootTime() {
  std::ifstream stat("/proc/stat");
  std::string word;
  while (stat >> word) {
    if (word == "btime") {
      double btime = 0;
      if (stat >> btime) return btime;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

struct ProcessCollector::Files {
  Files()
      : stat_fd(open("/proc/self/stat", O_RDONLY | O_CLOEXEC)),
        fd_dir(opendir("/proc/self/fd")),
        boot_time(BootTime()) {}
  ~Files() {
    if (stat_fd >= 0) close(stat_fd);
    if (fd_dir != nullptr) closedir(fd_dir);
  }
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;

  int stat_fd;                      // /proc/self/stat, read from its start each time
  DIR* fd_dir;                      // /proc/self/fd, rewound each time
  std::optional<double> boot_time;  // /proc/stat's btime: fixed while the system runs
  std::mutex fd_dir_mutex;          // the directory's position
};

ProcessCollector::ProcessCollector() : files_(std::make_unique<Files>()) {}

ProcessCollector::~ProcessCollector() = default;

std::optional<ProcessStats> ProcessCollector::Read() const {
  Files& files = *files_;
  if (files.stat_fd < 0 || files.fd_dir == nullptr) return std::nullopt;
  // Read from offset 0, procfs writes the file anew: the numbers of now.
  std::array<char, 4096> buffer{};
  const ssize_t length = pread(files.stat_fd, buffer.data(), buffer.size(), 0);
  if (length <= 0) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  // Parsed without streams, which need nothing the process may have run out of.
  const std::string_view line(buffer.data(), static_cast<std::size_t>(length));
  const std::size_t name_end = line.rfind(')');
  if (name_end == std::string_view::npos || name_end + 2 > line.size()) return std::nullopt;
  std::string_view rest = line.substr(name_end + 2);
  std::array<std::string_view, 22> f{};  // f[0] is field 3 (state)
  for (std::string_view& field : f) {
    if (rest.empty()) return std::nullopt;
    const std::size_t space = rest.find(' ');
    field = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  const auto number = [](std::string_view text) -> std::optional<double> {
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  };
  const auto utime = number(f[11]);
  const auto stime = number(f[12]);
  const auto threads = number(f[17]);
  const auto start_ticks = number(f[19]);
  const auto vsize = number(f[20]);
  const auto rss_pages = number(f[21]);
  if (!utime || !stime || !threads || !start_ticks || !vsize || !rss_pages) return std::nullopt;

  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats stats;
  stats.cpu_seconds = (*utime + *stime) / ticks;
  stats.threads = *threads;
  stats.virtual_memory_bytes = *vsize;
  stats.resident_memory_bytes = *rss_pages * page;
  if (files.boot_time) stats.start_time_seconds = *files.boot_time + *start_ticks / ticks;

  {
    const std::lock_guard lock(files.fd_dir_mutex);
    rewinddir(files.fd_dir);
    while (const dirent* entry = readdir(files.fd_dir)) {
      if (entry->d_name[0] != '.') ++stats.open_fds;
    }
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = static_cast<double>(limit.rlim_cur);
  return stats;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const std::optional<ProcessStats> stats = Read();
  if (!stats) return {};
  const auto gauge = prometheus::MetricType::Gauge;
  return {
      detail::SingleValueFamily("process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.",
                                prometheus::MetricType::Counter, stats->cpu_seconds),
      detail::SingleValueFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                gauge, stats->resident_memory_bytes),
      detail::SingleValueFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                gauge, stats->virtual_memory_bytes),
      detail::SingleValueFamily("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.", gauge,
                                stats->start_time_seconds),
      detail::SingleValueFamily("process_open_fds", "Number of open file descriptors.", gauge,
                                stats->open_fds),
      detail::SingleValueFamily("process_max_fds", "Maximum number of open file descriptors.",
                                gauge, stats->max_fds),
      detail::SingleValueFamily("process_threads", "Number of OS threads in the process.", gauge,
                                stats->threads),
  };
}

}  // namespace poolwatch

#include "poolwatch/process_collector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

std::optional<ProcessStats> ReadProcessStats() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string field; fields >> field;) f.push_back(field);
  if (f.size() < 22) return std::nullopt;

  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats stats;
  try {
    stats.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
    stats.threads = std::stod(f[17]);
    stats.virtual_memory_bytes = std::stod(f[20]);
    stats.resident_memory_bytes = std::stod(f[21]) * page;
    if (const auto boot = BootTime()) stats.start_time_seconds = *boot + std::stod(f[19]) / ticks;
  } catch (const std::exception&) {
    return std::nullopt;
  }

  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  // The iterator's own descriptor is open while it walks the directory.
  stats.open_fds = fds > 0 ? fds - 1 : 0;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = static_cast<double>(limit.rlim_cur);
  return stats;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const std::optional<ProcessStats> stats = ReadProcessStats();
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

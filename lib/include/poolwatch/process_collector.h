#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <vector>

namespace poolwatch {

// What /proc says about this process, as the Prometheus client libraries name it.
struct ProcessStats {
  double cpu_seconds = 0;
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;
  double threads = 0;
};

// Reads ProcessStats from /proc/self (Linux). Nothing if /proc cannot be read.
std::optional<ProcessStats> ReadProcessStats();

// The standard process_* metrics (prometheus-cpp has none), read from /proc at every Collect().
// Thread-safe: it keeps no state.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace poolwatch

#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
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

// The standard process_* metrics (prometheus-cpp has none), read from /proc/self (Linux) at every
// Collect(). It opens /proc/self/stat and /proc/self/fd once and keeps them open, so that it
// still reads when the process has no descriptor left: when process_open_fds against
// process_max_fds matters most. Those two count in open_fds, as they stay open. Thread-safe.
class ProcessCollector final : public prometheus::Collectable {
 public:
  ProcessCollector();
  ~ProcessCollector() override;
  ProcessCollector(const ProcessCollector&) = delete;
  ProcessCollector& operator=(const ProcessCollector&) = delete;

  // Nothing if /proc could not be opened or read.
  std::optional<ProcessStats> Read() const;
  // The families of Read(); none if it read nothing.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Files;  // the open /proc files
  std::unique_ptr<Files> files_;
};

}  // namespace poolwatch

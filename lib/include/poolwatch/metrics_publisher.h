#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "poolwatch/health_monitor.h"

namespace poolwatch {

// Publishes health snapshots as the poolwatch_* Prometheus metrics (docs/metrics.md).
//
// Publish() keeps a copy of the latest snapshot; Collect() builds every family from that one
// copy, so a scrape always shows all series of the same frame, never a half-updated one.
// Thread-safe: Publish() on the tick thread and Collect() on scrape threads may overlap; neither
// waits on more than a copy of the snapshot.
class MetricsPublisher final : public prometheus::Collectable {
 public:
  // `pool` is the value of the `pool` label on every pool series.
  explicit MetricsPublisher(std::string pool);

  void Publish(const HealthSnapshot& snapshot);
  // A copy of the latest snapshot, or nothing before the first.
  std::optional<HealthSnapshot> Latest() const;
  // The latest snapshot's sequence number (0 before the first): cheap, no copy.
  std::uint64_t Sequence() const;

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string pool_;
  mutable std::mutex mutex_;
  std::optional<HealthSnapshot> latest_;
};

}  // namespace poolwatch

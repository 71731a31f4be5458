#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "poolwatch/health_monitor.h"

namespace poolwatch {

struct MetricsPublisherOptions {
  // Added to every series, e.g. {{"shard", "eu-1"}}. Names are Prometheus label names, not
  // reserved (__*), and none of pool, loop, le, site, age; values at most 1024 bytes.
  std::vector<std::pair<std::string, std::string>> const_labels{};
  // poolwatch_pool_outstanding_site_{buffers,bytes}: a series per pool for each of its top
  // sites by bytes held, and one for the rest (site="other"), so at most top_sites + 1.
  std::size_t top_sites = 5;
};

// An exemplar (OpenMetrics, and the protobuf format): one concrete event behind a series'
// value. poolwatch gives one to each pool's poolwatch_pool_allocations_total: the site and frame
// of its latest held buffer still outstanding (LatestHeld), the value 1 (one buffer), at that
// frame's time. The labels are within OpenMetrics' 128 characters (a long site is shortened).
struct Exemplar {
  std::vector<prometheus::ClientMetric::Label> labels;
  double value = 0;
  double timestamp_seconds = 0;  // Unix time
};

// What the text format cannot carry, for one series of a collection.
struct SeriesExtras {
  std::size_t family = 0;  // index into Exposition::families
  std::size_t metric = 0;  // index into that family's metric
  std::optional<Exemplar> exemplar;
  std::optional<NativeBuckets> native;  // of a histogram that keeps them (frame duration, lateness)
};

// A collection with its extras: what every format's encoder starts from.
struct Exposition {
  std::vector<prometheus::MetricFamily> families;
  std::vector<SeriesExtras> extras;
};

// Publishes the snapshots of any number of loops and pools as the poolwatch_* metrics
// (docs/metrics.md), as one prometheus::Collectable: every family appears once, with one series
// per pool (`pool` label) or per loop (`loop` label).
//
// Each loop's latest snapshot is kept whole and replaced whole, so every series of a pool, and
// of its loop, comes from one sealed frame: allocations_total − releases_total equals
// outstanding_buffers in every scrape. Pools of different loops are at their own loops' frames.
//
// Thread-safety: Attach() from any thread, before the attached monitor's loop runs. Each loop
// publishes from its own thread under its own lock, held for one snapshot copy; Collect() takes
// each loop's lock for one copy too, so a loop never waits on a scrape for longer than that,
// nor on another loop.
class MetricsPublisher final : public prometheus::Collectable {
 public:
  // Throws std::invalid_argument for a constant label that is not allowed.
  explicit MetricsPublisher(const MetricsPublisherOptions& options = {});

  // Publishes the monitor's snapshots from now on: the monitor calls the publisher, which must
  // therefore outlive the loop's running (stop the loop first, as with any subscriber). Throws
  // std::invalid_argument when a loop of the same name, or a pool of one of the same names (in
  // any loop), is attached already: their series would be indistinguishable.
  void Attach(HealthMonitor& monitor);

  // Copies of the latest snapshot of every attached loop that has published one.
  std::vector<HealthSnapshot> Latest() const;
  // Snapshots published so far by all loops together: changes whenever a series may have.
  std::uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }
  // Whether every attached loop has published (false while none is attached).
  bool AllPublished() const;

  // The families, as Collect(), with the extras that formats beyond text carry.
  Exposition CollectExposition() const;
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct LoopSlot {
    std::string loop;
    std::vector<std::string> pools;
    mutable std::mutex mutex;
    std::optional<HealthSnapshot> latest;
  };

  void Publish(LoopSlot& slot, const HealthSnapshot& snapshot);

  const std::vector<prometheus::ClientMetric::Label> const_labels_;
  const std::size_t top_sites_;
  mutable std::mutex slots_mutex_;  // guards the list; each slot's content has its own lock
  std::vector<std::unique_ptr<LoopSlot>> slots_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace poolwatch

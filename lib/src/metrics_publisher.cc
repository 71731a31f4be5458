#include "poolwatch/metrics_publisher.h"

#include <limits>
#include <utility>

#include "single_value_family.h"

namespace poolwatch {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Histogram(std::string name, std::string help, const DurationHistogram& histogram) {
  ClientMetric metric;
  metric.histogram.sample_count = histogram.count();
  metric.histogram.sample_sum = histogram.sum();
  std::uint64_t cumulative = 0;
  const auto& bounds = histogram.upper_bounds();
  const auto& counts = histogram.bucket_counts();
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    // The serializer writes the last bucket, whatever its bound, as le="+Inf".
    metric.histogram.bucket.push_back(
        {cumulative, i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity()});
  }
  return {std::move(name), std::move(help), MetricType::Histogram, {std::move(metric)}};
}

double D(std::uint64_t value) { return static_cast<double>(value); }

}  // namespace

MetricsPublisher::MetricsPublisher(std::string pool) : pool_(std::move(pool)) {}

void MetricsPublisher::Publish(const HealthSnapshot& snapshot) {
  std::scoped_lock lock(mutex_);
  latest_ = snapshot;
}

std::optional<HealthSnapshot> MetricsPublisher::Latest() const {
  std::scoped_lock lock(mutex_);
  return latest_;
}

std::uint64_t MetricsPublisher::Sequence() const {
  std::scoped_lock lock(mutex_);
  return latest_ ? latest_->sequence : 0;
}

std::vector<MetricFamily> MetricsPublisher::Collect() const {
  const std::optional<HealthSnapshot> latest = Latest();
  // Before the first frame there is nothing true to say: no series rather than zeros.
  if (!latest) return {};
  const HealthSnapshot& s = *latest;
  const PoolStats& p = s.pool;
  const std::vector<ClientMetric::Label> pool{{"pool", pool_}};
  const auto gauge = MetricType::Gauge;
  const auto counter = MetricType::Counter;

  return {
      detail::SingleValueFamily("poolwatch_pool_frame_allocations",
                                "Buffers allocated from the pool in the last completed frame.",
                                gauge, D(p.last_frame.allocations), pool),
      detail::SingleValueFamily("poolwatch_pool_frame_releases",
                                "Buffers returned to the pool in the last completed frame.", gauge,
                                D(p.last_frame.releases), pool),
      detail::SingleValueFamily("poolwatch_pool_frame_imbalance",
                                "Allocations minus releases in the last completed frame.", gauge,
                                static_cast<double>(p.last_frame.Imbalance()), pool),
      detail::SingleValueFamily("poolwatch_pool_allocations_total",
                                "Buffers handed out by the pool.", counter, D(p.allocations_total),
                                pool),
      detail::SingleValueFamily("poolwatch_pool_releases_total", "Buffers returned to the pool.",
                                counter, D(p.releases_total), pool),
      detail::SingleValueFamily(
          "poolwatch_pool_misses_total",
          "Allocations that found no free buffer of their key and needed new memory.", counter,
          D(p.misses_total), pool),
      detail::SingleValueFamily(
          "poolwatch_pool_outstanding_buffers",
          "Buffers handed out and not yet returned, after the frame's release.", gauge,
          D(p.outstanding_buffers), pool),
      detail::SingleValueFamily("poolwatch_pool_pooled_bytes",
                                "Bytes owned by the pool, free and in use.", gauge,
                                D(p.pooled_bytes), pool),
      detail::SingleValueFamily("poolwatch_pool_in_use_bytes",
                                "Bytes handed out by the pool and not returned.", gauge,
                                D(p.in_use_bytes), pool),
      detail::SingleValueFamily("poolwatch_pool_keys",
                                "Distinct (format, element count) keys in the pool.", gauge,
                                D(p.keys), pool),
      detail::SingleValueFamily("poolwatch_pool_allocation_failures_total",
                                "Allocations refused because the pool's byte cap was reached.",
                                counter, D(p.allocation_failures_total), pool),
      detail::SingleValueFamily("poolwatch_pool_trimmed_bytes_total",
                                "Bytes of idle free buffers evicted by the trim policy.", counter,
                                D(p.trimmed_bytes_total), pool),
      detail::SingleValueFamily("poolwatch_frames_total", "Frames executed by the simulation loop.",
                                counter, D(s.health.frames), {}),
      detail::SingleValueFamily("poolwatch_frame_overruns_total",
                                "Frames that ended after their tick's deadline.", counter,
                                D(s.health.overruns), {}),
      Histogram("poolwatch_frame_duration_seconds", "Time spent executing a frame.",
                s.frame_duration),
      Histogram("poolwatch_tick_lateness_seconds",
                "Time between a tick's deadline and the loop waking up for it.", s.tick_lateness),
      detail::SingleValueFamily("poolwatch_health_snapshots_total",
                                "Health snapshots emitted by the monitor.", counter, D(s.sequence),
                                {}),
  };
}

}  // namespace poolwatch

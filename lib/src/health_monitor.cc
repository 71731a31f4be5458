#include "poolwatch/health_monitor.h"

#include <algorithm>
#include <utility>

namespace poolwatch {

namespace {
double ToSeconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

DurationHistogram::DurationHistogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {}

void DurationHistogram::Observe(double seconds) {
  const auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), seconds);
  ++bucket_counts_[static_cast<std::size_t>(it - upper_bounds_.begin())];
  ++count_;
  sum_ += seconds;
}

std::vector<double> DurationHistogram::BucketsAroundBudget(std::chrono::nanoseconds budget) {
  const double b = ToSeconds(budget);
  return {b / 16, b / 8, b / 4, b / 2, b * 0.75, b, b * 1.5, b * 2, b * 4, b * 8};
}

std::vector<double> DurationHistogram::LatenessBuckets() {
  return {1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1};
}

void HealthMonitor::RecordFrameTime(RuntimeState& state, std::chrono::nanoseconds frame_time) {
  ++state.health.frames;
  state.health.last_frame_seconds = ToSeconds(frame_time);
  state.frame_duration.Observe(state.health.last_frame_seconds);
}

void HealthMonitor::RecordTickLateness(RuntimeState& state, std::chrono::nanoseconds lateness) {
  state.health.last_tick_lateness_seconds = ToSeconds(std::max(lateness, {}));
  state.tick_lateness.Observe(state.health.last_tick_lateness_seconds);
}

void HealthMonitor::RecordPoolStats(RuntimeState& state, const BufferPool& pool) {
  const PoolStats& stats = pool.Stats();
  state.pool = stats;
  pool.OutstandingBySite(state.outstanding);
  state.health.pool_allocs = stats.last_frame.allocations;
  state.health.pool_releases = stats.last_frame.releases;
  state.health.pooled_bytes = stats.pooled_bytes;
  state.health.pool_key_count = stats.keys;
}

bool HealthMonitor::ShouldEmitSnapshot(const RuntimeState& state) const {
  const std::uint64_t interval = std::max<std::uint32_t>(options_.snapshot_interval_frames, 1);
  return state.health.frames >= state.last_snapshot_frames + interval;
}

void HealthMonitor::EmitHealthSnapshot(RuntimeState& state) {
  ++state.snapshots;
  state.last_snapshot_frames = state.health.frames;
  // Assigned into a member so that the histograms' storage is reused: no allocation per frame.
  snapshot_.sequence = state.snapshots;
  snapshot_.time = std::chrono::system_clock::now();
  snapshot_.health = state.health;
  snapshot_.pool = state.pool;
  snapshot_.outstanding = state.outstanding;
  snapshot_.frame_duration = state.frame_duration;
  snapshot_.tick_lateness = state.tick_lateness;
  for (const Subscriber& subscriber : subscribers_) subscriber(snapshot_);
}

}  // namespace poolwatch

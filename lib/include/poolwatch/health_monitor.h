#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "poolwatch/buffer_pool.h"

namespace poolwatch {

// A cumulative histogram over fixed upper bounds (seconds), with an implicit +Inf bucket.
// Plain data: copied into every snapshot. Not thread-safe.
class DurationHistogram {
 public:
  DurationHistogram() = default;
  // `upper_bounds` must be strictly increasing.
  explicit DurationHistogram(std::vector<double> upper_bounds);

  void Observe(double seconds);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Per-bucket (not cumulative) counts; one more than upper_bounds(), the last is +Inf.
  const std::vector<std::uint64_t>& bucket_counts() const { return bucket_counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

  // Bounds around a tick budget: from budget/16 to 8 × budget.
  static std::vector<double> BucketsAroundBudget(std::chrono::nanoseconds budget);
  // Bounds for wake-up lateness, 10 µs to 100 ms.
  static std::vector<double> LatenessBuckets();

 private:
  std::vector<double> upper_bounds_;
  std::vector<std::uint64_t> bucket_counts_ = {0};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// The health of the runtime as of the last completed frame. The four memory fields are the
// sprint's (poolAllocs, poolReleases, pooledBytes, poolKeyCount).
struct HealthMetrics {
  std::uint64_t frames = 0;    // frames executed
  std::uint64_t overruns = 0;  // frames that ended after the next tick's deadline
  double last_frame_seconds = 0;
  double last_tick_lateness_seconds = 0;

  std::uint64_t pool_allocs = 0;     // allocations in the last completed frame
  std::uint64_t pool_releases = 0;   // releases (in buffers) in the last completed frame
  std::uint64_t pooled_bytes = 0;    // bytes owned by the pool, free + in use
  std::uint64_t pool_key_count = 0;  // distinct (format, count) keys
};

// Everything the tick thread knows about the runtime's health. Owned by the tick thread.
struct RuntimeState {
  HealthMetrics health;
  PoolStats pool;                             // full pool stats of the last completed frame
  std::vector<OutstandingGroup> outstanding;  // held buffers by (site, format)
  DurationHistogram frame_duration;
  DurationHistogram tick_lateness;
  std::uint64_t snapshots = 0;             // snapshots emitted so far
  std::uint64_t last_snapshot_frames = 0;  // health.frames when the last snapshot was emitted
};

// A sealed, self-contained copy of RuntimeState after one frame, handed to subscribers.
struct HealthSnapshot {
  std::uint64_t sequence = 0;  // 1 for the first snapshot
  std::chrono::system_clock::time_point time;
  HealthMetrics health;
  PoolStats pool;
  std::vector<OutstandingGroup> outstanding;
  DurationHistogram frame_duration;
  DurationHistogram tick_lateness;
};

struct HealthMonitorOptions {
  // Emit a snapshot every this many frames (1: after every frame).
  std::uint32_t snapshot_interval_frames = 1;
};

// Records a frame's timing and pool stats into a RuntimeState and hands sealed snapshots to its
// subscribers.
//
// Thread-safety: Record*/ShouldEmitSnapshot/EmitHealthSnapshot run on the tick thread, which
// also calls the subscribers; a subscriber must be quick and must not call back into the loop.
// Subscribe() only before the loop starts.
class HealthMonitor {
 public:
  using Subscriber = std::function<void(const HealthSnapshot&)>;

  explicit HealthMonitor(HealthMonitorOptions options = {}) : options_(options) {}

  void Subscribe(Subscriber subscriber) { subscribers_.push_back(std::move(subscriber)); }
  void SetOptions(const HealthMonitorOptions& options) { options_ = options; }

  static void RecordFrameTime(RuntimeState& state, std::chrono::nanoseconds frame_time);
  static void RecordTickLateness(RuntimeState& state, std::chrono::nanoseconds lateness);
  static void RecordOverrun(RuntimeState& state) { ++state.health.overruns; }
  // Reads the pool's sealed stats and its held buffers by site: call after ReleaseAll(), so
  // they describe the frame just run. O(sites), not O(buffers).
  static void RecordPoolStats(RuntimeState& state, const BufferPool& pool);

  bool ShouldEmitSnapshot(const RuntimeState& state) const;
  void EmitHealthSnapshot(RuntimeState& state);

 private:
  HealthMonitorOptions options_;
  std::vector<Subscriber> subscribers_;
  HealthSnapshot snapshot_;
};

}  // namespace poolwatch

#include "poolwatch/health_monitor.h"

#include <gtest/gtest.h>

#include <vector>

namespace poolwatch {
namespace {

using std::chrono::milliseconds;

TEST(DurationHistogramTest, ObservationsLandInTheFirstBucketThatHoldsThem) {
  DurationHistogram histogram({0.001, 0.01, 0.1});
  histogram.Observe(0.0005);
  histogram.Observe(0.001);  // upper bounds are inclusive, as in Prometheus
  histogram.Observe(0.05);
  histogram.Observe(3.0);
  EXPECT_EQ(histogram.bucket_counts(), (std::vector<std::uint64_t>{2, 0, 1, 1}));
  EXPECT_EQ(histogram.count(), 4U);
  EXPECT_DOUBLE_EQ(histogram.sum(), 3.0515);
}

TEST(DurationHistogramTest, BudgetBucketsBracketTheTickBudget) {
  const auto bounds = DurationHistogram::BucketsAroundBudget(milliseconds{16});
  EXPECT_LT(bounds.front(), 0.016);
  EXPECT_GT(bounds.back(), 0.016);
  EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
  EXPECT_NE(std::find(bounds.begin(), bounds.end(), 0.016), bounds.end());
}

TEST(HealthMonitorTest, RecordPoolStatsCopiesTheSealedFrame) {
  BufferPool pool;
  pool.Alloc(BufferFormat::kF32, 4);
  pool.Alloc(BufferFormat::kF32, 4);
  pool.Acquire(BufferFormat::kU8, 3);
  pool.ReleaseAll();
  RuntimeState state;
  HealthMonitor::RecordPoolStats(state, pool);
  EXPECT_EQ(state.health.pool_allocs, 3U);
  EXPECT_EQ(state.health.pool_releases, 2U);
  EXPECT_EQ(state.health.pooled_bytes, 35U);
  EXPECT_EQ(state.health.pool_key_count, 2U);
  EXPECT_EQ(state.pool.outstanding_buffers, 1U);
}

TEST(HealthMonitorTest, SnapshotsFollowTheIntervalAndReachEverySubscriber) {
  HealthMonitor monitor(HealthMonitorOptions{.snapshot_interval_frames = 3});
  std::vector<std::uint64_t> seen_a;
  std::vector<std::uint64_t> seen_b;
  monitor.Subscribe([&](const HealthSnapshot& s) { seen_a.push_back(s.health.frames); });
  monitor.Subscribe([&](const HealthSnapshot& s) { seen_b.push_back(s.sequence); });
  RuntimeState state;
  for (int i = 0; i < 10; ++i) {
    HealthMonitor::RecordFrameTime(state, milliseconds{1});
    if (monitor.ShouldEmitSnapshot(state)) monitor.EmitHealthSnapshot(state);
  }
  EXPECT_EQ(seen_a, (std::vector<std::uint64_t>{3, 6, 9}));
  EXPECT_EQ(seen_b, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(state.snapshots, 3U);
}

TEST(HealthMonitorTest, FrameTimeAndLatenessFeedTheirHistograms) {
  RuntimeState state;
  state.frame_duration = DurationHistogram({0.005, 0.02});
  state.tick_lateness = DurationHistogram({0.001});
  HealthMonitor::RecordFrameTime(state, milliseconds{10});
  HealthMonitor::RecordTickLateness(state, milliseconds{-3});  // early wake-ups count as 0
  EXPECT_EQ(state.health.frames, 1U);
  EXPECT_DOUBLE_EQ(state.health.last_frame_seconds, 0.01);
  EXPECT_EQ(state.frame_duration.bucket_counts(), (std::vector<std::uint64_t>{0, 1, 0}));
  EXPECT_EQ(state.tick_lateness.bucket_counts(), (std::vector<std::uint64_t>{1, 0}));
  EXPECT_DOUBLE_EQ(state.health.last_tick_lateness_seconds, 0.0);
}

}  // namespace
}  // namespace poolwatch

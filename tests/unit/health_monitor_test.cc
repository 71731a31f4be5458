#include "poolwatch/health_monitor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace poolwatch {
namespace {

using std::chrono::milliseconds;

TEST(HistogramTest, ObservationsLandInTheFirstBucketThatHoldsThem) {
  Histogram histogram({0.001, 0.01, 0.1});
  histogram.Observe(0.0005);
  histogram.Observe(0.001);  // upper bounds are inclusive, as in Prometheus
  histogram.Observe(0.05);
  histogram.Observe(3.0);
  EXPECT_EQ(histogram.bucket_counts(), (std::vector<std::uint64_t>{2, 0, 1, 1}));
  EXPECT_EQ(histogram.count(), 4U);
  EXPECT_DOUBLE_EQ(histogram.sum(), 3.0515);
}

// At 60 Hz a reference frame takes ~20 µs: the buckets must tell 20 µs from 200 µs as well as
// a frame at 90 % of its budget from one at 110 %.
TEST(HistogramTest, DurationBucketsResolveMicrosecondsAndSeveralBudgets) {
  const auto bounds = Histogram::DurationBuckets(std::chrono::nanoseconds{16'666'667});
  EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
  EXPECT_EQ(std::adjacent_find(bounds.begin(), bounds.end()), bounds.end());
  EXPECT_DOUBLE_EQ(bounds.front(), 5e-6);
  EXPECT_EQ(std::ranges::count_if(bounds, [](double b) { return b > 1e-5 && b < 5e-5; }), 1);
  EXPECT_EQ(std::ranges::count_if(bounds, [](double b) { return b == 16'666'667e-9; }), 1);
  EXPECT_DOUBLE_EQ(bounds.back(), 8 * 16'666'667e-9);
  EXPECT_EQ(bounds.size(), 17U);  // 7 below budget/16, then 10 around the budget
  // A 1 kHz loop: the fine steps stop at half of budget/16 (62.5 µs), no bound repeats.
  const auto fast = Histogram::DurationBuckets(milliseconds{1});
  EXPECT_EQ(fast, (std::vector<double>{5e-6, 1e-5, 2.5e-5, 6.25e-5, 1.25e-4, 2.5e-4, 5e-4, 7.5e-4,
                                       1e-3, 1.5e-3, 2e-3, 4e-3, 8e-3}));
}

// Schema 3: bucket k holds (2^((k-1)/8), 2^(k/8)], so 1 and 2 close buckets 0 and 8.
TEST(NativeBucketsTest, KeysFollowSchemaThree) {
  EXPECT_EQ(NativeBuckets::Key(1.0), 0);
  EXPECT_EQ(NativeBuckets::Key(1.0001), 1);
  EXPECT_EQ(NativeBuckets::Key(1.09), 1);  // 2^(1/8) = 1.0905
  EXPECT_EQ(NativeBuckets::Key(1.1), 2);
  EXPECT_EQ(NativeBuckets::Key(2.0), 8);
  EXPECT_EQ(NativeBuckets::Key(0.5), -8);
  EXPECT_EQ(NativeBuckets::Key(0.016), -47);   // 2^(-47/8) = 0.01696, 2^(-48/8) = 0.015625
  EXPECT_EQ(NativeBuckets::Key(20e-6), -124);  // 2^(-124/8) = 2.16e-5, 2^(-125/8) = 1.98e-5
}

TEST(NativeBucketsTest, GrowToTheRangeObservedAndCountZerosApart) {
  Histogram histogram({1.0}, /*native=*/true);
  ASSERT_TRUE(histogram.native());
  for (double v : {0.0, 1.0, 2.0, 2.0, 0.5, 0.0}) histogram.Observe(v);
  const NativeBuckets& native = *histogram.native();
  EXPECT_EQ(native.zero_count, 2U);
  EXPECT_EQ(native.offset, -8);
  ASSERT_EQ(native.counts.size(), 17U);  // keys -8 to 8
  EXPECT_EQ(native.counts.front(), 1U);
  EXPECT_EQ(native.counts[8], 1U);
  EXPECT_EQ(native.counts.back(), 2U);
  EXPECT_EQ(std::accumulate(native.counts.begin(), native.counts.end(), std::uint64_t{0}) +
                native.zero_count,
            histogram.count());
  EXPECT_FALSE(Histogram({1.0}).native()) << "native buckets only when asked";
}

TEST(HistogramTest, CountBucketsSeparateIdleFramesAndGrowByFour) {
  Histogram histogram(Histogram::CountBuckets());
  for (double allocations : {0.0, 1.0, 3.0, 4.0, 256.0, 1e6}) histogram.Observe(allocations);
  EXPECT_EQ(histogram.bucket_counts(),
            (std::vector<std::uint64_t>{1, 1, 2, 0, 0, 1, 0, 0, 0, 0, 1}));
}

HealthMonitorOptions Loop(std::string name = "main", std::uint32_t interval = 1) {
  return {
      .loop = std::move(name), .period = milliseconds{10}, .snapshot_interval_frames = interval};
}

TEST(HealthMonitorTest, EndFrameEndsEveryPoolsFrameAndTheSnapshotDescribesIt) {
  BufferPool render;
  BufferPool physics;
  HealthMonitor monitor(Loop());
  monitor.AddPool("render", render);
  monitor.AddPool("physics", physics);
  std::vector<HealthSnapshot> seen;
  monitor.Subscribe([&](const HealthSnapshot& s) { seen.push_back(s); });

  render.Alloc(BufferFormat::kF32, 4);
  render.Alloc(BufferFormat::kF32, 4);
  physics.Acquire(BufferFormat::kU8, 3, "physics.contacts");
  physics.Alloc(BufferFormat::kU8, 5);
  monitor.EndFrame({.duration = milliseconds{2}, .lateness = milliseconds{1}, .overrun = false});

  ASSERT_EQ(seen.size(), 1U);
  const HealthSnapshot& s = seen[0];
  EXPECT_EQ(s.loop, "main");
  EXPECT_EQ(s.sequence, 1U);
  EXPECT_EQ(s.timing.frames, 1U);
  ASSERT_EQ(s.pools.size(), 2U);
  // Frame-scoped buffers of both pools were returned before their stats were read.
  const PoolStats& r = s.FindPool("render")->stats;
  EXPECT_EQ(r.last_frame.allocations, 2U);
  EXPECT_EQ(r.last_frame.releases, 2U);
  EXPECT_EQ(r.outstanding_buffers, 0U);
  EXPECT_EQ(r.pooled_bytes, 32U);
  const PoolSnapshot& p = *s.FindPool("physics");
  EXPECT_EQ(p.stats.last_frame.allocations, 2U);
  EXPECT_EQ(p.stats.last_frame.releases, 1U);
  EXPECT_EQ(p.stats.outstanding_buffers, 1U);
  EXPECT_EQ(p.stats.keys, 2U);
  ASSERT_EQ(p.outstanding.size(), 1U);
  EXPECT_STREQ(p.outstanding[0].site, "physics.contacts");
  EXPECT_EQ(render.Stats().frames, 1U);
  EXPECT_EQ(physics.Stats().frames, 1U);
}

TEST(HealthMonitorTest, SnapshotsFollowTheIntervalAndReachEverySubscriber) {
  HealthMonitor monitor(Loop("main", 3));
  std::vector<std::uint64_t> seen_a;
  std::vector<std::uint64_t> seen_b;
  monitor.Subscribe([&](const HealthSnapshot& s) { seen_a.push_back(s.timing.frames); });
  monitor.Subscribe([&](const HealthSnapshot& s) { seen_b.push_back(s.sequence); });
  for (int i = 0; i < 10; ++i) monitor.EndFrame({.duration = milliseconds{1}});
  EXPECT_EQ(seen_a, (std::vector<std::uint64_t>{3, 6, 9}));
  EXPECT_EQ(seen_b, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(monitor.snapshots(), 3U);
  monitor.SetSnapshotInterval(1);
  monitor.EndFrame({.duration = milliseconds{1}});
  EXPECT_EQ(seen_a.back(), 11U);  // frame 11 is due at once with an interval of 1
}

TEST(HealthMonitorTest, FrameTimeLatenessAndOverrunsFeedTheLoopStats) {
  HealthMonitor monitor(Loop());
  std::vector<HealthSnapshot> seen;
  monitor.Subscribe([&](const HealthSnapshot& s) { seen.push_back(s); });
  monitor.EndFrame({.duration = milliseconds{10}, .lateness = milliseconds{-3}, .overrun = true});
  const LoopStats& stats = monitor.stats();
  EXPECT_EQ(stats.frames, 1U);
  EXPECT_EQ(stats.overruns, 1U);
  EXPECT_DOUBLE_EQ(stats.last_frame_seconds, 0.01);
  EXPECT_DOUBLE_EQ(stats.last_tick_lateness_seconds, 0.0);  // early wake-ups count as 0
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].frame_duration.count(), 1U);
  EXPECT_EQ(seen[0].tick_lateness.bucket_counts().front(), 1U);
  // The frame-duration buckets bracket the loop's period.
  const auto& bounds = seen[0].frame_duration.upper_bounds();
  EXPECT_NE(std::find(bounds.begin(), bounds.end(), 0.01), bounds.end());
  EXPECT_EQ(seen[0].tick_lateness.upper_bounds(), bounds);
  EXPECT_EQ(seen[0].period, milliseconds{10});
}

TEST(WindowedMaxTest, KeepsAValueForTheWholeWindowThenForgetsIt) {
  WindowedMax<std::uint64_t> window(/*slot_frames=*/10, /*slots=*/3);  // 31 to 40 frames
  window.Add(500);
  for (int frame = 1; frame < 40; ++frame) {
    window.Add(1);
    ASSERT_EQ(window.Max(), 500U) << "frame " << frame;
  }
  window.Add(1);
  EXPECT_EQ(window.Max(), 1U);  // 41 frames on, the 500 has left the window
  EXPECT_EQ(window.HighWater(), 500U);
  window.Add(7);
  EXPECT_EQ(window.Max(), 7U);
}

// Peaks come from every frame, not only from the frames a snapshot follows: a burst between
// two snapshots still shows, for the whole window, with the same value in every snapshot.
TEST(HealthMonitorTest, PeaksSeeEveryFrameAndLastTheWindow) {
  BufferPool pool;
  HealthMonitor monitor({.loop = "main",
                         .period = milliseconds{100},  // 10 frames per second
                         .snapshot_interval_frames = 10,
                         .peak_window = std::chrono::seconds{2}});
  monitor.AddPool("p", pool);
  std::vector<HealthSnapshot> snapshots;
  monitor.Subscribe([&](const HealthSnapshot& s) { snapshots.push_back(s); });
  for (int frame = 0; frame < 60; ++frame) {
    const std::uint32_t buffers = frame == 3 ? 8 : 1;  // one burst, in a frame no snapshot follows
    for (std::uint32_t i = 0; i < buffers; ++i) pool.Alloc(BufferFormat::kF32, 256 + i);
    monitor.EndFrame({.duration = milliseconds{frame == 3 ? 40 : 2}});
  }
  ASSERT_EQ(snapshots.size(), 6U);
  const std::uint64_t burst_bytes = std::uint64_t{4} * (8 * 256 + 28);  // 256 + ... + 263 floats
  // Snapshots after frames 9, 19 and 29: the burst of frame 3 is within 2 to 3 s.
  for (std::size_t i = 0; i < 3; ++i) {
    const PoolPeaks& peaks = snapshots[i].pools[0].peaks;
    EXPECT_EQ(peaks.frame_peak_in_use_bytes, burst_bytes) << "snapshot " << i;
    EXPECT_EQ(peaks.frame_peak_allocations, 8U) << "snapshot " << i;
    EXPECT_DOUBLE_EQ(snapshots[i].frame_peak_duration_seconds, 0.040) << "snapshot " << i;
  }
  // After frame 49 it has left the window; the maxima since the start keep it.
  const HealthSnapshot& late = snapshots[4];
  EXPECT_EQ(late.pools[0].peaks.frame_peak_in_use_bytes, 4U * 256);
  EXPECT_EQ(late.pools[0].peaks.frame_peak_allocations, 1U);
  EXPECT_DOUBLE_EQ(late.frame_peak_duration_seconds, 0.002);
  EXPECT_EQ(late.pools[0].peaks.frame_max_in_use_bytes, burst_bytes);
  EXPECT_EQ(late.pools[0].peaks.frame_max_allocations, 8U);
  // Every frame is in the allocations histogram too: 49 frames of 1, the burst of 8 (le="16").
  const Histogram& allocations = late.pools[0].allocations_per_frame;
  EXPECT_EQ(allocations.count(), 50U);
  EXPECT_DOUBLE_EQ(allocations.sum(), 49 + 8);
  EXPECT_EQ(allocations.bucket_counts()[1], 49U);
  EXPECT_EQ(allocations.bucket_counts()[3], 1U);
  EXPECT_THROW(HealthMonitor({.loop = "x", .peak_window = std::chrono::seconds{0}}),
               std::invalid_argument);
}

// At 60 Hz the period is 16.666667 ms: a second is 59.99 periods, so runs of 59 frames would
// make a 15 s window of 14.77 s. A burst stays visible for the whole window, whenever it came.
TEST(HealthMonitorTest, ThePeakWindowIsNeverShorterThanAsked) {
  BufferPool pool;
  HealthMonitor monitor({.loop = "main", .period = std::chrono::nanoseconds{16'666'667}});
  monitor.AddPool("p", pool);
  std::uint64_t seen = 0;
  monitor.Subscribe(
      [&](const HealthSnapshot& s) { seen = s.pools[0].peaks.frame_peak_allocations; });
  constexpr int kBurst = 58;                             // the last frame of a first run of 59
  for (int frame = 0; frame <= kBurst + 899; ++frame) {  // 900 frames from the burst: 15 s
    for (std::uint32_t i = 0; i < (frame == kBurst ? 8U : 1U); ++i)
      pool.Alloc(BufferFormat::kU8, 64 + i);
    monitor.EndFrame({});
    if (frame >= kBurst) {
      ASSERT_EQ(seen, 8U) << "frame " << frame;
    }
  }
}

TEST(HealthMonitorTest, NamesAreCheckedAndAPoolIsAddedOnce) {
  EXPECT_THROW(HealthMonitor(Loop("")), std::invalid_argument);
  EXPECT_THROW(HealthMonitor(Loop(std::string(65, 'x'))), std::invalid_argument);
  EXPECT_THROW(HealthMonitor(Loop(std::string("a\0b", 3))), std::invalid_argument);
  EXPECT_THROW(HealthMonitor({.loop = "main", .period = {}, .snapshot_interval_frames = 1}),
               std::invalid_argument);
  EXPECT_NO_THROW(HealthMonitor(Loop(std::string(64, 'x'))));

  BufferPool a;
  BufferPool b;
  HealthMonitor monitor(Loop());
  monitor.AddPool("render", a);
  try {
    monitor.AddPool("render", b);
    FAIL() << "a second pool named render was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("render"), std::string::npos) << e.what();
  }
  EXPECT_THROW(monitor.AddPool("bad\nname", b), std::invalid_argument);
  monitor.EndFrame({});
  EXPECT_THROW(monitor.AddPool("late", b), std::logic_error);
  EXPECT_EQ(monitor.PoolNames(), (std::vector<std::string>{"render"}));
}

}  // namespace
}  // namespace poolwatch

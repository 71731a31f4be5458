#include "poolwatch/simulation_loop.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace poolwatch {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

class SimulationLoopTest : public ::testing::Test {
 protected:
  // Each frame allocates `allocs` buffers and takes `work[frame]` (or 1 ms) of clock time.
  SimulationLoop MakeLoop(std::vector<milliseconds> work = {}) {
    work_ = std::move(work);
    return {clock_, monitor_, [this](std::uint64_t frame) {
              frames_seen_.push_back(frame);
              starts_.push_back(clock_.Now());
              for (int i = 0; i < allocs_; ++i) pool_.Alloc(BufferFormat::kF32, 8);
              if (leak_) pool_.Acquire(BufferFormat::kF32, 8, "test.leak");
              clock_.Advance(frame < work_.size() ? work_[frame] : 1ms);
            }};
  }

  static HealthMonitorOptions Options() {
    return {.loop = "main", .period = 10ms, .snapshot_interval_frames = 1};
  }

  void SetUp() override { monitor_.AddPool("test", pool_); }

  ManualClock clock_{Clock::time_point{} + 1s};
  BufferPool pool_;
  HealthMonitor monitor_{Options()};
  std::vector<milliseconds> work_;
  std::vector<std::uint64_t> frames_seen_;
  std::vector<Clock::time_point> starts_;
  int allocs_ = 2;
  bool leak_ = false;
};

TEST_F(SimulationLoopTest, TicksStayOnTheGridWithoutDrift) {
  SimulationLoop loop = MakeLoop({3ms, 7ms, 9ms, 1ms, 4ms});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(loop.Tick());
  const Clock::time_point start = starts_.front();
  for (std::size_t i = 0; i < starts_.size(); ++i) {
    EXPECT_EQ(starts_[i] - start, i * 10ms) << "tick " << i;
  }
  EXPECT_EQ(loop.stats().overruns, 0U);
  EXPECT_EQ(loop.stats().frames, 100U);
  EXPECT_EQ(frames_seen_.back(), 99U);
}

TEST_F(SimulationLoopTest, AnOverrunIsCountedAndTheNextTickRunsLateOnce) {
  SimulationLoop loop = MakeLoop({1ms, 14ms, 1ms, 1ms});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(loop.Tick());
  const Clock::time_point t0 = starts_[0];
  EXPECT_EQ(starts_[1] - t0, 10ms);
  EXPECT_EQ(starts_[2] - t0, 24ms);  // late: frame 1 ended at 24 ms, past its 20 ms deadline
  EXPECT_EQ(starts_[3] - t0, 30ms);  // back on the grid
  EXPECT_EQ(loop.stats().overruns, 1U);
}

TEST_F(SimulationLoopTest, ASlowBurstSkipsMissedTicksInsteadOfCatchingUp) {
  SimulationLoop loop = MakeLoop({1ms, 55ms, 1ms, 1ms, 1ms});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(loop.Tick());
  const Clock::time_point t0 = starts_[0];
  // Frame 1 ends at 65 ms: ticks at 20..60 ms are skipped; the loop resumes at 65 ms (the 60 ms
  // tick, late), then 70 ms, 80 ms: one late tick, no burst of back-to-back frames.
  EXPECT_EQ(starts_[2] - t0, 65ms);
  EXPECT_EQ(starts_[3] - t0, 70ms);
  EXPECT_EQ(starts_[4] - t0, 80ms);
  EXPECT_EQ(loop.stats().overruns, 1U);
}

TEST_F(SimulationLoopTest, LatenessIsMeasuredFromTheDeadline) {
  SimulationLoop loop = MakeLoop({1ms, 14ms, 1ms});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loop.Tick());
  EXPECT_DOUBLE_EQ(loop.stats().last_tick_lateness_seconds, 0.004);
}

// The snapshot after frame N carries frame N's numbers, not frame N-1's (the sketch's flaw).
TEST_F(SimulationLoopTest, SnapshotDescribesTheFrameItFollows) {
  std::vector<HealthSnapshot> snapshots;
  monitor_.Subscribe([&](const HealthSnapshot& s) { snapshots.push_back(s); });
  SimulationLoop loop = MakeLoop();
  allocs_ = 1;
  ASSERT_TRUE(loop.Tick());
  allocs_ = 5;
  ASSERT_TRUE(loop.Tick());
  allocs_ = 2;
  leak_ = true;
  ASSERT_TRUE(loop.Tick());
  ASSERT_EQ(snapshots.size(), 3U);
  const auto pool = [&](std::size_t i) { return snapshots[i].pools.at(0).stats; };
  EXPECT_EQ(pool(0).last_frame.frame, 0U);
  EXPECT_EQ(pool(0).last_frame.allocations, 1U);
  EXPECT_EQ(pool(1).last_frame.frame, 1U);
  EXPECT_EQ(pool(1).last_frame.allocations, 5U);
  EXPECT_EQ(pool(1).last_frame.releases, 5U);
  EXPECT_EQ(pool(2).last_frame.allocations, 3U);
  EXPECT_EQ(pool(2).last_frame.releases, 2U);
  EXPECT_EQ(pool(2).outstanding_buffers, 1U);
  EXPECT_EQ(snapshots[2].timing.frames, 3U);
}

TEST_F(SimulationLoopTest, RunStopsWhenAskedAndFinishesItsFrame) {
  SteadyClock clock;
  BufferPool pool;
  HealthMonitor monitor({.loop = "main", .period = 1ms, .snapshot_interval_frames = 1});
  monitor.AddPool("p", pool);
  std::atomic<int> frames{0};
  SimulationLoop loop(clock, monitor, [&](std::uint64_t) {
    pool.Alloc(BufferFormat::kU8, 16);
    ++frames;
  });
  std::jthread thread([&](const std::stop_token& stop) { loop.Run(stop); });
  while (frames < 5) std::this_thread::sleep_for(1ms);
  thread.request_stop();
  thread.join();
  EXPECT_EQ(loop.stats().frames, static_cast<std::uint64_t>(frames.load()));
  EXPECT_EQ(pool.Stats().outstanding_buffers, 0U);
  EXPECT_NE(loop.LastTickTime(), Clock::time_point{});
}

TEST(SteadyClockTest, SleepUntilReturnsAtOnceWhenStopped) {
  SteadyClock clock;
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  // Would sleep an hour; the stop request wakes it.
  EXPECT_FALSE(clock.SleepUntil(clock.Now() + std::chrono::hours{1}, stop.get_token()));
}

}  // namespace
}  // namespace poolwatch

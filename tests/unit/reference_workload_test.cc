#include "reference_workload.h"

#include <gtest/gtest.h>

namespace poolwatch::daemon {
namespace {

PoolStats RunFrames(Scenario scenario, int frames, WorkloadOptions options = {}) {
  options.scenario = scenario;
  options.particles = 256;
  BufferPool pool;
  ReferenceWorkload workload(options);
  for (int frame = 0; frame < frames; ++frame) {
    workload.RunFrame(pool, static_cast<std::uint64_t>(frame));
    pool.EndFrame();
  }
  return pool.Stats();
}

TEST(ReferenceWorkloadTest, ScenarioNamesRoundTrip) {
  for (Scenario s : {Scenario::kSteady, Scenario::kLeak, Scenario::kBloat, Scenario::kSpike}) {
    EXPECT_EQ(ParseScenario(ScenarioName(s)), s);
  }
  EXPECT_FALSE(ParseScenario("Steady"));
  EXPECT_FALSE(ParseScenario(""));
}

TEST(ReferenceWorkloadTest, SteadyBalancesAndKeepsBytesFlat) {
  const PoolStats after_10 = RunFrames(Scenario::kSteady, 10);
  const PoolStats after_100 = RunFrames(Scenario::kSteady, 100);
  EXPECT_EQ(after_100.last_frame.Imbalance(), 0);
  EXPECT_EQ(after_100.outstanding_buffers, 0U);
  EXPECT_EQ(after_100.pooled_bytes, after_10.pooled_bytes);
  EXPECT_EQ(after_100.keys, after_10.keys);
  EXPECT_EQ(after_100.misses_total, after_10.misses_total);
}

TEST(ReferenceWorkloadTest, LeakLosesHeldBuffersEveryFrame) {
  const PoolStats stats = RunFrames(Scenario::kLeak, 50, {.leak_buffers_per_frame = 2});
  EXPECT_EQ(stats.last_frame.Imbalance(), 2);
  EXPECT_EQ(stats.outstanding_buffers, 100U);
  EXPECT_EQ(stats.in_use_bytes, 100U * 256 * 4);
}

TEST(ReferenceWorkloadTest, BloatAddsKeysAndBytesWithEveryDomainChange) {
  const PoolStats early = RunFrames(Scenario::kBloat, 10, {.bloat_every_frames = 5});
  const PoolStats late = RunFrames(Scenario::kBloat, 100, {.bloat_every_frames = 5});
  EXPECT_EQ(late.last_frame.Imbalance(), 0);
  EXPECT_EQ(late.outstanding_buffers, 0U);
  EXPECT_GE(late.keys, early.keys + 30);
  EXPECT_GT(late.pooled_bytes, early.pooled_bytes + (17U << 20));
}

TEST(ReferenceWorkloadTest, SpikeBurstsGrowThePoolOnceThenReuseIt) {
  const PoolStats one_burst = RunFrames(Scenario::kSpike, 11, {.spike_every_frames = 10});
  const PoolStats many_bursts = RunFrames(Scenario::kSpike, 101, {.spike_every_frames = 10});
  const PoolStats steady = RunFrames(Scenario::kSteady, 11);
  EXPECT_GT(one_burst.pooled_bytes, steady.pooled_bytes * 4);
  EXPECT_EQ(many_bursts.pooled_bytes, one_burst.pooled_bytes);
  EXPECT_EQ(many_bursts.last_frame.Imbalance(), 0);
}

TEST(ReferenceWorkloadTest, TheParticlesReallyMove) {
  BufferPool pool;
  ReferenceWorkload workload({.particles = 128});
  workload.RunFrame(pool, 0);
  pool.EndFrame();
  const double first = workload.Checksum();
  for (int i = 1; i < 30; ++i) {
    workload.RunFrame(pool, static_cast<std::uint64_t>(i));
    pool.EndFrame();
  }
  EXPECT_NE(workload.Checksum(), first);
  EXPECT_GT(workload.Checksum(), 0);
}

}  // namespace
}  // namespace poolwatch::daemon

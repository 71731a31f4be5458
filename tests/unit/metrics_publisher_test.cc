#include "poolwatch/metrics_publisher.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <set>
#include <string>

namespace poolwatch {
namespace {

const prometheus::MetricFamily* Find(const std::vector<prometheus::MetricFamily>& families,
                                     const std::string& name) {
  for (const auto& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

HealthSnapshot MakeSnapshot() {
  BufferPool pool;
  for (int i = 0; i < 4; ++i) pool.Alloc(BufferFormat::kF32, 256);
  pool.Acquire(BufferFormat::kU8, 100, "test.leak");
  pool.ReleaseAll();
  RuntimeState state;
  state.frame_duration = DurationHistogram({0.001, 0.01});
  state.tick_lateness = DurationHistogram({0.001});
  HealthMonitor::RecordFrameTime(state, std::chrono::microseconds{1500});
  HealthMonitor::RecordTickLateness(state, std::chrono::microseconds{200});
  HealthMonitor::RecordOverrun(state);
  HealthMonitor::RecordPoolStats(state, pool);
  HealthSnapshot snapshot;
  snapshot.sequence = 1;
  snapshot.health = state.health;
  snapshot.pool = state.pool;
  snapshot.frame_duration = state.frame_duration;
  snapshot.tick_lateness = state.tick_lateness;
  return snapshot;
}

TEST(MetricsPublisherTest, NothingIsExposedBeforeTheFirstSnapshot) {
  MetricsPublisher publisher("p");
  EXPECT_TRUE(publisher.Collect().empty());
  EXPECT_FALSE(publisher.Latest());
}

TEST(MetricsPublisherTest, EveryContractMetricCarriesTheSnapshotValues) {
  MetricsPublisher publisher("main");
  publisher.Publish(MakeSnapshot());
  const auto families = publisher.Collect();

  const std::map<std::string, double> expected = {
      {"poolwatch_pool_frame_allocations", 5},
      {"poolwatch_pool_frame_releases", 4},
      {"poolwatch_pool_frame_imbalance", 1},
      {"poolwatch_pool_allocations_total", 5},
      {"poolwatch_pool_releases_total", 4},
      {"poolwatch_pool_misses_total", 5},
      {"poolwatch_pool_outstanding_buffers", 1},
      {"poolwatch_pool_pooled_bytes", 4 * 1024 + 100},
      {"poolwatch_pool_in_use_bytes", 100},
      {"poolwatch_pool_keys", 2},
      {"poolwatch_pool_allocation_failures_total", 0},
      {"poolwatch_pool_trimmed_bytes_total", 0},
      {"poolwatch_frames_total", 1},
      {"poolwatch_frame_overruns_total", 1},
      {"poolwatch_health_snapshots_total", 1},
  };
  for (const auto& [name, value] : expected) {
    const auto* family = Find(families, name);
    ASSERT_NE(family, nullptr) << name;
    ASSERT_EQ(family->metric.size(), 1U) << name;
    EXPECT_FALSE(family->help.empty()) << name;
    const auto& metric = family->metric[0];
    const bool counter = family->type == prometheus::MetricType::Counter;
    EXPECT_EQ(counter, name.ends_with("_total")) << name << ": _total only on counters";
    EXPECT_DOUBLE_EQ(counter ? metric.counter.value : metric.gauge.value, value) << name;
    if (name.starts_with("poolwatch_pool_")) {
      ASSERT_EQ(metric.label.size(), 1U) << name;
      EXPECT_EQ(metric.label[0].name, "pool");
      EXPECT_EQ(metric.label[0].value, "main");
    }
  }

  const auto* duration = Find(families, "poolwatch_frame_duration_seconds");
  ASSERT_NE(duration, nullptr);
  EXPECT_EQ(duration->type, prometheus::MetricType::Histogram);
  const auto& h = duration->metric[0].histogram;
  EXPECT_EQ(h.sample_count, 1U);
  EXPECT_DOUBLE_EQ(h.sample_sum, 0.0015);
  ASSERT_EQ(h.bucket.size(), 3U);
  EXPECT_EQ(h.bucket[0].cumulative_count, 0U);
  EXPECT_EQ(h.bucket[1].cumulative_count, 1U);
  EXPECT_EQ(h.bucket[2].cumulative_count, 1U);
  ASSERT_NE(Find(families, "poolwatch_tick_lateness_seconds"), nullptr);
}

TEST(MetricsPublisherTest, NoFamilyNameRepeatsAndTheTextFormatHasEveryHelp) {
  MetricsPublisher publisher("main");
  publisher.Publish(MakeSnapshot());
  const auto families = publisher.Collect();
  std::set<std::string> names;
  for (const auto& family : families) EXPECT_TRUE(names.insert(family.name).second) << family.name;
  const std::string text = prometheus::TextSerializer().Serialize(families);
  for (const auto& name : names) {
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
  }
}

TEST(MetricsPublisherTest, ALaterSnapshotReplacesTheEarlierOneWhole) {
  MetricsPublisher publisher("main");
  HealthSnapshot first = MakeSnapshot();
  publisher.Publish(first);
  HealthSnapshot second = first;
  second.sequence = 2;
  second.pool.allocations_total = 99;
  second.pool.releases_total = 98;
  publisher.Publish(second);
  const auto families = publisher.Collect();
  EXPECT_DOUBLE_EQ(Find(families, "poolwatch_pool_allocations_total")->metric[0].counter.value, 99);
  EXPECT_DOUBLE_EQ(Find(families, "poolwatch_pool_releases_total")->metric[0].counter.value, 98);
  EXPECT_DOUBLE_EQ(Find(families, "poolwatch_health_snapshots_total")->metric[0].counter.value, 2);
}

}  // namespace
}  // namespace poolwatch

#include "poolwatch/diagnostics_store.h"

#include <gtest/gtest.h>

#include <vector>

namespace poolwatch {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using Time = std::chrono::system_clock::time_point;

const Time kStart = Time{} + std::chrono::hours{24 * 365 * 50};

HealthSnapshot Snapshot(Time time, std::uint64_t frame) {
  HealthSnapshot s;
  s.loop = "main";
  s.time = time;
  s.sequence = frame + 1;
  s.timing.frames = frame + 1;
  s.pools.emplace_back().name = "p";
  s.pools[0].stats.last_frame.frame = frame;
  return s;
}

const Verdict& VerdictFor(const DiagnosticsReport& report, ConditionKind kind) {
  for (const Verdict& v : report.verdicts) {
    if (v.kind == kind) return v;
  }
  throw std::runtime_error("no verdict");
}

TEST(DiagnosticsStoreTest, HistoryRingIsBounded) {
  DiagnosticsStore store("p",
                         {.history_points = 10, .sample_interval = seconds{1}, .thresholds = {}});
  for (std::uint64_t i = 0; i < 1000; ++i) store.Receive(Snapshot(kStart + seconds{i}, i));
  const DiagnosticsReport report = store.Report();
  ASSERT_EQ(report.history.size(), 10U);
  EXPECT_EQ(report.history.front().frame, 990U);
  EXPECT_EQ(report.history.back().frame, 999U);
}

TEST(DiagnosticsStoreTest, HistorySamplesAtTheIntervalNotEveryFrame) {
  DiagnosticsStore store("p",
                         {.history_points = 100, .sample_interval = seconds{1}, .thresholds = {}});
  // 60 frames per second for 5 seconds.
  for (std::uint64_t i = 0; i < 300; ++i) {
    store.Receive(Snapshot(kStart + std::chrono::microseconds{i * 16667}, i));
  }
  EXPECT_EQ(store.Report().history.size(), 5U);
  EXPECT_EQ(store.Report().latest->pool.stats.last_frame.frame, 299U);
}

// The same series as config/prometheus/tests/poolwatch.rules.test.yml: one sample a minute,
// allocations 10/min, releases short of them by exactly `d` per 5-minute window.
Severity ImbalanceVerdictAfter(std::uint64_t d, minutes at, Severity* pending = nullptr) {
  DiagnosticsStore store("p",
                         {.history_points = 60, .sample_interval = seconds{1}, .thresholds = {}});
  Severity severity = Severity::kOk;
  for (std::uint64_t i = 0; i <= static_cast<std::uint64_t>(at.count()); ++i) {
    HealthSnapshot s = Snapshot(kStart + minutes{i}, i);
    s.pools[0].stats.allocations_total = 10 * i;
    s.pools[0].stats.releases_total = 10 * i - (d * i) / 5;
    store.Receive(s);
  }
  const DiagnosticsReport report = store.Report();
  const Verdict& v = VerdictFor(report, ConditionKind::kImbalance);
  severity = v.severity;
  if (pending != nullptr) *pending = v.pending;
  return severity;
}

TEST(DiagnosticsStoreTest, ImbalanceVerdictsAgreeWithThePromtoolCases) {
  EXPECT_EQ(ImbalanceVerdictAfter(0, minutes{30}), Severity::kOk);
  EXPECT_EQ(ImbalanceVerdictAfter(1, minutes{30}), Severity::kWarning);
  EXPECT_EQ(ImbalanceVerdictAfter(9, minutes{30}), Severity::kWarning);
  EXPECT_EQ(ImbalanceVerdictAfter(10, minutes{30}), Severity::kCritical);
  // Before `for` has passed, the level is pending, not firing.
  Severity pending = Severity::kOk;
  EXPECT_EQ(ImbalanceVerdictAfter(1, minutes{9}, &pending), Severity::kOk);
  EXPECT_EQ(pending, Severity::kWarning);
}

Severity GaugeVerdict(ConditionKind kind, double value) {
  DiagnosticsStore store("p");
  for (std::uint64_t i = 0; i <= 10; ++i) {
    HealthSnapshot s = Snapshot(kStart + minutes{i}, i);
    s.pools[0].stats.pooled_bytes =
        kind == ConditionKind::kPooledBytes ? static_cast<std::uint64_t>(value) : 0;
    s.pools[0].stats.keys = kind == ConditionKind::kKeys ? static_cast<std::uint64_t>(value) : 0;
    store.Receive(s);
  }
  return VerdictFor(store.Report(), kind).severity;
}

TEST(DiagnosticsStoreTest, GaugeVerdictsAgreeWithThePromtoolCases) {
  EXPECT_EQ(GaugeVerdict(ConditionKind::kPooledBytes, 52428800), Severity::kOk);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kPooledBytes, 52428801), Severity::kWarning);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kPooledBytes, 104857600), Severity::kWarning);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kPooledBytes, 104857601), Severity::kCritical);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kKeys, 50), Severity::kOk);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kKeys, 51), Severity::kWarning);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kKeys, 100), Severity::kWarning);
  EXPECT_EQ(GaugeVerdict(ConditionKind::kKeys, 101), Severity::kCritical);
}

TEST(DiagnosticsStoreTest, TransitionsAreReportedOnceEachNotEveryFrame) {
  std::vector<VerdictChange> changes;
  DiagnosticsStore store("p", {}, [&](const VerdictChange& c) { changes.push_back(c); });
  std::uint64_t frame = 0;
  const auto run = [&](std::uint64_t keys, int frames) {
    for (int i = 0; i < frames; ++i, ++frame) {
      HealthSnapshot s = Snapshot(kStart + seconds{frame}, frame);
      s.pools[0].stats.keys = keys;
      store.Receive(s);
    }
  };
  run(10, 100);   // ok
  run(60, 400);   // warning after 300 s
  run(200, 400);  // critical after 300 s more
  run(10, 50);    // resolved at once
  ASSERT_EQ(changes.size(), 3U);
  EXPECT_EQ(changes[0].to, Severity::kWarning);
  EXPECT_EQ(changes[0].alert, "PoolwatchPoolKeys");
  EXPECT_EQ(changes[1].from, Severity::kWarning);
  EXPECT_EQ(changes[1].to, Severity::kCritical);
  EXPECT_EQ(changes[2].to, Severity::kOk);
  EXPECT_EQ(VerdictFor(store.Report(), ConditionKind::kKeys).since, kStart + seconds{900});
}

TEST(DiagnosticsStoreTest, AttributionArrivesThroughTheSnapshotAndAgesAdvance) {
  BufferPool pool;
  BufferPool other;
  HealthMonitor monitor;
  monitor.AddPool("other", other);
  monitor.AddPool("leaky", pool);
  DiagnosticsStore store("leaky");
  monitor.Subscribe([&](const HealthSnapshot& s) { store.Receive(s); });
  for (int frame = 0; frame < 10; ++frame) {
    pool.Alloc(BufferFormat::kF32, 64, "frame.scratch");  // frame-scoped: never outstanding
    pool.Acquire(BufferFormat::kF32, 16, "leaky.site");
    if (frame % 2 == 0) pool.Acquire(BufferFormat::kU8, 100, "other.site");
    other.Acquire(BufferFormat::kU8, 1, "not.this.pool");
    monitor.EndFrame({.duration = std::chrono::milliseconds{1}});
  }
  const auto report = store.Report();
  EXPECT_EQ(report.pool, "leaky");
  ASSERT_TRUE(report.latest);
  EXPECT_EQ(report.latest->loop, "main");
  EXPECT_EQ(report.latest->pool.name, "leaky");
  const auto& groups = report.latest->pool.outstanding;
  ASSERT_EQ(groups.size(), 2U);
  EXPECT_STREQ(groups[0].site, "leaky.site");
  EXPECT_EQ(groups[0].format, BufferFormat::kF32);
  EXPECT_EQ(groups[0].count, 10U);
  EXPECT_EQ(groups[0].bytes, 640U);
  EXPECT_EQ(groups[0].oldest_frame, 0U);
  EXPECT_STREQ(groups[1].site, "other.site");
  EXPECT_EQ(groups[1].count, 5U);
  EXPECT_EQ(report.latest->pool.stats.last_frame.frame - groups[0].oldest_frame, 9U);
  EXPECT_EQ(report.latest->pool.stats.outstanding_buffers, 15U);
}

// One store per pool: each sees only its own pool's numbers, and its transitions name the pool.
TEST(DiagnosticsStoreTest, EachPoolsStoreJudgesOnlyItsPool) {
  std::vector<VerdictChange> changes;
  DiagnosticsStore leaking("physics", {}, [&](const VerdictChange& c) { changes.push_back(c); });
  DiagnosticsStore steady("render", {}, [&](const VerdictChange& c) { changes.push_back(c); });
  DiagnosticsStore absent("audio");
  for (std::uint64_t i = 0; i <= 30; ++i) {
    HealthSnapshot s = Snapshot(kStart + minutes{i}, i);
    s.pools.clear();
    s.pools.emplace_back().name = "render";
    s.pools.emplace_back().name = "physics";
    s.pools[0].stats.allocations_total = 10 * i;
    s.pools[0].stats.releases_total = 10 * i;
    s.pools[1].stats.allocations_total = 10 * i;
    s.pools[1].stats.releases_total = 8 * i;
    leaking.Receive(s);
    steady.Receive(s);
    absent.Receive(s);
  }
  EXPECT_EQ(VerdictFor(leaking.Report(), ConditionKind::kImbalance).severity, Severity::kCritical);
  EXPECT_EQ(VerdictFor(steady.Report(), ConditionKind::kImbalance).severity, Severity::kOk);
  EXPECT_FALSE(absent.Report().latest);
  ASSERT_FALSE(changes.empty());
  for (const VerdictChange& change : changes) {
    EXPECT_EQ(change.pool, "physics");
    EXPECT_EQ(change.loop, "main");
  }
}

}  // namespace
}  // namespace poolwatch

// poolwatch_bench: the pool's cost with and without instrumentation and against malloc, and
// the per-frame and per-scrape costs of publication at growing pool sizes.
//
// Each frame workload runs as a trio whose names differ only in the last part:
//   BM_<Workload>/instrumented  the library's BufferPool
//   BM_<Workload>/plain         the same pool with instrumentation compiled out
//   BM_<Workload>/malloc        the same frame on malloc/free
#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <string>
#include <vector>

#include "frame_workloads.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"

static_assert(poolwatch::kPoolInstrumented);

namespace poolwatch::bench {
namespace {

// A pool holding `n` free buffers (plus one held), as after a long run.
void Fill(BufferPool& pool, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) pool.Alloc(BufferFormat::kU8, 16);
  pool.Acquire(BufferFormat::kF32, 8, "bench.held");
  pool.EndFrame();
}

// Sealing a frame and reading its stats: O(1) whatever the pool's size.
void BM_FrameStats(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  PoolStats stats;
  for (auto _ : state) {
    pool.EndFrame();
    stats = pool.Stats();
    benchmark::DoNotOptimize(stats.pooled_bytes);
  }
}
BENCHMARK(BM_FrameStats)->RangeMultiplier(100)->Range(100, 1'000'000);

// What the sketch did instead of a running sum: walk every buffer.
void BM_RecountBytes(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(pool.AuditBytes().pooled_bytes);
}
BENCHMARK(BM_RecountBytes)->RangeMultiplier(100)->Range(100, 1'000'000);

// A frame ended by the monitor and its snapshot emitted to the daemon's subscribers (metrics
// publisher and diagnostics store): the tick thread's whole per-frame cost beyond the workload.
void BM_Snapshot(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  HealthMonitor monitor;
  monitor.AddPool("bench", pool);
  MetricsPublisher publisher;
  DiagnosticsStore diagnostics("bench");
  publisher.Attach(monitor);
  monitor.Subscribe([&](const HealthSnapshot& s) { diagnostics.Receive(s); });
  for (auto _ : state) monitor.EndFrame({.duration = std::chrono::microseconds{100}});
}
BENCHMARK(BM_Snapshot)->RangeMultiplier(100)->Range(100, 1'000'000);

// One scrape's work: collect the families from the latest snapshot and serialize them.
void BM_ScrapeSerialize(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  HealthMonitor monitor;
  monitor.AddPool("bench", pool);
  MetricsPublisher publisher;
  publisher.Attach(monitor);
  monitor.EndFrame({});
  const prometheus::TextSerializer serializer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = serializer.Serialize(publisher.Collect());
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ScrapeSerialize)->RangeMultiplier(100)->Range(100, 1'000'000);

// `pools` pools with a few held buffers each, one loop per 16 of them, every loop's first frame
// published: what a runtime with many pools exposes.
struct ManyPools {
  explicit ManyPools(std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) {
      if (i % 16 == 0) {
        monitors.push_back(std::make_unique<HealthMonitor>(HealthMonitorOptions{
            .loop = "loop" + std::to_string(i / 16), .period = std::chrono::milliseconds{16}}));
      }
      BufferPool& pool = *pools.emplace_back(std::make_unique<BufferPool>());
      Fill(pool, 100);
      pool.Acquire(BufferFormat::kVec3f, 64, "bench.other");
      monitors.back()->AddPool("pool" + std::to_string(i), pool);
    }
    for (const auto& monitor : monitors) {
      publisher.Attach(*monitor);
      monitor->EndFrame({});
    }
  }
  std::vector<std::unique_ptr<BufferPool>> pools;
  std::vector<std::unique_ptr<HealthMonitor>> monitors;
  MetricsPublisher publisher;
};

// One scrape against the number of pools: collect and serialize every family.
void BM_ScrapePools(benchmark::State& state) {
  ManyPools many(state.range(0));
  const prometheus::TextSerializer serializer;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = serializer.Serialize(many.publisher.Collect());
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["per_pool"] = benchmark::Counter(
      static_cast<double>(state.range(0)),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ScrapePools)->Arg(1)->Arg(16)->Arg(64);

// The longest a tick thread can wait on a scrape: the scrape holds the loop's lock for one copy
// of the loop's snapshot (here a loop of 1, 16 or 64 pools) into a new object, allocating; the
// tick thread's own copy reuses storage and is shorter.
void BM_SnapshotCopy(benchmark::State& state) {
  HealthMonitor monitor;
  std::vector<std::unique_ptr<BufferPool>> pools;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    BufferPool& p = *pools.emplace_back(std::make_unique<BufferPool>());
    Fill(p, 100);
    monitor.AddPool("pool" + std::to_string(i), p);
  }
  HealthSnapshot latest;
  monitor.Subscribe([&](const HealthSnapshot& s) { latest = s; });
  monitor.EndFrame({});
  for (auto _ : state) {
    HealthSnapshot kept = latest;  // what Collect() copies under the loop's lock
    benchmark::DoNotOptimize(kept.pools.data());
  }
}
BENCHMARK(BM_SnapshotCopy)->Arg(1)->Arg(16)->Arg(64);

}  // namespace
}  // namespace poolwatch::bench

int main(int argc, char** argv) {
  using namespace poolwatch::bench;
  for (Workload workload : {Workload::kReferenceFrame, Workload::kManySmall, Workload::kFewLarge,
                            Workload::kManyKeys}) {
    RegisterFrameBenchmark<PoolAllocator<poolwatch::BufferPool>>(workload, "instrumented");
    RegisterPlain(workload);
    RegisterFrameBenchmark<MallocAllocator>(workload, "malloc");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

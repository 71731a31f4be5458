// poolwatch_bench: the pool's cost with and without instrumentation and against malloc, and
// the per-frame and per-scrape costs of publication at growing pool sizes.
//
// Each frame workload runs as a trio whose names differ only in the last part:
//   BM_<Workload>/instrumented  the library's BufferPool
//   BM_<Workload>/plain         the same pool with instrumentation compiled out
//   BM_<Workload>/malloc        the same frame on malloc/free
#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

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
  pool.ReleaseAll();
}

// Runtime state with histograms, as the loop gives it.
RuntimeState BenchRuntime() {
  RuntimeState runtime;
  runtime.frame_duration = DurationHistogram(DurationHistogram::LatenessBuckets());
  runtime.tick_lateness = DurationHistogram(DurationHistogram::LatenessBuckets());
  return runtime;
}

// Sealing a frame and reading its stats: O(1) whatever the pool's size.
void BM_FrameStats(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  RuntimeState runtime;
  for (auto _ : state) {
    pool.ReleaseAll();
    HealthMonitor::RecordPoolStats(runtime, pool);
    benchmark::DoNotOptimize(runtime.health.pooled_bytes);
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

// A snapshot emitted to the daemon's subscribers (metrics publisher and diagnostics store).
void BM_Snapshot(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  HealthMonitor monitor;
  MetricsPublisher publisher("bench");
  DiagnosticsStore diagnostics;
  monitor.Subscribe([&](const HealthSnapshot& s) { publisher.Publish(s); });
  monitor.Subscribe([&](const HealthSnapshot& s) { diagnostics.Receive(s); });
  RuntimeState runtime = BenchRuntime();
  for (auto _ : state) {
    pool.ReleaseAll();
    HealthMonitor::RecordFrameTime(runtime, std::chrono::microseconds{100});
    HealthMonitor::RecordPoolStats(runtime, pool);
    monitor.EmitHealthSnapshot(runtime);
  }
}
BENCHMARK(BM_Snapshot)->RangeMultiplier(100)->Range(100, 1'000'000);

// One scrape's work: collect the families from the latest snapshot and serialize them.
void BM_ScrapeSerialize(benchmark::State& state) {
  BufferPool pool;
  Fill(pool, state.range(0));
  HealthMonitor monitor;
  MetricsPublisher publisher("bench");
  monitor.Subscribe([&](const HealthSnapshot& s) { publisher.Publish(s); });
  RuntimeState runtime = BenchRuntime();
  HealthMonitor::RecordPoolStats(runtime, pool);
  monitor.EmitHealthSnapshot(runtime);
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

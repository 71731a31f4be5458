// poolwatch_bench: the pool's cost with and without instrumentation and against the allocators
// a frame could use instead, and the per-frame and per-scrape costs of publication at growing
// pool sizes.
//
// Each frame workload runs in five variants whose names differ only in the last part:
//   BM_<Workload>/instrumented  the library's BufferPool
//   BM_<Workload>/plain         the same pool with instrumentation compiled out
//   BM_<Workload>/arena         a bump arena reset per frame: the lower bound
//   BM_<Workload>/mimalloc      the same frame on mi_malloc/mi_free
//   BM_<Workload>/malloc        the same frame on glibc's malloc/free
// and BM_<Workload>/paired times the instrumented and the plain pool in alternation, for their
// ratio; BM_<Workload>/paired_trimming does the same with trimming on in both.
// BM_VaryingSizes/<variant> runs frames whose sizes change every frame, the case a pool keyed
// by exact size handles worst: the pool without and with trimming, with the caller rounding its
// sizes, and the arena, mimalloc and glibc.
//
// `poolwatch_bench --resident=<Workload>/<variant>` (instrumented, arena, mimalloc or malloc)
// runs no benchmark: it measures the memory that variant keeps resident for the workload's
// frames, in this process alone (bench/memory.sh runs each in a process of its own).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <mimalloc.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "formats.h"
#include "frame_workloads.h"
#include "gzip.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/call_stack.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"

static_assert(poolwatch::kPoolInstrumented);

namespace poolwatch::bench {
namespace {

// mimalloc through mi_malloc/mi_free, loaded with dlopen(RTLD_LOCAL): Debian's libmimalloc.so
// also defines malloc and free, and linking it would make every other variant (and glibc's) run
// on mimalloc too. Loaded locally, it serves only the calls made through these pointers.
class Mimalloc {
 public:
  static void* Malloc(std::size_t bytes) { return Get().malloc_(bytes); }
  static void Free(void* p) { Get().free_(p); }
  // What mimalloc has committed from the system, for the whole process: on Linux it commits its
  // arena eagerly, 32 MiB at a time, so this does not follow the frame.
  static std::uint64_t HeldBytes() {
    std::size_t elapsed = 0, user = 0, system = 0, rss = 0, peak_rss = 0, commit = 0,
                peak_commit = 0, faults = 0;
    Get().process_info_(&elapsed, &user, &system, &rss, &peak_rss, &commit, &peak_commit, &faults);
    return commit;
  }
  static const char* Error() { return Get().error_; }

 private:
  Mimalloc() {
    handle_ = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      error_ = "libmimalloc.so.2 not loadable (scripts/install-deps.sh bench installs it)";
      return;
    }
    malloc_ = reinterpret_cast<decltype(malloc_)>(dlsym(handle_, "mi_malloc"));
    free_ = reinterpret_cast<decltype(free_)>(dlsym(handle_, "mi_free"));
    process_info_ = reinterpret_cast<decltype(process_info_)>(dlsym(handle_, "mi_process_info"));
    if (malloc_ == nullptr || free_ == nullptr || process_info_ == nullptr) {
      error_ = "libmimalloc.so.2 lacks mi_malloc, mi_free or mi_process_info";
    }
  }
  static const Mimalloc& Get() {
    static const Mimalloc instance;
    return instance;
  }
  void* handle_ = nullptr;
  const char* error_ = nullptr;
  decltype(&mi_malloc) malloc_ = nullptr;
  decltype(&mi_free) free_ = nullptr;
  decltype(&mi_process_info) process_info_ = nullptr;
};

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

// One exposition in each format /metrics speaks, as a scrape that finds none ready makes it:
// collect the publisher's families with their extras, serialize, and, with a second argument
// of 1, gzip. The arguments: pools (one loop per 16), gzip.
void BM_ScrapeFormat(benchmark::State& state, exporter::MetricsFormat format) {
  ManyPools many(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const Exposition exposition = many.publisher.CollectExposition();
    std::string body;
    switch (format) {
      case exporter::MetricsFormat::kText:
        body = exporter::SerializeText(exposition);
        break;
      case exporter::MetricsFormat::kOpenMetrics:
        body = exporter::SerializeOpenMetrics(exposition);
        break;
      case exporter::MetricsFormat::kProtobuf:
        body = exporter::SerializeProtobuf(exposition);
        break;
    }
    if (state.range(1) != 0) body = exporter::GzipCompress(body);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK_CAPTURE(BM_ScrapeFormat, text, exporter::MetricsFormat::kText)
    ->ArgsProduct({{1, 16}, {0, 1}});
BENCHMARK_CAPTURE(BM_ScrapeFormat, openmetrics, exporter::MetricsFormat::kOpenMetrics)
    ->ArgsProduct({{1, 16}, {0, 1}});
BENCHMARK_CAPTURE(BM_ScrapeFormat, protobuf, exporter::MetricsFormat::kProtobuf)
    ->ArgsProduct({{1, 16}, {0, 1}});

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

// A held buffer's round trip, Acquire() then Release(), from a caller nested a few frames deep
// (as a game's systems are), with call stacks off, sampled one in 64 (the daemon's default),
// and captured at every Acquire(). 1000 buffers stay held meanwhile, from the same call stack.
[[gnu::noipa]] BufferId AcquireFromSystem(BufferPool& pool, int depth) {
  if (depth > 0) {
    const BufferId id = AcquireFromSystem(pool, depth - 1);
    benchmark::ClobberMemory();  // keeps this frame: not a tail call
    return id;
  }
  return pool.Acquire(BufferFormat::kF32, 64, "bench.system").id();
}

void BM_AcquireRelease(benchmark::State& state) {
  BufferPool pool({.stack_sampling = static_cast<std::uint32_t>(state.range(0))});
  for (int i = 0; i < 1000; ++i) AcquireFromSystem(pool, 6);
  pool.EndFrame();
  for (auto _ : state) {
    const BufferId id = AcquireFromSystem(pool, 6);
    benchmark::DoNotOptimize(pool.Release(id));
  }
  HeldStacks stacks;
  pool.OutstandingByStack(8, stacks);
  state.counters["stack_depth"] = stacks.top.empty() ? 0 : stacks.top[0].stack.depth;
}
BENCHMARK(BM_AcquireRelease)->ArgName("sampling")->Arg(0)->Arg(64)->Arg(1);

// The call stacks /debug shows, symbolized: the first request of a thread (libbacktrace reads the
// program's symbol and debug information), then a new address once that is loaded, then one the
// cache holds. The addresses are those of a real captured stack.
CallStack SampleStack() {
  BufferPool pool({.stack_sampling = 1});
  AcquireFromSystem(pool, 6);
  HeldStacks stacks;
  pool.OutstandingByStack(1, stacks);
  return stacks.top.at(0).stack;
}

void BM_SymbolizeFirstRequest(benchmark::State& state) {
  const CallStack stack = SampleStack();
  for (auto _ : state) {
    std::thread([&] {
      Symbolizer symbolizer;
      for (std::uintptr_t frame : stack.Frames()) {
        benchmark::DoNotOptimize(symbolizer.Resolve(frame).function.size());
      }
    }).join();
  }
  state.counters["frames"] = stack.depth;
}
BENCHMARK(BM_SymbolizeFirstRequest)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_SymbolizeNewAddress(benchmark::State& state) {
  const CallStack stack = SampleStack();
  Symbolizer::Shared().Resolve(stack.frames[0]);  // this thread's state loaded
  for (auto _ : state) {
    Symbolizer symbolizer;  // nothing cached
    benchmark::DoNotOptimize(symbolizer.Resolve(stack.frames[0]).function.size());
  }
}
BENCHMARK(BM_SymbolizeNewAddress)->Unit(benchmark::kMicrosecond);

void BM_SymbolizeCached(benchmark::State& state) {
  const CallStack stack = SampleStack();
  Symbolizer symbolizer;
  symbolizer.Resolve(stack.frames[0]);
  for (auto _ : state) {
    benchmark::DoNotOptimize(symbolizer.Resolve(stack.frames[0]).function.size());
  }
}
BENCHMARK(BM_SymbolizeCached);

// The medians over the pairs of chunks of each one's ns per frame and of their quotient.
struct PairedTimes {
  double instrumented_ns;
  double other_ns;
  double ratio;
};

// Chunks of `frames` frames on each in turn, for as long as `state` asks, which of the two goes
// first alternating. Never inlined: bench/instructions.sh zeroes callgrind's counts on entry,
// which leaves out the warm-ups before it (the first frames' allocations, which would otherwise
// be spread over however many runs and chunks the benchmark timed).
template <typename RunInstrumented, typename RunOther>
[[gnu::noinline]] PairedTimes TimePairs(benchmark::State& state,
                                        const RunInstrumented& run_instrumented,
                                        const RunOther& run_other, std::int64_t frames) {
  const auto ns_per_frame = [&](const auto& run) {
    const auto start = std::chrono::steady_clock::now();
    run(frames);
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
               .count() /
           static_cast<double>(frames);
  };
  std::vector<double> instrumented_ns, other_ns, ratios;
  bool instrumented_first = true;
  for (auto _ : state) {
    if (instrumented_first) {
      instrumented_ns.push_back(ns_per_frame(run_instrumented));
      other_ns.push_back(ns_per_frame(run_other));
    } else {
      other_ns.push_back(ns_per_frame(run_other));
      instrumented_ns.push_back(ns_per_frame(run_instrumented));
    }
    instrumented_first = !instrumented_first;
    ratios.push_back(instrumented_ns.back() / other_ns.back());
  }
  const auto median = [](std::vector<double>& values) {
    auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    return *middle;
  };
  return {median(instrumented_ns), median(other_ns), median(ratios)};
}

// The instrumented pool against another variant of the same workload, paired: chunks of frames
// (about 20 000 allocations each, tens of microseconds) on each in turn, which of the two goes
// first alternating, so that both meet the machine in the same moments. Separate benchmarks
// (`/instrumented`, `/plain`, ...) run seconds apart, and on a VM whose speed changes between
// them by up to 1.5x, their quotient moves by more than the instrumentation costs. Counters: the
// medians over the pairs of each one's ns per frame (`instrumented_ns`, `<other>_ns`) and of
// their quotient (`ratio`, instrumented over the other).
void BM_Paired(benchmark::State& state, Workload workload, const std::string& other,
               const std::function<void(std::int64_t frames)>& run_other,
               PoolOptions options = {}) {
  PoolAllocator<BufferPool> instrumented(options);
  const auto run_instrumented = [&](std::int64_t frames) {
    RunFrames(instrumented, workload, frames);
  };
  const std::int64_t frames = std::max<std::int64_t>(1, 20'000 / AllocationsPerFrame(workload));
  run_instrumented(frames);  // warm: the first frame of each allocates
  run_other(frames);
  const PairedTimes times = TimePairs(state, run_instrumented, run_other, frames);
  state.counters["instrumented_ns"] = times.instrumented_ns;
  state.counters[other + "_ns"] = times.other_ns;
  state.counters["ratio"] = times.ratio;
}

// Trimming as the README's render pool has it: keys idle for 600 frames (10 s at 60 Hz) lose
// their free buffers. The workloads use every key every frame, so nothing is ever trimmed: what
// `/paired_trimming` adds to `/paired` is the cost of watching for idle keys.
constexpr PoolOptions kTrimming{.trim_idle_frames = 600};

// `BM_<Workload>/<name>`: the instrumented pool paired with the plain one, both with `options`.
void RegisterPairedPlain(Workload workload, const char* name, PoolOptions options) {
  benchmark::RegisterBenchmark((std::string(WorkloadName(workload)) + "/" + name).c_str(),
                               [workload, options](benchmark::State& state) {
                                 PlainFrames plain(workload, options);
                                 BM_Paired(
                                     state, workload, "plain",
                                     [&](std::int64_t frames) { plain.Run(frames); }, options);
                               });
}

// `BM_<Workload>/paired_<other>`: the instrumented pool paired with an anchor of the frame
// table, for the targets that are ratios to it.
template <typename Allocator>
void RegisterPaired(Workload workload, const std::string& other) {
  benchmark::RegisterBenchmark((std::string(WorkloadName(workload)) + "/paired_" + other).c_str(),
                               [workload, other](benchmark::State& state) {
                                 Allocator allocator;
                                 BM_Paired(state, workload, other, [&](std::int64_t frames) {
                                   RunFrames(allocator, workload, frames);
                                 });
                               });
}

// What `/rounded_trimming` rounds the varying count up to: 256 elements, 5 counts of 4096..5120
// instead of 1024, for at most 255 elements (6 %) more than the frame asks for.
constexpr std::uint32_t kVaryingRound = 256;

// `BM_VaryingSizes/<variant>`: the frames of RunVaryingFrame(), after enough frames that the
// pool has met nearly every count (4 × kVaryingCounts: each count missed with probability e^-4).
// Counters: the frame's mean request (requested_B), what the allocator holds after the measured
// frames (held_B), and for the pool its keys and its misses per frame (new memory).
template <typename Allocator>
void RegisterVarying(const char* variant, std::uint32_t round_to, PoolOptions options = {}) {
  benchmark::RegisterBenchmark(
      (std::string("BM_VaryingSizes/") + variant).c_str(),
      [round_to, options](benchmark::State& state) {
        auto allocator = [&] {
          if constexpr (std::is_same_v<Allocator, PoolAllocator<BufferPool>>) {
            return Allocator(options);
          } else {
            return Allocator();
          }
        }();
        VaryingCounts counts;
        for (std::uint32_t i = 0; i < 4 * kVaryingCounts; ++i) {
          RunVaryingFrame(allocator, counts, round_to);
        }
        std::uint64_t misses_before = 0;
        if constexpr (std::is_same_v<Allocator, PoolAllocator<BufferPool>>) {
          misses_before = allocator.pool.Stats().misses_total;
        }
        for (auto _ : state) RunVaryingFrame(allocator, counts, round_to);
        state.SetItemsProcessed(state.iterations() * 3);
        state.counters["requested_B"] = VaryingRequestedBytes();
        state.counters["held_B"] = static_cast<double>(allocator.HeldBytes());
        if constexpr (std::is_same_v<Allocator, PoolAllocator<BufferPool>>) {
          const PoolStats& stats = allocator.pool.Stats();
          state.counters["keys"] = static_cast<double>(stats.keys);
          state.counters["misses"] =
              benchmark::Counter(static_cast<double>(stats.misses_total - misses_before) /
                                 static_cast<double>(state.iterations()));
        }
      });
}

// The process's resident anonymous memory (RssAnon in /proc/self/status): the pages its heaps
// have written, whichever allocator wrote them. 0 if unreadable.
std::uint64_t ResidentAnonBytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("RssAnon:")) return std::stoull(line.substr(8)) * 1024;  // kB
  }
  return 0;
}

// An allocator whose frames write every byte of every buffer, as a program that uses its
// buffers does (the benchmarks write two), and which notes the resident memory at each frame's
// end, before the frame's buffers go back: the frame's peak.
template <typename Allocator>
struct WrittenThrough {
  Allocator inner;
  std::uint64_t in_frame = 0;
  unsigned char fill = 1;
  void* Alloc(BufferFormat format, std::uint32_t count) {
    void* p = inner.Alloc(format, count);
    std::memset(p, fill, ElementSize(format) * count);
    return p;
  }
  void EndFrame() {
    in_frame = std::max(in_frame, ResidentAnonBytes());
    inner.EndFrame();
    ++fill;
  }
};

// The resident memory of `frames` frames of a workload on one allocator, from a process that
// has run nothing else: at the busiest frame's end, and after the last frame (what it keeps
// between frames), each less what was resident before the allocator was made.
template <typename Allocator>
void PrintResident(Workload workload, int frames) {
  const std::uint64_t before = ResidentAnonBytes();
  WrittenThrough<Allocator> a;
  for (int i = 0; i < frames; ++i) RunFrame(a, workload);
  const std::uint64_t between = ResidentAnonBytes();
  std::printf("requested_B=%llu in_frame_B=%lld between_frames_B=%lld held_B=%llu\n",
              static_cast<unsigned long long>(LargestFrameBytes(workload)),
              static_cast<long long>(a.in_frame) - static_cast<long long>(before),
              static_cast<long long>(between) - static_cast<long long>(before),
              static_cast<unsigned long long>(a.inner.HeldBytes()));
}

// --resident=<Workload>/<variant>: 0 when printed, 2 for a workload or variant not known.
int RunResident(std::string_view spec) {
  constexpr int kFrames = 100;
  const auto slash = spec.find('/');
  const std::string_view variant = slash == std::string_view::npos ? "" : spec.substr(slash + 1);
  for (Workload workload : kWorkloads) {
    if (spec.substr(0, slash) != std::string_view(WorkloadName(workload)).substr(3)) continue;
    if (variant == "instrumented") {
      PrintResident<PoolAllocator<BufferPool>>(workload, kFrames);
    } else if (variant == "arena") {
      PrintResident<ArenaAllocator>(workload, kFrames);
    } else if (variant == "mimalloc") {
      PrintResident<HeapAllocator<Mimalloc>>(workload, kFrames);
    } else if (variant == "malloc") {
      PrintResident<MallocAllocator>(workload, kFrames);
    } else {
      break;
    }
    return 0;
  }
  std::fprintf(stderr,
               "poolwatch_bench: --resident=%.*s: want <Workload>/<variant>, a workload such as "
               "ReferenceFrame and a variant of instrumented, arena, mimalloc or malloc\n",
               static_cast<int>(spec.size()), spec.data());
  return 2;
}

}  // namespace
}  // namespace poolwatch::bench

int main(int argc, char** argv) {
  using namespace poolwatch::bench;
  if (const char* error = Mimalloc::Error(); error != nullptr) {
    std::fprintf(stderr, "poolwatch_bench: %s\n", error);
    return 1;
  }
  if (argc == 2 && std::string_view(argv[1]).starts_with("--resident=")) {
    return RunResident(std::string_view(argv[1]).substr(std::string_view("--resident=").size()));
  }
  for (Workload workload : kWorkloads) {
    RegisterFrameBenchmark<PoolAllocator<poolwatch::BufferPool>>(workload, "instrumented");
    RegisterPlain(workload);
    RegisterFrameBenchmark<ArenaAllocator>(workload, "arena");
    RegisterFrameBenchmark<HeapAllocator<Mimalloc>>(workload, "mimalloc");
    RegisterFrameBenchmark<MallocAllocator>(workload, "malloc");
    RegisterPairedPlain(workload, "paired", {});
    RegisterPairedPlain(workload, "paired_trimming", kTrimming);
    RegisterPaired<ArenaAllocator>(workload, "arena");
    RegisterPaired<HeapAllocator<Mimalloc>>(workload, "mimalloc");
  }
  RegisterVarying<PoolAllocator<poolwatch::BufferPool>>("instrumented", 1);
  RegisterVarying<PoolAllocator<poolwatch::BufferPool>>("instrumented_trimming", 1, kTrimming);
  RegisterVarying<PoolAllocator<poolwatch::BufferPool>>("rounded_trimming", kVaryingRound,
                                                        kTrimming);
  RegisterVarying<ArenaAllocator>("arena", 1);
  RegisterVarying<HeapAllocator<Mimalloc>>("mimalloc", 1);
  RegisterVarying<MallocAllocator>("malloc", 1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#pragma once

// Frame workloads shared by the instrumented, plain and malloc variants of poolwatch_bench.
// Each workload is a template over an allocator with Alloc(format, count) -> void* and
// EndFrame(), so the three variants run exactly the same frame.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "poolwatch/buffer_format.h"

namespace poolwatch::bench {

enum class Workload { kReferenceFrame, kManySmall, kFewLarge, kManyKeys };

inline const char* WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kReferenceFrame:
      return "BM_ReferenceFrame";
    case Workload::kManySmall:
      return "BM_ManySmallBuffers";
    case Workload::kFewLarge:
      return "BM_FewLargeBuffers";
    case Workload::kManyKeys:
      return "BM_ManyKeys";
  }
  return "";
}

// The buffer is written at both ends, so that the allocation is really used.
inline void Touch(void* data, std::size_t bytes) {
  auto* p = static_cast<unsigned char*>(data);
  p[0] = 1;
  p[bytes - 1] = 2;
  benchmark::DoNotOptimize(p);
}

template <typename Allocator>
void Use(Allocator& a, BufferFormat format, std::uint32_t count) {
  Touch(a.Alloc(format, count), ElementSize(format) * count);
}

// Allocations per frame of each workload, for items/s.
inline std::int64_t AllocationsPerFrame(Workload workload) {
  switch (workload) {
    case Workload::kReferenceFrame:
      return 3;
    case Workload::kManySmall:
      return 256;
    case Workload::kFewLarge:
      return 4;
    case Workload::kManyKeys:
      return 200;
  }
  return 1;
}

template <typename Allocator>
void RunFrame(Allocator& a, Workload workload) {
  switch (workload) {
    case Workload::kReferenceFrame:  // the reference workload's buffers: 4096 particles
      Use(a, BufferFormat::kVec3f, 4096);
      Use(a, BufferFormat::kF32, 4096);
      Use(a, BufferFormat::kRgba8, 4096);
      break;
    case Workload::kManySmall:  // 256 buffers of 16..128 elements over 8 keys
      for (std::uint32_t i = 0; i < 256; ++i) {
        Use(a, i % 2 == 0 ? BufferFormat::kF32 : BufferFormat::kVec4f, 16U << (i % 4));
      }
      break;
    case Workload::kFewLarge:  // four 1 MiB images
      for (int i = 0; i < 4; ++i) Use(a, BufferFormat::kRgba8, 512 * 512);
      break;
    case Workload::kManyKeys:  // 200 distinct sizes, one buffer each
      for (std::uint32_t i = 0; i < 200; ++i) Use(a, BufferFormat::kF32, 100 + i);
      break;
  }
  a.EndFrame();
}

template <typename Pool>
struct PoolAllocator {
  Pool pool;
  void* Alloc(BufferFormat format, std::uint32_t count) { return pool.Alloc(format, count).data(); }
  void EndFrame() { pool.EndFrame(); }
};

// What a frame does without a pool: malloc every buffer, free them all at the frame's end.
struct MallocAllocator {
  std::vector<void*> live;
  MallocAllocator() { live.reserve(1024); }
  void* Alloc(BufferFormat format, std::uint32_t count) {
    void* p = std::malloc(ElementSize(format) * count);
    live.push_back(p);
    return p;
  }
  void EndFrame() {
    for (void* p : live) std::free(p);
    live.clear();
  }
};

template <typename Allocator>
void RegisterFrameBenchmark(Workload workload, const char* variant) {
  const std::string name = std::string(WorkloadName(workload)) + "/" + variant;
  benchmark::RegisterBenchmark(name.c_str(), [workload](benchmark::State& state) {
    Allocator allocator;
    RunFrame(allocator, workload);  // warm: the pool's first frame allocates
    for (auto _ : state) RunFrame(allocator, workload);
    state.SetItemsProcessed(state.iterations() * AllocationsPerFrame(workload));
  });
}

// Defined in the translation unit built with POOLWATCH_POOL_PLAIN.
void RegisterPlain(Workload workload);

}  // namespace poolwatch::bench

#pragma once

// Frame workloads shared by every variant of poolwatch_bench (the pool instrumented and plain,
// and the anchors it is compared with: a bump arena, mimalloc, glibc's malloc). Each workload is
// a template over an allocator with Alloc(format, count) -> void*, EndFrame() and HeldBytes(),
// so every variant runs exactly the same frame.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "poolwatch/buffer_format.h"
#include "poolwatch/buffer_pool.h"

namespace poolwatch::bench {

enum class Workload { kReferenceFrame, kManySmall, kFewLarge, kManyKeys, kSequence };

inline constexpr Workload kWorkloads[] = {Workload::kReferenceFrame, Workload::kManySmall,
                                          Workload::kFewLarge, Workload::kManyKeys,
                                          Workload::kSequence};

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
    case Workload::kSequence:
      return "BM_Sequence";
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

// Always inlined, as RunFrame() is: the compiler's choice per instantiation would otherwise
// decide the cost (it inlined the instrumented pool's allocations into the frame's loops and
// called the plain pool's, 18 more instructions a buffer). Each allocator's Alloc() is then
// inlined or called as that allocator declares it.
template <typename Allocator>
[[gnu::always_inline]] inline void Use(Allocator& a, BufferFormat format, std::uint32_t count) {
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
    case Workload::kSequence:
      return 3 + 256 + 4 + 200;
  }
  return 1;
}

// A frame's buffers, without its end.
template <typename Allocator>
[[gnu::always_inline]] inline void AllocateFrame(Allocator& a, Workload workload) {
  switch (workload) {
    case Workload::kReferenceFrame:  // the reference workload's buffers: 4096 particles
      Use(a, BufferFormat::kVec3f, 4096);
      Use(a, BufferFormat::kF32, 4096);
      Use(a, BufferFormat::kRgba8, 4096);
      return;
    case Workload::kManySmall:  // 256 buffers of 16..128 elements over 8 keys
      for (std::uint32_t i = 0; i < 256; ++i) {
        Use(a, i % 2 == 0 ? BufferFormat::kF32 : BufferFormat::kVec4f, 16U << (i % 4));
      }
      return;
    case Workload::kFewLarge:  // four 1 MiB images
      for (int i = 0; i < 4; ++i) Use(a, BufferFormat::kRgba8, 512 * 512);
      return;
    case Workload::kManyKeys:  // 200 distinct sizes, one buffer each
      for (std::uint32_t i = 0; i < 200; ++i) Use(a, BufferFormat::kF32, 100 + i);
      return;
    case Workload::kSequence:
      return;
  }
}

// One frame of a workload, ended; BM_Sequence's is four frames, one of each of the others in
// turn: what the same allocator does when the frames of a process change shape. Always inlined
// into its caller's loop, so that every allocator's frame has the same code around it.
template <typename Allocator>
[[gnu::always_inline]] inline void RunFrame(Allocator& a, Workload workload) {
  if (workload == Workload::kSequence) {
    for (const Workload each : {Workload::kReferenceFrame, Workload::kManySmall,
                                Workload::kFewLarge, Workload::kManyKeys}) {
      AllocateFrame(a, each);
      a.EndFrame();
    }
    return;
  }
  AllocateFrame(a, workload);
  a.EndFrame();
}

template <typename Pool>
struct PoolAllocator {
  explicit PoolAllocator(PoolOptions options = {}) : pool(options) {}
  Pool pool;
  [[gnu::always_inline]] void* Alloc(BufferFormat format, std::uint32_t count) {
    return pool.Alloc(format, count).data();
  }
  [[gnu::always_inline]] void EndFrame() { pool.EndFrame(); }
  std::uint64_t HeldBytes() const { return pool.AuditBytes().pooled_bytes; }
};

// The lower bound: a frame arena that bumps a cursor through one block (64-byte aligned, as the
// pool's memory is) and resets it at the frame's end. It knows nothing about its buffers: no
// keys, no reuse across frames by size, no held buffers, no counts. After a frame that
// overflowed, the block grows to the frame's size, so a steady frame bumps through one block.
class ArenaAllocator {
 public:
  // The bump inlined, as the pool's Alloc() is; the overflow out of line.
  [[gnu::always_inline]] void* Alloc(BufferFormat format, std::uint32_t count) {
    const std::size_t bytes = (ElementSize(format) * count + kAlign - 1) & ~(kAlign - 1);
    if (used_ + bytes <= capacity_) {
      std::byte* p = block_.get() + used_;
      used_ += bytes;
      return p;
    }
    return Overflow(bytes);
  }
  [[gnu::always_inline]] void EndFrame() {
    if (!overflow_.empty()) Grow();
    used_ = 0;
  }
  std::uint64_t HeldBytes() const { return capacity_; }

 private:
  static constexpr std::size_t kAlign = 64;
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{kAlign}); }
  };
  using Block = std::unique_ptr<std::byte[], AlignedDelete>;
  Block block_;
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
  std::vector<Block> overflow_;
  std::size_t overflow_bytes_ = 0;

  [[gnu::noinline]] void Grow() {
    capacity_ += overflow_bytes_;
    block_.reset(new (std::align_val_t{kAlign}) std::byte[capacity_]);
    overflow_.clear();
    overflow_bytes_ = 0;
  }
  [[gnu::noinline]] void* Overflow(std::size_t bytes) {
    overflow_.emplace_back(new (std::align_val_t{kAlign}) std::byte[bytes]);
    overflow_bytes_ += bytes;
    return overflow_.back().get();
  }
};

// What a frame does without a pool: allocate every buffer from a general-purpose allocator and
// free them all at the frame's end. Malloc and Free name the allocator; HeldBytes is what it
// holds from the system.
template <typename Heap>
struct HeapAllocator {
  std::vector<void*> live;
  HeapAllocator() { live.reserve(1024); }
  [[gnu::always_inline]] void* Alloc(BufferFormat format, std::uint32_t count) {
    void* p = Heap::Malloc(ElementSize(format) * count);
    live.push_back(p);
    return p;
  }
  [[gnu::always_inline]] void EndFrame() {
    for (void* p : live) Heap::Free(p);
    live.clear();
  }
  std::uint64_t HeldBytes() const { return Heap::HeldBytes(); }
};

struct Glibc {
  static void* Malloc(std::size_t bytes) { return std::malloc(bytes); }
  static void Free(void* p) { std::free(p); }
  // Main arena plus mmapped chunks: what glibc holds from the system.
  static std::uint64_t HeldBytes() {
    const struct mallinfo2 info = mallinfo2();
    return info.arena + info.hblkhd;
  }
};
using MallocAllocator = HeapAllocator<Glibc>;

// The bytes a workload's frame asks for, without rounding: what a perfect allocator would hold.
inline std::uint64_t RequestedBytes(Workload workload) {
  struct Counter {
    std::vector<std::unique_ptr<std::byte[]>> live;
    std::uint64_t bytes = 0;
    void* Alloc(BufferFormat format, std::uint32_t count) {
      bytes += ElementSize(format) * count;
      return live.emplace_back(new std::byte[ElementSize(format) * count]).get();
    }
    void EndFrame() { live.clear(); }
  } counter;
  RunFrame(counter, workload);
  return counter.bytes;
}

// What the workload's largest frame asks for: its frame's, or for BM_Sequence the largest of
// the four it runs in turn.
inline std::uint64_t LargestFrameBytes(Workload workload) {
  if (workload != Workload::kSequence) return RequestedBytes(workload);
  std::uint64_t largest = 0;
  for (Workload w : {Workload::kReferenceFrame, Workload::kManySmall, Workload::kFewLarge,
                     Workload::kManyKeys}) {
    largest = std::max(largest, RequestedBytes(w));
  }
  return largest;
}

// Frames whose sizes vary: the reference frame's three buffers for a particle count drawn anew
// each frame, uniformly from kVaryingFirst .. kVaryingFirst + kVaryingCounts - 1 (a fixed-seed
// generator, so every variant sees the same counts). Keyed by exact size, that is up to
// kVaryingCounts keys per format. With `round_to` above 1, the frame rounds its count up to a
// multiple of it first, as a caller does to give the pool a few size classes.
inline constexpr std::uint32_t kVaryingFirst = 4096;
inline constexpr std::uint32_t kVaryingCounts = 1024;

class VaryingCounts {
 public:
  std::uint32_t Next() {  // xorshift64
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return kVaryingFirst + static_cast<std::uint32_t>((state_ >> 32) % kVaryingCounts);
  }

 private:
  std::uint64_t state_ = 0x9E3779B97F4A7C15ULL;
};

template <typename Allocator>
void RunVaryingFrame(Allocator& a, VaryingCounts& counts, std::uint32_t round_to) {
  const std::uint32_t count = (counts.Next() + round_to - 1) / round_to * round_to;
  Use(a, BufferFormat::kVec3f, count);
  Use(a, BufferFormat::kF32, count);
  Use(a, BufferFormat::kRgba8, count);
  a.EndFrame();
}

// The bytes a varying frame asks for, on average, before any rounding.
inline double VaryingRequestedBytes() {
  const std::uint64_t frame_bytes_per_element = ElementSize(BufferFormat::kVec3f) +
                                                ElementSize(BufferFormat::kF32) +
                                                ElementSize(BufferFormat::kRgba8);
  return static_cast<double>(frame_bytes_per_element) *
         (kVaryingFirst + (kVaryingCounts - 1) / 2.0);
}

// Time per frame; counters: the bytes the frame asks for (requested_B, the largest frame's for
// BM_Sequence) and what the allocator holds after the measured frames (held_B).
template <typename Allocator>
void RegisterFrameBenchmark(Workload workload, const char* variant) {
  const std::string name = std::string(WorkloadName(workload)) + "/" + variant;
  benchmark::RegisterBenchmark(name.c_str(), [workload](benchmark::State& state) {
    Allocator allocator;
    RunFrame(allocator, workload);  // warm: the pool's first frame allocates
    for (auto _ : state) RunFrame(allocator, workload);
    state.SetItemsProcessed(state.iterations() * AllocationsPerFrame(workload));
    state.counters["requested_B"] = static_cast<double>(LargestFrameBytes(workload));
    state.counters["held_B"] = static_cast<double>(allocator.HeldBytes());
  });
}

// `frames` frames in a row: the unit the paired benchmark times. Not inlined, so that the
// instrumented and the plain pool run their frames from the same loop code.
template <typename Allocator>
[[gnu::noinline]] void RunFrames(Allocator& a, Workload workload, std::int64_t frames) {
  for (std::int64_t i = 0; i < frames; ++i) RunFrame(a, workload);
}

// Defined in the translation unit built with POOLWATCH_POOL_PLAIN.
void RegisterPlain(Workload workload);

// A plain pool running one workload, for the paired benchmark in the instrumented translation
// unit (defined in the plain one, which alone sees that pool).
class PlainFrames {
 public:
  explicit PlainFrames(Workload workload, PoolOptions options = {});
  ~PlainFrames();
  PlainFrames(const PlainFrames&) = delete;
  PlainFrames& operator=(const PlainFrames&) = delete;
  void Run(std::int64_t frames);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
  Workload workload_;
};

}  // namespace poolwatch::bench

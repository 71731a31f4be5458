#include "poolwatch/buffer_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace poolwatch {
namespace {

TEST(BufferPoolTest, AllocHandsOutAlignedBuffersOfTheRightSize) {
  BufferPool pool;
  Buffer buffer = pool.Alloc(BufferFormat::kVec3f, 100);
  ASSERT_TRUE(buffer);
  EXPECT_EQ(buffer.size_bytes(), 1200U);
  EXPECT_EQ(buffer.count(), 100U);
  EXPECT_EQ(buffer.format(), BufferFormat::kVec3f);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % BufferPool::kAlignment, 0U);
  EXPECT_EQ(buffer.As<float>().size(), 300U);
}

// Each buffer is aligned within an allocation of its own, wherever the allocator put that: every
// size from 1 to 300 bytes, and buffers past glibc's mmap threshold, held and frame-scoped, are
// aligned and writable to their last byte (which AddressSanitizer checks in its build).
TEST(BufferPoolTest, EveryBufferIsAlignedAndWholeWhateverItsSize) {
  BufferPool pool;
  std::vector<Buffer> buffers;
  for (std::uint32_t count = 1; count <= 300; ++count) {
    buffers.push_back(pool.Alloc(BufferFormat::kU8, count));
    buffers.push_back(pool.Acquire(BufferFormat::kU8, count));
  }
  buffers.push_back(pool.Alloc(BufferFormat::kRgba8, 512 * 512));
  buffers.push_back(pool.Acquire(BufferFormat::kF32, 300'001));
  for (const Buffer& buffer : buffers) {
    ASSERT_TRUE(buffer);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % BufferPool::kAlignment, 0U)
        << buffer.size_bytes() << " bytes";
    std::memset(buffer.data(), 0xA5, buffer.size_bytes());
  }
  for (const Buffer& buffer : buffers) {
    EXPECT_EQ(buffer.data()[0], std::byte{0xA5});
    EXPECT_EQ(buffer.data()[buffer.size_bytes() - 1], std::byte{0xA5});
  }
  EXPECT_EQ(pool.AuditBytes().buffers, buffers.size());
}

#if defined(__SANITIZE_ADDRESS__)
// The slack that aligns a buffer in its allocation is poisoned: AddressSanitizer reports a write
// just past a buffer (or just before it) as it would past a block of the buffer's own size.
TEST(BufferPoolDeathTest, AddressSanitizerCatchesAWriteJustOutsideABuffer) {
  for (std::uint32_t count : {1U, 40U, 64U, 100U, 1000U}) {
    EXPECT_DEATH(
        {
          BufferPool pool;
          const Buffer buffer = pool.Alloc(BufferFormat::kU8, count);
          static_cast<volatile std::byte*>(buffer.data())[count] = std::byte{1};
        },
        "AddressSanitizer")
        << count << " bytes, the byte after";
    EXPECT_DEATH(
        {
          BufferPool pool;
          const Buffer buffer = pool.Acquire(BufferFormat::kU8, count);
          static_cast<volatile std::byte*>(buffer.data())[-1] = std::byte{1};
        },
        "AddressSanitizer")
        << count << " bytes, the byte before";
  }
}
#endif

TEST(BufferPoolTest, CountersIncrementPerAllocation) {
  BufferPool pool;
  pool.Alloc(BufferFormat::kF32, 10);
  pool.Alloc(BufferFormat::kF32, 10);
  pool.Alloc(BufferFormat::kU8, 7);
  pool.EndFrame();
  const PoolStats& stats = pool.Stats();
  EXPECT_EQ(stats.last_frame.allocations, 3U);
  EXPECT_EQ(stats.last_frame.releases, 3U);
  EXPECT_EQ(stats.last_frame.Imbalance(), 0);
  EXPECT_EQ(stats.allocations_total, 3U);
  EXPECT_EQ(stats.releases_total, 3U);
  EXPECT_EQ(stats.misses_total, 3U);
  EXPECT_EQ(stats.keys, 2U);
  EXPECT_EQ(stats.pooled_bytes, 10U * 4 + 10U * 4 + 7U);
  EXPECT_EQ(stats.in_use_bytes, 0U);
  EXPECT_EQ(stats.outstanding_buffers, 0U);
}

TEST(BufferPoolTest, FreeBuffersAreReusedAsHits) {
  BufferPool pool;
  Buffer first = pool.Alloc(BufferFormat::kF64, 64);
  pool.EndFrame();
  Buffer second = pool.Alloc(BufferFormat::kF64, 64);
  pool.EndFrame();
  EXPECT_EQ(first.data(), second.data());
  EXPECT_EQ(pool.Stats().misses_total, 1U);
  EXPECT_EQ(pool.Stats().allocations_total, 2U);
  EXPECT_EQ(pool.Stats().pooled_bytes, 512U);
}

TEST(BufferPoolTest, StatsAreSealedAtReleaseAllAndResetForTheNextFrame) {
  BufferPool pool;
  for (int i = 0; i < 5; ++i) pool.Alloc(BufferFormat::kF32, 16);
  // Before the frame ends, Stats() still describes the previous (here: no) frame.
  EXPECT_EQ(pool.Stats().last_frame.allocations, 0U);
  EXPECT_EQ(pool.Stats().allocations_total, 0U);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.frame, 0U);
  EXPECT_EQ(pool.Stats().last_frame.allocations, 5U);

  pool.Alloc(BufferFormat::kF32, 16);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.frame, 1U);
  EXPECT_EQ(pool.Stats().last_frame.allocations, 1U);
  EXPECT_EQ(pool.Stats().last_frame.releases, 1U);
  EXPECT_EQ(pool.Stats().allocations_total, 6U);
  EXPECT_EQ(pool.Stats().frames, 2U);
}

// A frame of frame-scoped traffic only seals less than a frame with held traffic; what Stats()
// shows for it must still be that frame's alone, with the totals of both.
TEST(BufferPoolTest, AFrameOfFrameScopedTrafficOnlyAfterHeldTrafficShowsItsOwnCounts) {
  BufferPool pool;
  pool.Alloc(BufferFormat::kU8, 100);
  const BufferId held = pool.Acquire(BufferFormat::kU8, 1000).id();
  pool.Alloc(BufferFormat::kU8, 10);
  ASSERT_TRUE(pool.Release(held));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame, (PoolFrameStats{0, 3, 3, 1110}));

  pool.Alloc(BufferFormat::kU8, 100);
  pool.EndFrame();
  const PoolStats stats = pool.Stats();
  EXPECT_EQ(stats.last_frame, (PoolFrameStats{1, 1, 1, 100}));
  EXPECT_EQ(stats.frames, 2U);
  EXPECT_EQ(stats.allocations_total, 4U);
  EXPECT_EQ(stats.releases_total, 4U);
  EXPECT_EQ(stats.in_use_bytes, 0U);

  const BufferId kept = pool.Acquire(BufferFormat::kU8, 1000).id();
  ASSERT_TRUE(kept.valid());
  pool.EndFrame();
  pool.Alloc(BufferFormat::kU8, 10);
  pool.EndFrame();  // the held buffer is in use throughout: part of this frame's peak
  EXPECT_EQ(pool.Stats().last_frame, (PoolFrameStats{3, 1, 1, 1010}));
  EXPECT_EQ(pool.Stats().allocations_total, 6U);
  EXPECT_EQ(pool.Stats().releases_total, 5U);
  EXPECT_EQ(pool.Stats().outstanding_buffers, 1U);
}

// The sketch counted releases as inUse.size, the number of keys; they are buffers.
TEST(BufferPoolTest, ReleasesAreCountedInBuffersWhenOneKeyHoldsMany) {
  BufferPool pool;
  for (int i = 0; i < 50; ++i) pool.Alloc(BufferFormat::kVec4f, 32);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().keys, 1U);
  EXPECT_EQ(pool.Stats().last_frame.releases, 50U);
  EXPECT_EQ(pool.Stats().last_frame.Imbalance(), 0);
}

TEST(BufferPoolTest, HeldBufferSurvivesReleaseAllUntilReleased) {
  BufferPool pool;
  Buffer held = pool.Acquire(BufferFormat::kU32, 8, "test.held");
  std::ranges::fill(held.As<std::uint32_t>(), 7U);
  pool.Alloc(BufferFormat::kU32, 8);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().outstanding_buffers, 1U);
  EXPECT_EQ(pool.Stats().in_use_bytes, 32U);
  EXPECT_EQ(pool.Stats().last_frame.Imbalance(), 1);

  // The frame-scoped buffer came back; the held one is not handed out again.
  Buffer other = pool.Alloc(BufferFormat::kU32, 8);
  EXPECT_NE(other.data(), held.data());
  EXPECT_EQ(held.As<std::uint32_t>()[0], 7U);

  EXPECT_TRUE(pool.Release(held.id()));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.allocations, 1U);
  EXPECT_EQ(pool.Stats().last_frame.releases, 2U);
  EXPECT_EQ(pool.Stats().last_frame.Imbalance(), -1);
  EXPECT_EQ(pool.Stats().outstanding_buffers, 0U);
  EXPECT_EQ(pool.Stats().in_use_bytes, 0U);
}

TEST(BufferPoolTest, ReleaseRefusesUnknownStaleAndFrameScopedIds) {
  BufferPool pool;
  EXPECT_FALSE(pool.Release(BufferId{}));
  EXPECT_FALSE(pool.Release(BufferId{12345, 1}));
  Buffer frame_scoped = pool.Alloc(BufferFormat::kU8, 5);
  EXPECT_FALSE(pool.Release(frame_scoped.id()));
  Buffer held = pool.Acquire(BufferFormat::kU8, 4);
  EXPECT_TRUE(pool.Release(held.id()));
  EXPECT_FALSE(pool.Release(held.id()));  // twice
  pool.EndFrame();
  // The slot is handed out again: the old id is stale and must not release the new buffer.
  Buffer again = pool.Acquire(BufferFormat::kU8, 4);
  EXPECT_EQ(again.id().slot, held.id().slot);
  EXPECT_FALSE(pool.Release(held.id()));
  EXPECT_TRUE(pool.Release(again.id()));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().allocations_total, pool.Stats().releases_total);
}

TEST(BufferPoolTest, IntentionalLeakShowsAsImbalanceAndOutstandingGrowth) {
  BufferPool pool;
  std::uint64_t previous_outstanding = 0;
  for (int frame = 0; frame < 20; ++frame) {
    pool.Alloc(BufferFormat::kF32, 128);
    pool.Acquire(BufferFormat::kF32, 16, "test.leak");  // never released
    pool.EndFrame();
    const PoolStats& stats = pool.Stats();
    EXPECT_EQ(stats.last_frame.Imbalance(), 1) << "frame " << frame;
    EXPECT_GT(stats.outstanding_buffers, previous_outstanding);
    EXPECT_EQ(stats.allocations_total - stats.releases_total, stats.outstanding_buffers);
    previous_outstanding = stats.outstanding_buffers;
  }
  EXPECT_EQ(pool.Stats().outstanding_buffers, 20U);
  std::size_t leaked = 0;
  pool.ForEachOutstanding([&](const OutstandingBuffer& b) {
    EXPECT_STREQ(b.site, "test.leak");
    EXPECT_EQ(b.format, BufferFormat::kF32);
    EXPECT_EQ(b.bytes, 64U);
    ++leaked;
  });
  EXPECT_EQ(leaked, 20U);
}

TEST(BufferPoolTest, ZeroCountIsRefusedWithoutCountingAnything) {
  BufferPool pool;
  EXPECT_FALSE(pool.Alloc(BufferFormat::kF32, 0));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().allocations_total, 0U);
  EXPECT_EQ(pool.Stats().keys, 0U);
}

TEST(BufferPoolTest, ByteCapRefusesNewMemoryAndCountsTheFailure) {
  BufferPool pool(PoolOptions{.max_bytes = 1000});
  ASSERT_TRUE(pool.Alloc(BufferFormat::kU8, 600));
  EXPECT_FALSE(pool.Alloc(BufferFormat::kU8, 600));  // would make 1200 bytes
  EXPECT_FALSE(pool.Alloc(BufferFormat::kU8, 500));  // a new key, refused too
  ASSERT_TRUE(pool.Alloc(BufferFormat::kU8, 400));   // exactly at the cap
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().allocation_failures_total, 2U);
  EXPECT_EQ(pool.Stats().allocations_total, 2U);
  EXPECT_EQ(pool.Stats().pooled_bytes, 1000U);
  EXPECT_EQ(pool.Stats().keys, 2U);  // the refused key was not kept
  // Free buffers are still handed out under the cap.
  EXPECT_TRUE(pool.Alloc(BufferFormat::kU8, 600));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().allocation_failures_total, 2U);
}

TEST(BufferPoolTest, TrimEvictsIdleKeysAndKeepsBusyOnes) {
  BufferPool pool(PoolOptions{.max_bytes = 0, .trim_idle_frames = 3});
  pool.Alloc(BufferFormat::kF32, 1000);  // 4000 bytes, used only in frame 0
  pool.Alloc(BufferFormat::kF32, 10);    // 40 bytes, used every frame
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().keys, 2U);
  for (int frame = 1; frame <= 2; ++frame) {
    pool.Alloc(BufferFormat::kF32, 10);
    pool.EndFrame();
    EXPECT_EQ(pool.Stats().pooled_bytes, 4040U) << "frame " << frame;
  }
  pool.Alloc(BufferFormat::kF32, 10);
  pool.EndFrame();  // frame 3: the big key has been idle for frames 1, 2 and 3
  EXPECT_EQ(pool.Stats().pooled_bytes, 40U);
  EXPECT_EQ(pool.Stats().trimmed_bytes_total, 4000U);
  EXPECT_EQ(pool.Stats().keys, 1U);
  EXPECT_EQ(pool.AuditBytes().pooled_bytes, 40U);
}

TEST(BufferPoolTest, TrimKeepsAKeyWithHeldBuffersButFreesItsFreeOnes) {
  BufferPool pool(PoolOptions{.max_bytes = 0, .trim_idle_frames = 1});
  Buffer held = pool.Acquire(BufferFormat::kU16, 50);
  pool.Alloc(BufferFormat::kU16, 50);
  pool.EndFrame();
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().keys, 1U);
  EXPECT_EQ(pool.Stats().pooled_bytes, 100U);
  EXPECT_EQ(pool.Stats().trimmed_bytes_total, 100U);
  EXPECT_TRUE(pool.Release(held.id()));
  pool.EndFrame();
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().keys, 0U);
  EXPECT_EQ(pool.Stats().pooled_bytes, 0U);
}

// Trimming turned on in a running pool (as a reload does) looks at once at keys idle since
// before; turned off, it frees nothing, however long a key stays idle.
TEST(BufferPoolTest, TrimmingTurnedOnLaterTrimsKeysIdleSinceBeforeAndTurnedOffStops) {
  BufferPool pool;
  pool.Alloc(BufferFormat::kF32, 1000);  // 4000 bytes, used only in frame 0
  for (int frame = 0; frame < 10; ++frame) {
    pool.Alloc(BufferFormat::kF32, 10);  // 40 bytes, used every frame
    pool.EndFrame();
  }
  EXPECT_EQ(pool.Stats().keys, 2U);
  pool.SetOptions({.trim_idle_frames = 3});
  pool.Alloc(BufferFormat::kF32, 10);
  pool.EndFrame();  // frame 10: the big key has been idle for 10 frames
  EXPECT_EQ(pool.Stats().trimmed_bytes_total, 4000U);
  EXPECT_EQ(pool.Stats().keys, 1U);

  pool.Alloc(BufferFormat::kU8, 100);  // 100 bytes, used only in frame 11
  pool.Alloc(BufferFormat::kF32, 10);
  pool.EndFrame();
  pool.SetOptions({.trim_idle_frames = 0});
  for (int frame = 12; frame < 30; ++frame) {
    pool.Alloc(BufferFormat::kF32, 10);
    pool.EndFrame();
  }
  EXPECT_EQ(pool.Stats().trimmed_bytes_total, 4000U);
  EXPECT_EQ(pool.Stats().keys, 2U);
  pool.SetOptions({.trim_idle_frames = 3});
  pool.EndFrame();  // frame 30: the 100-byte key goes; the 40-byte one, used in frame 29, stays
  EXPECT_EQ(pool.Stats().trimmed_bytes_total, 4100U);
  EXPECT_EQ(pool.Stats().keys, 1U);
  EXPECT_EQ(pool.Stats().pooled_bytes, 40U);
  EXPECT_EQ(pool.AuditBytes().pooled_bytes, 40U);
}

// The running sums must agree with a full recount whatever happens.
TEST(BufferPoolTest, RunningSumsEqualAFullRecountAfterThousandsOfRandomOperations) {
  BufferPool pool(PoolOptions{.max_bytes = 1 << 20, .trim_idle_frames = 5});
  std::mt19937 rng(42);
  std::vector<BufferId> held;
  for (int op = 0; op < 20000; ++op) {
    const auto format = kAllBufferFormats[rng() % kBufferFormatCount];
    const std::uint32_t count = 1 + rng() % 4096;
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        pool.Alloc(format, count);
        break;
      case 4:
      case 5:
        if (Buffer b = pool.Acquire(format, count)) held.push_back(b.id());
        break;
      case 6:
      case 7:
        if (!held.empty()) {
          const std::size_t i = rng() % held.size();
          ASSERT_TRUE(pool.Release(held[i]));
          held[i] = held.back();
          held.pop_back();
        }
        break;
      default:
        pool.EndFrame();
        const BufferPool::Audit audit = pool.AuditBytes();
        ASSERT_EQ(pool.Stats().pooled_bytes, audit.pooled_bytes) << "op " << op;
        ASSERT_EQ(pool.Stats().in_use_bytes, audit.in_use_bytes) << "op " << op;
        ASSERT_EQ(pool.Stats().outstanding_buffers, held.size());
        ASSERT_EQ(pool.Stats().allocations_total - pool.Stats().releases_total, held.size());
        ASSERT_LE(pool.Stats().pooled_bytes, 1U << 20);
        break;
    }
  }
  EXPECT_GT(pool.Stats().allocation_failures_total, 0U);
  EXPECT_GT(pool.Stats().trimmed_bytes_total, 0U);
}

// The frame's peak is the most in use at any moment: a held buffer released in the middle of
// the frame counts until its release, frame-scoped buffers until the frame's end.
TEST(BufferPoolTest, FramePeakInUseBytesIsTheMostInUseAtAnyMoment) {
  BufferPool pool;
  Buffer held = pool.Acquire(BufferFormat::kU8, 1000);
  ASSERT_TRUE(held);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.peak_in_use_bytes, 1000U);

  // 1000 held + 300 frame-scoped = 1300 at the release; then 200 more frame-scoped: 500.
  ASSERT_TRUE(pool.Alloc(BufferFormat::kU8, 300));
  ASSERT_TRUE(pool.Release(held.id()));
  ASSERT_TRUE(pool.Alloc(BufferFormat::kF32, 50));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.peak_in_use_bytes, 1300U);
  EXPECT_EQ(pool.Stats().in_use_bytes, 0U);

  // Frame-scoped only, the buffers of the frame before reused: the peak is their sum.
  ASSERT_TRUE(pool.Alloc(BufferFormat::kU8, 300));
  ASSERT_TRUE(pool.Alloc(BufferFormat::kF32, 50));
  ASSERT_TRUE(pool.Alloc(BufferFormat::kF32, 50));
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().last_frame.peak_in_use_bytes, 700U);
  EXPECT_EQ(pool.Stats().last_frame.allocations, 3U);
  EXPECT_EQ(pool.Stats().last_frame.releases, 3U);

  pool.EndFrame();  // an empty frame
  EXPECT_EQ(pool.Stats().last_frame.peak_in_use_bytes, 0U);
  EXPECT_EQ(pool.Stats().last_frame.allocations, 0U);
}

// A model of the pool's contract, kept by the test: which keys exist (trimmed exactly when idle
// for trim_idle_frames with nothing held), what each frame allocates and releases, and that no
// two buffers out at once share memory. Checked after every frame of 20k random operations over
// few keys, so that keys are reused, refused by the cap, and trimmed and made again. Run with
// trimming off (0: keys are never dropped) and on, after a short and a longer idle period: the
// longer one keeps more keys queued, and requeues them at last uses spread over more frames.
class BufferPoolModelTest : public testing::TestWithParam<std::uint32_t> {};

TEST_P(BufferPoolModelTest, AgreesWithAModelOfKeysCountsAndDistinctMemory) {
  const std::uint32_t idle = GetParam();
  BufferPool pool(PoolOptions{.max_bytes = 64 << 10, .trim_idle_frames = idle});
  std::mt19937 rng(7);
  using KeyOf = std::pair<BufferFormat, std::uint32_t>;
  struct ModelKey {
    std::uint64_t last_use = 0;
    std::uint64_t held = 0;
  };
  std::map<KeyOf, ModelKey> keys;
  struct Held {
    BufferId id;
    KeyOf key;
    const std::byte* memory;
  };
  std::vector<Held> held;
  std::set<const std::byte*> out;  // memory of every buffer out now
  std::uint64_t frame = 0;
  std::uint64_t allocations = 0;
  std::uint64_t releases = 0;
  std::uint64_t frame_scoped = 0;
  std::set<const std::byte*> frame_memory;  // frame-scoped buffers of this frame
  std::uint64_t in_use = 0;                 // bytes of every buffer out now
  std::uint64_t peak = 0;                   // the most in_use of this frame
  std::uint64_t frame_scoped_bytes = 0;
  std::uint64_t allocations_total = 0;
  std::uint64_t releases_total = 0;
  PoolStats sealed;  // Stats() at the last EndFrame(): nothing in a frame may change it

  const auto hand_out = [&](const Buffer& buffer, KeyOf key) {
    ASSERT_TRUE(out.insert(buffer.data()).second) << "memory handed out twice, frame " << frame;
    ASSERT_EQ(buffer.size_bytes(), ElementSize(key.first) * key.second);
    keys[key].last_use = frame;
    ++allocations;
    in_use += buffer.size_bytes();
    peak = std::max(peak, in_use);
  };
  for (int op = 0; op < 20000; ++op) {
    const KeyOf key{rng() % 2 == 0 ? BufferFormat::kF32 : BufferFormat::kU8, 1 + rng() % 24 * 100};
    const bool existed = keys.contains(key);
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        if (Buffer b = pool.Alloc(key.first, key.second)) {
          hand_out(b, key);
          frame_memory.insert(b.data());
          ++frame_scoped;
          frame_scoped_bytes += b.size_bytes();
        } else if (existed) {
          keys[key].last_use = frame;  // a refused request still uses the key
        }
        break;
      case 4:
      case 5:
        if (Buffer b = pool.Acquire(key.first, key.second)) {
          hand_out(b, key);
          ++keys[key].held;
          held.push_back({b.id(), key, b.data()});
        } else if (existed) {
          keys[key].last_use = frame;
        }
        break;
      case 6:
      case 7:
        if (!held.empty()) {
          const std::size_t i = rng() % held.size();
          const Held h = held[i];
          ASSERT_TRUE(pool.Release(h.id));
          ASSERT_FALSE(pool.Release(h.id));
          out.erase(h.memory);
          in_use -= ElementSize(h.key.first) * h.key.second;
          --keys[h.key].held;
          keys[h.key].last_use = frame;
          ++releases;
          held[i] = held.back();
          held.pop_back();
        }
        break;
      default:
        pool.EndFrame();
        for (const std::byte* memory : frame_memory) out.erase(memory);
        frame_memory.clear();
        std::erase_if(keys, [&](const auto& entry) {
          return idle != 0 && entry.second.held == 0 && entry.second.last_use + idle <= frame;
        });
        sealed = pool.Stats();
        const PoolStats& stats = sealed;
        ASSERT_EQ(stats.frames, frame + 1);
        ASSERT_EQ(stats.last_frame.frame, frame);
        ASSERT_EQ(stats.last_frame.allocations, allocations) << "frame " << frame;
        ASSERT_EQ(stats.last_frame.releases, releases + frame_scoped) << "frame " << frame;
        ASSERT_EQ(stats.last_frame.peak_in_use_bytes, peak) << "frame " << frame;
        in_use -= frame_scoped_bytes;
        ASSERT_EQ(stats.in_use_bytes, in_use) << "frame " << frame;
        peak = in_use;  // what the next frame starts with
        frame_scoped_bytes = 0;
        ASSERT_EQ(stats.keys, keys.size()) << "frame " << frame;
        ASSERT_EQ(stats.outstanding_buffers, held.size());
        ASSERT_EQ(pool.AuditBytes().pooled_bytes, stats.pooled_bytes);
        allocations_total += allocations;
        releases_total += releases + frame_scoped;
        ASSERT_EQ(stats.allocations_total, allocations_total) << "frame " << frame;
        ASSERT_EQ(stats.releases_total, releases_total) << "frame " << frame;
        ++frame;
        allocations = releases = frame_scoped = 0;
        break;
    }
    ASSERT_EQ(pool.Stats(), sealed) << "Stats() changed within frame " << frame << ", op " << op;
  }
  EXPECT_GT(frame, 1000U);
  EXPECT_GT(pool.Stats().allocation_failures_total, 0U);
  if (idle != 0) {
    EXPECT_GT(pool.Stats().trimmed_bytes_total, 0U);
  } else {
    EXPECT_EQ(pool.Stats().trimmed_bytes_total, 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(Trimming, BufferPoolModelTest, testing::Values(0U, 4U, 12U),
                         [](const testing::TestParamInfo<std::uint32_t>& param) {
                           return param.param == 0 ? std::string("Off")
                                                   : "After" + std::to_string(param.param);
                         });

// Frame-scoped buffers return at the frame's end without being visited, so a key unused for a
// frame must still hand out its buffers from the start, and an Acquire() in the middle of a
// frame must never take one that Alloc() handed out this frame.
TEST(BufferPoolTest, FrameScopedBuffersComeBackEvenWhenTheirKeyIsUnusedForFrames) {
  BufferPool pool;
  const Buffer a = pool.Alloc(BufferFormat::kU8, 64);
  const Buffer b = pool.Alloc(BufferFormat::kU8, 64);
  pool.EndFrame();
  pool.EndFrame();  // a frame in which the key is not used
  const Buffer c = pool.Alloc(BufferFormat::kU8, 64);
  const Buffer held = pool.Acquire(BufferFormat::kU8, 64);  // takes the free one: b's memory
  const Buffer d = pool.Alloc(BufferFormat::kU8, 64);       // none free: new memory
  EXPECT_EQ(c.data(), a.data());
  EXPECT_EQ(held.data(), b.data());
  EXPECT_NE(d.data(), a.data());
  EXPECT_NE(d.data(), b.data());
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().misses_total, 3U);
  EXPECT_EQ(pool.Stats().in_use_bytes, 64U);
  EXPECT_EQ(pool.AuditBytes().in_use_bytes, 64U);
  EXPECT_EQ(pool.Stats().last_frame.allocations, 3U);
  EXPECT_EQ(pool.Stats().last_frame.releases, 2U);
}

// A key is trimmed exactly trim_idle_frames after its last use, however often it was used
// before and whatever other keys do, and the table of keys finds every key after others left.
TEST(BufferPoolTest, TrimIsExactForKeysUsedAtDifferentRatesAndKeysComeBack) {
  BufferPool pool(PoolOptions{.max_bytes = 0, .trim_idle_frames = 10});
  for (std::uint32_t frame = 0; frame < 100; ++frame) {
    for (std::uint32_t count = 1; count <= 300; ++count) {
      if (frame % count == 0 || count <= 2) pool.Alloc(BufferFormat::kU8, count);
    }
    pool.EndFrame();
    // Key `count` was last used at the largest multiple of count not above `frame`; it is gone
    // once that is 10 frames back.
    std::uint64_t expected = 0;
    for (std::uint32_t count = 1; count <= 300; ++count) {
      const std::uint32_t last = count <= 2 ? frame : frame - frame % count;
      if (last + 10 > frame) ++expected;
    }
    ASSERT_EQ(pool.Stats().keys, expected) << "frame " << frame;
  }
  for (std::uint32_t count = 1; count <= 300; ++count) {
    const Buffer b = pool.Alloc(BufferFormat::kU8, count);
    ASSERT_TRUE(b);
    ASSERT_EQ(b.size_bytes(), count);
  }
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().keys, 300U);
  EXPECT_EQ(pool.AuditBytes().pooled_bytes, pool.Stats().pooled_bytes);
}

// The keys' stacks share one array: a stack that outgrows its room moves to the array's end,
// the array reallocates, and the rooms left behind (by moves, and by keys trimmed away) are
// compacted. Through all of it each key hands out its own buffers and no other's: every frame,
// the same memory under the same id (a new id only after an Acquire() and Release() of it).
TEST(BufferPoolTest, KeysWhoseStacksGrowInTurnAndLeaveEachHandOutOnlyTheirOwnBuffers) {
  constexpr std::uint32_t kKeys = 40;
  constexpr std::uint32_t kIdle = 3;
  BufferPool pool(PoolOptions{.trim_idle_frames = kIdle});
  std::mt19937 rng(11);
  struct Owned {
    std::uint32_t key = 0;
    BufferId id;
  };
  std::map<const std::byte*, Owned> owner;     // every buffer handed out so far, by its memory
  std::vector<std::uint32_t> depth(kKeys, 1);  // buffers each key hands out a frame
  const auto count_of = [](std::uint32_t key) { return 16 + 16 * key; };
  std::uint64_t forgotten = 0;  // buffers of keys trimmed away
  const auto forget = [&](std::uint32_t key) {
    forgotten += std::erase_if(owner, [key](const auto& entry) { return entry.second.key == key; });
    depth[key] = 0;
  };
  // Frames 0-199: every key in use, one key's depth grows each frame (stacks outgrow their room
  // in an order the array's layout does not follow). Frames 200-299: the even keys are left
  // idle and trimmed, the odd ones grow on. Frames 300-399: the even keys come back.
  for (std::uint32_t frame = 0; frame < 400; ++frame) {
    const bool evens_away = frame >= 200 && frame < 300;
    for (std::uint32_t key = 0; key < kKeys; key += 2) {
      if (frame == 200) forget(key);
      if (frame == 300) depth[key] = 1;
    }
    auto grow = static_cast<std::uint32_t>(rng() % kKeys);
    if (evens_away) grow |= 1;
    ++depth[grow];
    for (std::uint32_t key = 0; key < kKeys; ++key) {
      if (evens_away && key % 2 == 0) continue;
      if (depth[key] > 1 && rng() % 4 == 0) {  // a free buffer held and back: a new id
        const Buffer held = pool.Acquire(BufferFormat::kU8, count_of(key));
        ASSERT_TRUE(held);
        const auto it = owner.find(held.data());
        ASSERT_NE(it, owner.end()) << "key " << key << " acquired new memory, frame " << frame;
        ASSERT_EQ(it->second.key, key)
            << "key " << key << " acquired key " << it->second.key << "'s buffer, frame " << frame;
        it->second.id = held.id();
        ASSERT_TRUE(pool.Release(held.id()));
      }
      std::set<const std::byte*> this_frame;
      for (std::uint32_t i = 0; i < depth[key]; ++i) {
        const Buffer b = pool.Alloc(BufferFormat::kU8, count_of(key));
        ASSERT_TRUE(b);
        ASSERT_TRUE(this_frame.insert(b.data()).second) << "key " << key << ", frame " << frame;
        const auto [it, added] = owner.try_emplace(b.data(), Owned{key, b.id()});
        if (added) continue;  // new memory
        ASSERT_EQ(it->second.key, key) << "key " << key << " handed out key " << it->second.key
                                       << "'s buffer, frame " << frame;
        ASSERT_EQ(it->second.id, b.id()) << "key " << key << ", frame " << frame;
      }
    }
    pool.EndFrame();
    ASSERT_EQ(pool.Stats().misses_total, owner.size() + forgotten) << "frame " << frame;
    if (frame == 299) {
      ASSERT_EQ(pool.Stats().keys, kKeys / 2);
      ASSERT_GT(pool.Stats().trimmed_bytes_total, 0U);
    }
  }
  EXPECT_EQ(pool.Stats().keys, kKeys);
  EXPECT_EQ(pool.AuditBytes().pooled_bytes, pool.Stats().pooled_bytes);
}

}  // namespace
}  // namespace poolwatch

namespace poolwatch {
namespace {

TEST(BufferPoolAttributionTest, GroupsHeldBuffersBySiteAndFormatWithTheOldestFrame) {
  BufferPool pool;
  std::vector<BufferId> a;
  for (int frame = 0; frame < 5; ++frame) {
    a.push_back(pool.Acquire(BufferFormat::kF32, 10, "site.a").id());
    pool.Acquire(BufferFormat::kU16, 10, "site.a");
    pool.Alloc(BufferFormat::kF32, 10, "site.a");  // frame-scoped: not attributed
    pool.EndFrame();
  }
  pool.Acquire(BufferFormat::kF32, 3);  // untagged
  std::vector<OutstandingGroup> groups;
  pool.OutstandingBySite(groups);
  ASSERT_EQ(groups.size(), 3U);
  EXPECT_STREQ(groups[0].site, "site.a");
  EXPECT_EQ(groups[0].format, BufferFormat::kF32);
  EXPECT_EQ(groups[0].count, 5U);
  EXPECT_EQ(groups[0].bytes, 200U);
  EXPECT_EQ(groups[0].oldest_frame, 0U);
  EXPECT_EQ(groups[1].format, BufferFormat::kU16);
  EXPECT_EQ(groups[2].site, nullptr);

  // Releasing the oldest moves the group's age to the next oldest; the middle one changes none.
  ASSERT_TRUE(pool.Release(a[0]));
  ASSERT_TRUE(pool.Release(a[2]));
  pool.OutstandingBySite(groups);
  EXPECT_EQ(groups[0].count, 3U);
  EXPECT_EQ(groups[0].oldest_frame, 1U);
  for (std::size_t i : {1U, 3U, 4U}) ASSERT_TRUE(pool.Release(a[i]));
  pool.OutstandingBySite(groups);
  EXPECT_EQ(groups.size(), 2U);  // the emptied group is not listed
}

}  // namespace
}  // namespace poolwatch

namespace poolwatch {
namespace {

TEST(HeldBufferTest, ReleasesOnDestructionAndMovesOwnership) {
  BufferPool pool;
  {
    HeldBuffer held(pool, BufferFormat::kF32, 16, "test.held");
    ASSERT_TRUE(held);
    EXPECT_EQ(held->size_bytes(), 64U);
    HeldBuffer moved = std::move(held);
    EXPECT_FALSE(held);  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
    EXPECT_TRUE(moved);
    pool.EndFrame();
    EXPECT_EQ(pool.Stats().outstanding_buffers, 1U);
    HeldBuffer other(pool, BufferFormat::kU8, 4);
    other = std::move(moved);  // the u8 buffer is released, the f32 one now owned by `other`
    pool.EndFrame();
    EXPECT_EQ(pool.Stats().outstanding_buffers, 1U);
    EXPECT_EQ(pool.Stats().in_use_bytes, 64U);
  }
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().outstanding_buffers, 0U);
  EXPECT_EQ(pool.Stats().allocations_total, pool.Stats().releases_total);
  std::vector<OutstandingGroup> groups;
  pool.OutstandingBySite(groups);
  EXPECT_TRUE(groups.empty());
}

TEST(HeldBufferTest, AnEmptyHandleReleasesNothingAndResetReleasesEarly) {
  BufferPool pool({.max_bytes = 32, .trim_idle_frames = 0});
  HeldBuffer refused(pool, BufferFormat::kF32, 1000);
  EXPECT_FALSE(refused);
  HeldBuffer held(pool, BufferFormat::kU8, 8);
  held.Reset();
  EXPECT_FALSE(held);
  pool.EndFrame();
  EXPECT_EQ(pool.Stats().releases_total, 1U);
  EXPECT_EQ(pool.Stats().allocation_failures_total, 1U);
  EXPECT_EQ(pool.Stats().outstanding_buffers, 0U);
}

}  // namespace
}  // namespace poolwatch

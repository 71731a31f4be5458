// Held buffers by call stack, by age and since a mark: what /debug shows of a leak.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "poolwatch/buffer_pool.h"
#include "poolwatch/call_stack.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/mark_board.h"

namespace poolwatch {
namespace {

// Two known functions that leak untagged buffers from different call stacks. noipa keeps them
// apart (no inlining, cloning or identical code folding); the barriers keep each frame on the
// stack (no tail call).
[[gnu::noipa]] Buffer LeakFromTheParticleCache(BufferPool& pool, std::uint32_t count) {
  Buffer buffer = pool.Acquire(BufferFormat::kF32, count);
  asm volatile("# particle cache" ::: "memory");
  return buffer;
}

[[gnu::noipa]] Buffer LeakFromTheAudioMixer(BufferPool& pool, std::uint32_t count) {
  Buffer buffer = pool.Acquire(BufferFormat::kF32, count);
  asm volatile("# audio mixer" ::: "memory");
  return buffer;
}

// Leaks `times` buffers through one call site, so from one call stack (a loop in the test body
// could be unrolled into several call sites).
[[gnu::noipa]] std::vector<Buffer> LeakRepeatedly(Buffer (*leak)(BufferPool&, std::uint32_t),
                                                  BufferPool& pool, int times,
                                                  std::uint32_t count) {
  std::vector<Buffer> buffers;
#pragma GCC unroll 1
  for (int i = 0; i < times; ++i) buffers.push_back(leak(pool, count));
  return buffers;
}

TEST(CallStackTest, AnUntaggedLeakIsAttributedToTheFunctionThatLeaks) {
  BufferPool pool({.stack_sampling = 1});
  LeakRepeatedly(LeakFromTheParticleCache, pool, 3, 64);
  pool.EndFrame();

  HeldStacks stacks;
  pool.OutstandingByStack(8, stacks);
  ASSERT_EQ(stacks.top.size(), 1U);
  EXPECT_EQ(stacks.top[0].held, (HeldTally{3, 3UL * 64 * 4}));
  EXPECT_EQ(stacks.top[0].site, nullptr);
  EXPECT_EQ(stacks.unsampled, HeldTally{});
  ASSERT_GE(stacks.top[0].stack.depth, 2U);

  // The innermost frame is the caller of Acquire(), named with file and line (this test is
  // built with debug information); then the function that called it.
  const SourceLocation leaker = Symbolizer::Shared().Resolve(stacks.top[0].stack.frames[0]);
  EXPECT_NE(leaker.function.find("LeakFromTheParticleCache"), std::string::npos) << leaker.function;
  EXPECT_NE(leaker.file.find("held_attribution_test.cc"), std::string::npos) << leaker.file;
  EXPECT_GT(leaker.line, 0U);
  const SourceLocation caller = Symbolizer::Shared().Resolve(stacks.top[0].stack.frames[1]);
  EXPECT_NE(caller.function.find("LeakRepeatedly"), std::string::npos) << caller.function;
  // Answered from the cache the second time.
  const std::size_t cached = Symbolizer::Shared().cached();
  EXPECT_EQ(Symbolizer::Shared().Resolve(stacks.top[0].stack.frames[0]).function, leaker.function);
  EXPECT_EQ(Symbolizer::Shared().cached(), cached);
}

TEST(CallStackTest, StacksAreRankedByBytesAndTheRestSummed) {
  BufferPool pool({.stack_sampling = 1});
  const std::vector<Buffer> mixer = LeakRepeatedly(LeakFromTheAudioMixer, pool, 4, 1000);
  LeakRepeatedly(LeakFromTheParticleCache, pool, 2, 100);
  pool.Acquire(BufferFormat::kU8, 10, "direct");  // a third stack: this test's body
  pool.EndFrame();

  HeldStacks stacks;
  pool.OutstandingByStack(1, stacks);
  ASSERT_EQ(stacks.top.size(), 1U);
  EXPECT_EQ(stacks.top[0].held, (HeldTally{4, 4UL * 4000}));
  EXPECT_NE(Symbolizer::Shared()
                .Resolve(stacks.top[0].stack.frames[0])
                .function.find("LeakFromTheAudioMixer"),
            std::string::npos);
  EXPECT_EQ(stacks.other_stacks, 2U);
  EXPECT_EQ(stacks.other, (HeldTally{3, 2 * 400 + 10}));

  // Released buffers leave their stack; a stack with none left is not listed.
  for (const Buffer& buffer : mixer) ASSERT_TRUE(pool.Release(buffer.id()));
  pool.OutstandingByStack(8, stacks);
  ASSERT_EQ(stacks.top.size(), 2U);
  EXPECT_EQ(stacks.top[0].held, (HeldTally{2, 800}));
  EXPECT_EQ(stacks.top[1].held, (HeldTally{1, 10}));
  EXPECT_STREQ(stacks.top[1].site, "direct");
  EXPECT_EQ(stacks.other_stacks, 0U);
}

TEST(CallStackTest, SamplingOffCapturesNothingAndOneInNSamplesAboutThatMany) {
  BufferPool off;
  for (int i = 0; i < 100; ++i) off.Acquire(BufferFormat::kU8, 8);
  HeldStacks stacks;
  off.OutstandingByStack(8, stacks);
  EXPECT_TRUE(stacks.top.empty());
  EXPECT_EQ(stacks.unsampled, (HeldTally{100, 800}));
  // Turned on (a reload), the next Acquire() is captured.
  off.SetOptions({.stack_sampling = 1});
  LeakFromTheParticleCache(off, 1);
  off.OutstandingByStack(8, stacks);
  ASSERT_EQ(stacks.top.size(), 1U);
  EXPECT_EQ(stacks.top[0].held, (HeldTally{1, 4}));

  BufferPool sampled({.stack_sampling = 16});
  constexpr int kAcquires = 16'000;
  for (int i = 0; i < kAcquires; ++i) sampled.Acquire(BufferFormat::kU8, 8);
  sampled.OutstandingByStack(8, stacks);
  const std::uint64_t captured = kAcquires - stacks.unsampled.count;
  EXPECT_GT(captured, 800U);  // 1000 expected
  EXPECT_LT(captured, 1200U);
  ASSERT_EQ(stacks.top.size(), 1U);  // one call site, one stack
  EXPECT_EQ(stacks.top[0].held.count, captured);
}

TEST(CallStackTest, FrameScopedAllocationsNeverCapture) {
  BufferPool pool({.stack_sampling = 1});
  for (int frame = 0; frame < 10; ++frame) {
    for (std::uint32_t i = 0; i < 10; ++i) pool.Alloc(BufferFormat::kU8, 16 + i);
    pool.EndFrame();
  }
  HeldStacks stacks;
  pool.OutstandingByStack(8, stacks);
  EXPECT_TRUE(stacks.top.empty());
  EXPECT_EQ(stacks.unsampled, HeldTally{});
}

// The ages the pool keeps, against a count from every held buffer's frame.
HeldAges CountAges(const BufferPool& pool, const std::array<std::uint64_t, 4>& bounds) {
  HeldAges ages{};
  pool.ForEachOutstanding([&](const OutstandingBuffer& buffer) {
    const std::uint64_t age = pool.CurrentFrame() - buffer.frame;
    std::size_t bucket = 0;
    while (bucket < bounds.size() && age >= bounds[bucket]) ++bucket;
    ages[bucket].Add(buffer.bytes);
  });
  return ages;
}

TEST(HeldAgesTest, BuffersMoveUpABucketAsTheyCrossEachBound) {
  BufferPool pool;
  const std::array<std::uint64_t, 4> bounds = {2, 4, 8, 16};
  pool.SetAgeBounds(bounds);
  const Buffer first = pool.Acquire(BufferFormat::kU8, 100);
  pool.EndFrame();
  EXPECT_EQ(pool.Ages()[0], (HeldTally{1, 100}));
  pool.EndFrame();  // two frames old
  EXPECT_EQ(pool.Ages()[0], HeldTally{});
  EXPECT_EQ(pool.Ages()[1], (HeldTally{1, 100}));
  pool.Acquire(BufferFormat::kU8, 10);
  for (int i = 0; i < 20; ++i) pool.EndFrame();
  EXPECT_EQ(pool.Ages()[4], (HeldTally{2, 110}));
  ASSERT_TRUE(pool.Release(first.id()));
  EXPECT_EQ(pool.Ages()[4], (HeldTally{1, 10}));
}

TEST(HeldAgesTest, AgesMatchACountOfEveryBufferUnderRandomTraffic) {
  BufferPool pool;
  const std::array<std::uint64_t, 4> bounds = {3, 7, 20, 50};
  pool.SetAgeBounds(bounds);
  std::mt19937 random(7);
  std::vector<BufferId> held;
  for (int frame = 0; frame < 400; ++frame) {
    const int acquires = std::uniform_int_distribution<int>(0, 4)(random);
    for (int i = 0; i < acquires; ++i) {
      held.push_back(
          pool.Acquire(BufferFormat::kU8, static_cast<std::uint32_t>(1 + random() % 5)).id());
    }
    const int releases = std::uniform_int_distribution<int>(0, 3)(random);
    for (int i = 0; i < releases && !held.empty(); ++i) {
      const std::size_t at = random() % held.size();
      ASSERT_TRUE(pool.Release(held[at]));
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(at));
    }
    ASSERT_EQ(pool.Ages(), CountAges(pool, bounds)) << "in frame " << frame;
    pool.EndFrame();
    ASSERT_EQ(pool.Ages(), CountAges(pool, bounds)) << "after frame " << frame;
    if (frame == 200) {  // new bounds apply to the buffers held already
      pool.SetAgeBounds({1, 2, 3, 4});
      ASSERT_EQ(pool.Ages(), CountAges(pool, {1, 2, 3, 4}));
      pool.SetAgeBounds(bounds);
    }
  }
}

[[gnu::noipa]] Buffer AcquireTagged(BufferPool& pool, const char* site, std::uint32_t count) {
  Buffer buffer = pool.Acquire(BufferFormat::kU8, count, site);
  asm volatile("# tagged" ::: "memory");
  return buffer;
}

// Releases in any order reuse held buffers' records while others stay linked: every group's
// and every stack's tally and oldest frame match a recount of the buffers still held.
TEST(HeldAttributionTest, SitesAndStacksMatchARecountUnderRandomTraffic) {
  BufferPool pool({.stack_sampling = 1});
  struct Held {
    BufferId id;
    int origin;  // 0, 1: untagged, from the particle cache or the audio mixer; 2: tagged
    const char* site;
    std::uint64_t bytes;
    std::uint64_t frame;
  };
  std::vector<Held> held;
  std::mt19937 random(11);
  const std::array<const char*, 2> sites = {"render.a", "render.b"};
  for (int frame = 0; frame < 300; ++frame) {
    const int acquires = std::uniform_int_distribution<int>(0, 4)(random);
    for (int i = 0; i < acquires; ++i) {
      const int origin = std::uniform_int_distribution<int>(0, 2)(random);
      const auto count = static_cast<std::uint32_t>(1 + random() % 7);
      const char* site = origin == 2 ? sites[random() % 2] : nullptr;
      const Buffer buffer = origin == 0   ? LeakFromTheParticleCache(pool, count)
                            : origin == 1 ? LeakFromTheAudioMixer(pool, count)
                                          : AcquireTagged(pool, site, count);
      ASSERT_TRUE(buffer);
      held.push_back({buffer.id(), origin, site, buffer.size_bytes(), pool.CurrentFrame()});
    }
    const int releases = std::uniform_int_distribution<int>(0, 4)(random);
    for (int i = 0; i < releases && !held.empty(); ++i) {
      const std::size_t at = random() % held.size();
      ASSERT_TRUE(pool.Release(held[at].id));
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(at));
    }
    pool.EndFrame();

    // By site and format: the untagged F32 buffers of both functions, and each tagged site.
    std::vector<OutstandingGroup> expected_groups;
    for (const Held& h : held) {
      const BufferFormat format = h.origin == 2 ? BufferFormat::kU8 : BufferFormat::kF32;
      auto group = std::ranges::find_if(expected_groups, [&](const OutstandingGroup& g) {
        return g.site == h.site && g.format == format;
      });
      if (group == expected_groups.end()) {
        expected_groups.push_back({h.site, format, 0, 0, h.frame, h.frame});
        group = expected_groups.end() - 1;
      }
      ++group->count;
      group->bytes += h.bytes;
      group->oldest_frame = std::min(group->oldest_frame, h.frame);
      group->newest_frame = std::max(group->newest_frame, h.frame);
    }
    std::vector<OutstandingGroup> groups;
    pool.OutstandingBySite(groups);
    ASSERT_EQ(groups.size(), expected_groups.size()) << "after frame " << frame;
    for (const OutstandingGroup& group : groups) {
      const auto expected = std::ranges::find_if(expected_groups, [&](const OutstandingGroup& g) {
        return g.site == group.site && g.format == group.format;
      });
      ASSERT_NE(expected, expected_groups.end()) << "after frame " << frame;
      EXPECT_EQ(group.count, expected->count) << "after frame " << frame;
      EXPECT_EQ(group.bytes, expected->bytes) << "after frame " << frame;
      EXPECT_EQ(group.oldest_frame, expected->oldest_frame) << "after frame " << frame;
      EXPECT_EQ(group.newest_frame, expected->newest_frame) << "after frame " << frame;
    }

    // By stack: one per function, each buffer sampled.
    std::array<HeldStack, 3> by_origin{};
    for (const Held& h : held) {
      HeldStack& stack = by_origin[static_cast<std::size_t>(h.origin)];
      if (stack.held.count == 0 || h.frame < stack.oldest_frame) stack.oldest_frame = h.frame;
      stack.held.Add(h.bytes);
    }
    std::vector<std::array<std::uint64_t, 3>> expected_stacks;
    for (const HeldStack& stack : by_origin) {
      if (stack.held.count != 0) {
        expected_stacks.push_back({stack.held.bytes, stack.held.count, stack.oldest_frame});
      }
    }
    HeldStacks stacks;
    pool.OutstandingByStack(8, stacks);
    std::vector<std::array<std::uint64_t, 3>> actual_stacks;
    for (const HeldStack& stack : stacks.top) {
      actual_stacks.push_back({stack.held.bytes, stack.held.count, stack.oldest_frame});
    }
    std::ranges::sort(expected_stacks);
    std::ranges::sort(actual_stacks);
    EXPECT_EQ(actual_stacks, expected_stacks) << "after frame " << frame;
    EXPECT_EQ(stacks.unsampled, HeldTally{});

    std::size_t outstanding = 0;
    pool.ForEachOutstanding([&](const OutstandingBuffer&) { ++outstanding; });
    EXPECT_EQ(outstanding, held.size());
    EXPECT_EQ(pool.Stats().outstanding_buffers, held.size());
  }
}

TEST(HeldSinceMarkTest, CountsWhatWasAcquiredAfterTheMarkAndIsStillHeld) {
  BufferPool pool({.stack_sampling = 1});
  const Buffer before = pool.Acquire(BufferFormat::kU8, 100, "before");
  pool.EndFrame();
  pool.AddMark(7);
  const Buffer after = pool.Acquire(BufferFormat::kU8, 10, "after");
  LeakFromTheParticleCache(pool, 5);
  pool.Acquire(BufferFormat::kU8, 1, "after");
  ASSERT_TRUE(pool.Release(before.id()));  // acquired before the mark: no change
  ASSERT_TRUE(pool.Release(after.id()));   // acquired after, gone again
  pool.EndFrame();

  std::vector<HeldSince> since;
  pool.HeldSinceMarks(8, since);
  ASSERT_EQ(since.size(), 1U);
  EXPECT_EQ(since[0].mark, 7U);
  EXPECT_EQ(since[0].frame, 1U);
  EXPECT_EQ(since[0].held, (HeldTally{2, 21}));
  ASSERT_EQ(since[0].sites.size(), 2U);
  const auto site = [&](const char* name) {
    return std::ranges::find_if(since[0].sites, [&](const OutstandingGroup& group) {
      return group.site != nullptr && std::string(group.site) == name;
    });
  };
  ASSERT_NE(site("after"), since[0].sites.end());
  EXPECT_EQ(site("after")->count, 1U);
  ASSERT_EQ(since[0].stacks.top.size(), 2U);
  EXPECT_EQ(since[0].stacks.top[0].held, (HeldTally{1, 20}));
  EXPECT_NE(Symbolizer::Shared()
                .Resolve(since[0].stacks.top[0].stack.frames[0])
                .function.find("LeakFromTheParticleCache"),
            std::string::npos);

  pool.DropMark(7);
  pool.HeldSinceMarks(8, since);
  EXPECT_TRUE(since.empty());
}

TEST(HeldSinceMarkTest, APoolKeepsAtMostItsBoundOfMarks) {
  BufferPool pool;
  for (std::uint64_t id = 1; id <= BufferPool::kMaxMarks + 3; ++id) pool.AddMark(id);
  std::vector<HeldSince> since;
  pool.HeldSinceMarks(8, since);
  ASSERT_EQ(since.size(), BufferPool::kMaxMarks);
  EXPECT_EQ(since.front().mark, 4U);  // the oldest made room
}

TEST(MarkBoardTest, NamesAreCheckedAndTheOldestMarkMakesRoom) {
  MarkBoard board(2);
  EXPECT_FALSE(MarkBoard::CheckName("").empty());
  EXPECT_FALSE(MarkBoard::CheckName(std::string(65, 'a')).empty());
  EXPECT_FALSE(MarkBoard::CheckName("line\nbreak").empty());
  EXPECT_TRUE(MarkBoard::CheckName("before level 3").empty());
  EXPECT_THROW(board.Add(""), std::invalid_argument);
  const std::uint64_t version = board.version();
  EXPECT_EQ(board.Add("a").id, 1U);
  EXPECT_EQ(board.Add("b").id, 2U);
  EXPECT_EQ(board.Add("c").id, 3U);
  EXPECT_GT(board.version(), version);
  const std::vector<Mark> marks = board.List();
  ASSERT_EQ(marks.size(), 2U);
  EXPECT_EQ(marks[0].name, "b");
  EXPECT_EQ(marks[1].name, "c");
}

TEST(HealthMonitorAttributionTest, SnapshotsCarryStacksAgesAndMarks) {
  auto board = std::make_shared<MarkBoard>();
  HealthMonitor monitor({.loop = "main", .period = std::chrono::milliseconds{100}});
  BufferPool pool({.stack_sampling = 1});
  monitor.AddPool("render", pool);
  monitor.UseMarks(board);
  const PoolSnapshot* latest = nullptr;
  HealthSnapshot copy;
  monitor.Subscribe([&](const HealthSnapshot& s) { copy = s; });

  LeakFromTheParticleCache(pool, 8);
  monitor.EndFrame({});
  latest = copy.FindPool("render");
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(latest->stack_sampling, 1U);
  ASSERT_EQ(latest->stacks.top.size(), 1U);
  EXPECT_EQ(latest->ages[0], (HeldTally{1, 32}));
  EXPECT_TRUE(latest->marks.empty());

  board->Add("after the first leak");
  monitor.EndFrame({});  // the pool takes the mark at the frame's end
  LeakRepeatedly(LeakFromTheAudioMixer, pool, 2, 8);
  for (int i = 0; i < 9; ++i) monitor.EndFrame({});  // 1 s at 10 Hz: the first crosses 1 s
  latest = copy.FindPool("render");
  ASSERT_EQ(latest->marks.size(), 1U);
  EXPECT_EQ(latest->marks[0].mark, 1U);
  EXPECT_EQ(latest->marks[0].held, (HeldTally{2, 64}));
  EXPECT_EQ(latest->stacks.top[0].held, (HeldTally{2, 64}));
  EXPECT_EQ(latest->ages[0], (HeldTally{2, 64}));
  EXPECT_EQ(latest->ages[1], (HeldTally{1, 32}));
}

}  // namespace
}  // namespace poolwatch

#include "poolwatch/detail/trim_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace poolwatch::detail {
namespace {

// Takes every entry out through the front and returns the frames in the order they left.
std::vector<std::uint64_t> Drain(TrimQueue& queue) {
  std::vector<std::uint64_t> frames;
  while (!queue.empty()) {
    frames.push_back(queue.FrontFrame());
    queue.Remove(queue.FrontKey());
  }
  return frames;
}

TEST(TrimQueueTest, FrontIsTheEarliestFrame) {
  TrimQueue queue;
  queue.Push(0, 30);
  queue.Push(1, 10);
  queue.Push(2, 20);
  EXPECT_EQ(queue.size(), 3U);
  EXPECT_EQ(queue.FrontKey(), 1U);
  EXPECT_EQ(queue.FrontFrame(), 10U);
  EXPECT_EQ(Drain(queue), (std::vector<std::uint64_t>{10, 20, 30}));
}

TEST(TrimQueueTest, RemoveOfAKeyNotQueuedChangesNothing) {
  TrimQueue queue;
  queue.Remove(5);  // never seen, beyond the positions known
  queue.Push(1, 7);
  queue.Remove(0);  // within the positions known, never queued
  queue.Remove(1);
  queue.Remove(1);  // already gone
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.Contains(1));
  queue.Push(1, 8);  // a removed key may come back
  EXPECT_TRUE(queue.Contains(1));
  EXPECT_EQ(queue.FrontFrame(), 8U);
}

TEST(TrimQueueTest, RequeuedFrontSinksBehindEarlierEntries) {
  TrimQueue queue;
  for (std::uint32_t key = 0; key < 7; ++key) queue.Push(key, key);
  queue.RequeueFront(4);  // key 0, now tied with key 4
  EXPECT_EQ(queue.FrontKey(), 1U);
  queue.RequeueFront(100);  // key 1, now the last
  EXPECT_EQ(Drain(queue), (std::vector<std::uint64_t>{2, 3, 4, 4, 5, 6, 100}));
}

// The one case a pool's own traffic does not reach today (it removes only the front or the
// newest entry): an entry removed from the middle, whose hole the last entry fills and must
// rise from, because it is earlier than the hole's parent. Pushed in this order, each entry
// stays where it lands, so the heap by position is
//   [0] 1; [1] 20, [2] 2; [3] 21, [4] 22, [5] 3, [6] 4; [7..10] 23..26, [11..14] 5..8.
// Removing 21 (position 3) moves 8 there, below 20; left there, 20 would leave before it.
TEST(TrimQueueTest, EntryFillingAHoleRisesAboveALaterParent) {
  TrimQueue queue;
  const std::vector<std::uint64_t> frames = {1, 20, 2, 21, 22, 3, 4, 23, 24, 25, 26, 5, 6, 7, 8};
  for (std::uint32_t key = 0; key < frames.size(); ++key) queue.Push(key, frames[key]);
  queue.Remove(3);
  EXPECT_FALSE(queue.Contains(3));
  EXPECT_EQ(Drain(queue),
            (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 20, 22, 23, 24, 25, 26}));
}

// Every operation, at random, against an ordered set of (frame, key) as the model.
TEST(TrimQueueTest, MatchesAnOrderedSetOverRandomOperations) {
  std::mt19937 rng(11);
  constexpr std::uint32_t kKeys = 64;
  TrimQueue queue;
  std::set<std::pair<std::uint64_t, std::uint32_t>> model;
  std::map<std::uint32_t, std::uint64_t> frame_of;
  std::uint64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    now += rng() % 3;
    const std::uint32_t key = rng() % kKeys;
    switch (rng() % 4) {
      case 0:
      case 1:  // a key comes, queued at a frame up to 50 before now (a requeue at a last use)
        if (!frame_of.contains(key)) {
          const std::uint64_t frame = now - std::min<std::uint64_t>(now, rng() % 50);
          queue.Push(key, frame);
          model.insert({frame, key});
          frame_of[key] = frame;
        }
        break;
      case 2:  // a key leaves, from anywhere
        queue.Remove(key);
        if (auto it = frame_of.find(key); it != frame_of.end()) {
          model.erase({it->second, key});
          frame_of.erase(it);
        }
        break;
      default:  // the front is looked at again later
        if (!model.empty()) {
          const std::uint32_t front = queue.FrontKey();
          const std::uint64_t later = frame_of.at(front) + rng() % 100;
          queue.RequeueFront(later);
          model.erase({frame_of[front], front});
          model.insert({later, front});
          frame_of[front] = later;
        }
        break;
    }
    ASSERT_EQ(queue.size(), model.size()) << "step " << step;
    ASSERT_EQ(queue.Contains(key), frame_of.contains(key)) << "step " << step;
    if (!model.empty()) {
      ASSERT_EQ(queue.FrontFrame(), model.begin()->first) << "step " << step;
      ASSERT_EQ(frame_of.at(queue.FrontKey()), queue.FrontFrame()) << "step " << step;
    }
  }
  std::vector<std::uint64_t> expected;
  std::transform(model.begin(), model.end(), std::back_inserter(expected),
                 [](const auto& entry) { return entry.first; });
  EXPECT_EQ(Drain(queue), expected);
}

}  // namespace
}  // namespace poolwatch::detail

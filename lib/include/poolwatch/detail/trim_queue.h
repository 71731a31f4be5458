#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace poolwatch::detail {

// BufferPool's trim queue: keys (dense indices) each queued at a frame, the earliest first. A
// binary min-heap that knows where each key is, so that a key can leave it from anywhere and a
// requeue, which may land anywhere in the order, costs O(log keys). Ties leave in no particular
// order. Not thread-safe: it belongs to its pool's thread.
class TrimQueue {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  bool Contains(std::uint32_t key) const {
    return key < position_.size() && position_[key] != kAbsent;
  }

  // The earliest entry; the queue must not be empty.
  std::uint32_t FrontKey() const { return heap_.front().key; }
  std::uint64_t FrontFrame() const { return heap_.front().frame; }

  // Queues a key that is not queued.
  void Push(std::uint32_t key, std::uint64_t frame) {
    assert(!Contains(key));
    if (key >= position_.size()) position_.resize(std::size_t{key} + 1, kAbsent);
    heap_.push_back({frame, key});
    Up(heap_.size() - 1);
  }

  // Moves the front entry to a frame no earlier than its own, so it can only sink.
  void RequeueFront(std::uint64_t frame) {
    assert(frame >= heap_.front().frame);
    heap_.front().frame = frame;
    Down(0);
  }

  // Takes a key out of the queue, from wherever it is; nothing when it is not queued.
  void Remove(std::uint32_t key) {
    if (!Contains(key)) return;
    const std::size_t position = position_[key];
    position_[key] = kAbsent;
    const Entry last = heap_.back();
    heap_.pop_back();
    if (position == heap_.size()) return;
    // The last entry fills the hole; it may belong above it or below it.
    Place(position, last);
    Up(position);
    Down(position_[last.key]);
  }

 private:
  static constexpr std::uint32_t kAbsent = std::numeric_limits<std::uint32_t>::max();

  struct Entry {
    std::uint64_t frame;
    std::uint32_t key;
  };

  void Up(std::size_t position) {
    const Entry entry = heap_[position];
    while (position > 0) {
      const std::size_t parent = (position - 1) / 2;
      if (heap_[parent].frame <= entry.frame) break;
      Place(position, heap_[parent]);
      position = parent;
    }
    Place(position, entry);
  }

  void Down(std::size_t position) {
    const Entry entry = heap_[position];
    const std::size_t size = heap_.size();
    for (std::size_t child = 2 * position + 1; child < size; child = 2 * position + 1) {
      if (child + 1 < size && heap_[child + 1].frame < heap_[child].frame) ++child;
      if (entry.frame <= heap_[child].frame) break;
      Place(position, heap_[child]);
      position = child;
    }
    Place(position, entry);
  }

  void Place(std::size_t position, Entry entry) {
    heap_[position] = entry;
    position_[entry.key] = static_cast<std::uint32_t>(position);
  }

  std::vector<Entry> heap_;
  std::vector<std::uint32_t> position_;  // by key: its index in heap_, or kAbsent
};

}  // namespace poolwatch::detail

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace poolwatch {

// A named moment: from it on, each pool also counts what is acquired and still held
// (BufferPool::AddMark), so that a page can show what was acquired after it and is still
// outstanding.
struct Mark {
  std::uint64_t id = 0;  // 1, 2, ... in the order they were made
  std::string name;
  std::chrono::system_clock::time_point time;
};

// The process's marks, shared by every loop's monitor (which hands new ones to its pools at the
// end of its next frame) and the pages. Bounded: a new mark beyond the capacity drops the
// oldest. Thread-safe; version() is one atomic load, for the tick threads.
class MarkBoard {
 public:
  static constexpr std::size_t kMaxNameLength = 64;

  explicit MarkBoard(std::size_t capacity = 8);

  // The name: 1 to kMaxNameLength printable ASCII characters. Returns what is wrong with it,
  // or an empty string.
  static std::string CheckName(std::string_view name);

  // Records a mark now; the name must pass CheckName() (std::invalid_argument otherwise).
  Mark Add(std::string name);
  std::vector<Mark> List() const;  // oldest first
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Mark> marks_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace poolwatch

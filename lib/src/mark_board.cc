#include "poolwatch/mark_board.h"

#include <algorithm>
#include <stdexcept>

namespace poolwatch {

MarkBoard::MarkBoard(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

std::string MarkBoard::CheckName(std::string_view name) {
  if (name.empty()) return "a mark needs a name of 1 to 64 characters";
  if (name.size() > kMaxNameLength) {
    return "a mark's name is at most 64 characters, got " + std::to_string(name.size());
  }
  for (const char c : name) {
    if (c < 0x20 || c > 0x7E) return "a mark's name is printable ASCII only";
  }
  return {};
}

Mark MarkBoard::Add(std::string name) {
  if (std::string error = CheckName(name); !error.empty()) throw std::invalid_argument(error);
  const std::lock_guard lock(mutex_);
  if (marks_.size() == capacity_) marks_.pop_front();
  marks_.push_back({next_id_++, std::move(name), std::chrono::system_clock::now()});
  version_.fetch_add(1, std::memory_order_release);
  return marks_.back();
}

std::vector<Mark> MarkBoard::List() const {
  const std::lock_guard lock(mutex_);
  return {marks_.begin(), marks_.end()};
}

}  // namespace poolwatch

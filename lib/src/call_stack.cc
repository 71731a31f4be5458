#include "poolwatch/call_stack.h"

#include <algorithm>
#include <boost/stacktrace/frame.hpp>
#include <boost/stacktrace/safe_dump_to.hpp>

namespace poolwatch {

CallStack CaptureStack(std::size_t skip) {
  CallStack stack;
  // safe_dump_to's own frames are not counted; +1 leaves out this function's.
  const std::size_t depth =
      boost::stacktrace::safe_dump_to(skip + 1, stack.frames.data(), sizeof(stack.frames));
  stack.depth = static_cast<std::uint32_t>(std::min(depth, CallStack::kMaxFrames));
  // safe_dump_to ends the list with a null address when there is room for it.
  while (stack.depth > 0 && stack.frames[stack.depth - 1] == 0) --stack.depth;
  return stack;
}

Symbolizer& Symbolizer::Shared() {
  static Symbolizer symbolizer;
  return symbolizer;
}

SourceLocation Symbolizer::Resolve(std::uintptr_t return_address) {
  {
    const std::lock_guard lock(mutex_);
    if (auto it = cache_.find(return_address); it != cache_.end()) return it->second;
  }
  // A return address points after its call: the call itself is one byte before, which keeps
  // the line right when the call is the last instruction of a line or of an inlined body.
  using Address = boost::stacktrace::frame::native_frame_ptr_t;
  // NOLINTNEXTLINE(performance-no-int-to-ptr): an address the unwinder gave, only looked up
  const boost::stacktrace::frame frame(reinterpret_cast<Address>(return_address - 1));
  SourceLocation location{frame.name(), frame.source_file(),
                          static_cast<std::uint32_t>(frame.source_line())};
  const std::lock_guard lock(mutex_);
  return cache_.try_emplace(return_address, std::move(location)).first->second;
}

std::size_t Symbolizer::cached() const {
  const std::lock_guard lock(mutex_);
  return cache_.size();
}

}  // namespace poolwatch

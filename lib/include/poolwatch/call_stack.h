#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>

namespace poolwatch {

// The return addresses of a call stack, innermost first, at most kMaxFrames deep.
struct CallStack {
  static constexpr std::size_t kMaxFrames = 16;
  std::array<std::uintptr_t, kMaxFrames> frames{};
  std::uint32_t depth = 0;

  std::span<const std::uintptr_t> Frames() const { return {frames.data(), depth}; }
  friend bool operator==(const CallStack& a, const CallStack& b) {
    return a.depth == b.depth && a.frames == b.frames;
  }
};

// Captures the calling thread's stack, leaving out the `skip` innermost frames of the caller
// (0: the caller's own frame comes first). Walks the stack with the toolchain's unwinder (the
// one C++ exceptions use, through Boost.Stacktrace); allocates nothing and takes no lock, so it
// is safe on the tick thread. About 200 ns a frame (docs/performance.md).
[[gnu::noinline]] CallStack CaptureStack(std::size_t skip = 0);

// Where one return address is: its function (demangled) and, where the binary has debug
// information, its source file and line. The function is empty when the address is in no
// known symbol.
struct SourceLocation {
  std::string function;
  std::string file;
  std::uint32_t line = 0;
};

// Turns return addresses into source locations, on demand and never on a tick thread: the
// first request loads the program's symbol and debug information (a few hundred milliseconds
// with full debug information), later ones are answered from a cache by address. Function
// names come from the symbol table, so they are there in a release build that is not stripped
// of it; file and line come from DWARF (Boost.Stacktrace's libbacktrace backend).
// Thread-safe.
class Symbolizer {
 public:
  // The process's one symbolizer: its cache serves every page.
  static Symbolizer& Shared();

  SourceLocation Resolve(std::uintptr_t return_address);
  std::size_t cached() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uintptr_t, SourceLocation> cache_;
};

}  // namespace poolwatch

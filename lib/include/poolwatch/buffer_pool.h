#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "poolwatch/buffer_format.h"
#include "poolwatch/call_stack.h"
#include "poolwatch/detail/trim_queue.h"

namespace poolwatch {

// Identifies one buffer handed out by a BufferPool. The generation makes a stale id (its buffer
// already returned and handed out again) harmless: Release() refuses it. A held buffer's id is
// unique to that hand-out; a frame-scoped buffer's id names its memory, and comes back when a
// later frame's Alloc() hands out the same memory (Release() refuses both).
struct BufferId {
  static constexpr std::uint32_t kInvalidSlot = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t slot = kInvalidSlot;
  std::uint32_t generation = 0;

  bool valid() const { return slot != kInvalidSlot; }
  friend bool operator==(const BufferId&, const BufferId&) = default;
};

// A non-owning view of pool memory, valid until the buffer returns to the pool (frame-scoped
// buffers at EndFrame(), held buffers at Release()). Empty (false) when the pool refused.
class Buffer {
 public:
  Buffer() = default;
  Buffer(std::byte* data, std::size_t size_bytes, BufferFormat format, std::uint32_t count,
         BufferId id)
      : data_(data), size_bytes_(size_bytes), format_(format), count_(count), id_(id) {}

  std::byte* data() const { return data_; }
  std::size_t size_bytes() const { return size_bytes_; }
  BufferFormat format() const { return format_; }
  std::uint32_t count() const { return count_; }
  BufferId id() const { return id_; }
  explicit operator bool() const { return data_ != nullptr; }

  // The memory as elements of T. Pool memory is aligned for any scalar or SIMD type; T must be
  // an implicit-lifetime type (plain numbers or aggregates of them).
  template <typename T>
  std::span<T> As() const {
    return {reinterpret_cast<T*>(data_), size_bytes_ / sizeof(T)};
  }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_bytes_ = 0;
  BufferFormat format_ = BufferFormat::kU8;
  std::uint32_t count_ = 0;
  BufferId id_;
};

struct PoolOptions {
  // Upper bound on pooled bytes (free + in use); 0 means no cap. An allocation that would need
  // new memory beyond it is refused and counted in allocation_failures_total. The buffers'
  // bytes only: each held buffer also takes 140-210 bytes of allocator rounding and bookkeeping
  // (docs/performance.md), which matters for buffers of a few bytes.
  std::uint64_t max_bytes = 0;
  // Free buffers of a key not used for this many frames are freed at EndFrame(); a key left
  // with no buffers at all disappears. 0 disables trimming.
  std::uint32_t trim_idle_frames = 0;
  // Call stacks of held buffers: 0 captures none, 1 the stack of every Acquire(), N the stack
  // of one Acquire() in N on average (at random gaps, so that a pattern of calls cannot hide
  // from it). Alloc() never captures. See BufferPool::OutstandingByStack().
  std::uint32_t stack_sampling = 0;

  friend bool operator==(const PoolOptions&, const PoolOptions&) = default;
};

// Allocations and releases of one completed frame.
struct PoolFrameStats {
  std::uint64_t frame = 0;  // index of the sealed frame, counting from 0
  std::uint64_t allocations = 0;
  std::uint64_t releases = 0;
  // The most bytes in use at any moment of the frame: held buffers and the frame's
  // frame-scoped ones, before they returned. Exact, whatever the order of the frame's calls.
  std::uint64_t peak_in_use_bytes = 0;

  std::int64_t Imbalance() const {
    return static_cast<std::int64_t>(allocations) - static_cast<std::int64_t>(releases);
  }
  friend bool operator==(const PoolFrameStats&, const PoolFrameStats&) = default;
};

// The pool's numbers as of the end of the last completed frame.
struct PoolStats {
  PoolFrameStats last_frame;
  std::uint64_t frames = 0;  // frames sealed so far
  std::uint64_t allocations_total = 0;
  std::uint64_t releases_total = 0;
  std::uint64_t misses_total = 0;
  std::uint64_t allocation_failures_total = 0;
  std::uint64_t trimmed_bytes_total = 0;
  std::uint64_t outstanding_buffers = 0;  // handed out and not returned
  std::uint64_t pooled_bytes = 0;         // owned by the pool: free + in use
  std::uint64_t in_use_bytes = 0;         // handed out and not returned
  std::uint64_t keys = 0;                 // distinct (format, count) keys
  friend bool operator==(const PoolStats&, const PoolStats&) = default;
};

// One buffer that is handed out and not yet returned, for leak attribution.
struct OutstandingBuffer {
  const char* site = nullptr;  // the static tag given at allocation, or nullptr
  BufferFormat format = BufferFormat::kU8;
  std::uint64_t bytes = 0;
  std::uint64_t frame = 0;  // the frame it was allocated in
};

// Held buffers of one allocation site and format, for leak attribution.
struct OutstandingGroup {
  const char* site = nullptr;  // nullptr for untagged allocations
  BufferFormat format = BufferFormat::kU8;
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  std::uint64_t oldest_frame = 0;  // allocation frame of the oldest buffer in the group
  std::uint64_t newest_frame = 0;  // allocation frame of the newest buffer in the group
};

// A number of held buffers and their bytes.
struct HeldTally {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;

  void Add(std::uint64_t buffer_bytes) {
    ++count;
    bytes += buffer_bytes;
  }
  void Remove(std::uint64_t buffer_bytes) {
    --count;
    bytes -= buffer_bytes;
  }
  friend bool operator==(const HeldTally&, const HeldTally&) = default;
};

// Held buffers whose Acquire() had one call stack (sampled ones only).
struct HeldStack {
  CallStack stack;
  const char* site = nullptr;  // the site of the stack's first sampled Acquire()
  HeldTally held;
  std::uint64_t oldest_frame = 0;  // allocation frame of the oldest of them
};

// Sampled held buffers by call stack: the `top` stacks by bytes (ties: more buffers, then the
// older), and what the others hold. Buffers whose Acquire() was not sampled are `unsampled`.
struct HeldStacks {
  std::vector<HeldStack> top;
  std::uint64_t other_stacks = 0;
  HeldTally other;
  HeldTally unsampled;
};

// Held buffers by age, as of the frame now being filled. Bucket i holds the buffers younger
// than bound i (and at least bound i-1); the last holds the rest. See kHeldAgeBounds.
inline constexpr std::size_t kHeldAgeBuckets = 5;
using HeldAges = std::array<HeldTally, kHeldAgeBuckets>;

// What was acquired since a mark and is still held: the in-process counterpart of a heap
// profile diff against a base (heaptrack --diff, jeprof --base).
struct HeldSince {
  std::uint64_t mark = 0;   // the mark's id
  std::uint64_t frame = 0;  // the first frame it counts
  HeldTally held;
  std::vector<OutstandingGroup> sites;  // frames unknown: oldest_frame and newest_frame are 0
  HeldStacks stacks;                    // oldest_frame is 0
};

// Built with POOLWATCH_POOL_PLAIN defined, BufferPool has its instrumentation compiled out
// (counters, byte sums other than the cap's, attribution): the baseline that the benchmarks
// compare it with. The two builds live in different inline namespaces, so one program can hold
// both. The library is always built instrumented.
#ifdef POOLWATCH_POOL_PLAIN
#define POOLWATCH_POOL_NAMESPACE plain
inline constexpr bool kPoolInstrumented = false;
#else
#define POOLWATCH_POOL_NAMESPACE instrumented
inline constexpr bool kPoolInstrumented = true;
#endif

inline namespace POOLWATCH_POOL_NAMESPACE {

// A pool of reusable buffers keyed by (format, element count), instrumented for leak and bloat
// detection.
//
// Frame-scoped buffers come from Alloc() and all return at EndFrame(), which ends the frame:
// it returns them, trims idle keys, and seals the frame's counts into Stats(). Held buffers
// come from Acquire() (or a HeldBuffer, which releases on destruction) and live across frames
// until Release(); one that is never released is a leak, and shows as allocations exceeding
// releases and outstanding growth. In a program with a HealthMonitor, the monitor's EndFrame()
// ends the frame of all its pools; do not call the pool's directly then.
// Pooled and in-use bytes are running sums, so Stats() is O(1) whatever the pool's size.
//
// Not thread-safe: one thread (the tick thread) owns the pool. Other threads read copies of
// Stats() published by the HealthMonitor.
class BufferPool {
 public:
  // Pool memory alignment, enough for any SIMD type.
  static constexpr std::size_t kAlignment = 64;
  // What one pool can own, whatever max_bytes says: more buffers or bytes are refused (and
  // counted in allocation_failures_total), which keeps the frame's counting exact.
  static constexpr std::uint64_t kMaxBuffers = (std::uint64_t{1} << 24) - 1;
  static constexpr std::uint64_t kMaxPooledBytes = std::uint64_t{1} << 40;  // 1 TiB

  explicit BufferPool(PoolOptions options = {});
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A frame-scoped buffer of `count` elements, returned to the pool by the next EndFrame().
  // `site` must be a string with static storage (a literal): it is kept, not copied, and used
  // for attribution of held buffers. Returns an empty Buffer when count is 0 or the byte cap
  // refuses new memory. Always inlined (as allocators' fast paths are, so that the compiler's
  // choice per call site does not decide the cost): a key seen before with a buffer to spare
  // costs a probe of the key table and a cursor step, like a bump allocator's, plus one add
  // when instrumented (which counts the allocation and its bytes at once); the rest is
  // AllocSlow().
  [[gnu::always_inline]] Buffer Alloc(BufferFormat format, std::uint32_t count,
                                      [[maybe_unused]] const char* site = nullptr) {
    const std::uint32_t index = FindKey(PackKey(format, count));
    if (index != kNone) [[likely]] {
      Key& key = keys_[index];
      // On the key's first use this frame, all its buffers are back: the cursor restarts.
      const std::uint64_t frame = frame_;
      const bool first_use = key.last_used_frame != frame;
      const std::uint32_t cursor = first_use ? 0 : key.cursor;
      key.last_used_frame = frame;
      if (cursor < key.size) [[likely]] {
        key.cursor = cursor + 1;
        if constexpr (kPoolInstrumented) frame_scoped_ += key.scoped_step;
        const StackEntry& entry = first_use ? key.bottom : key.stack[cursor];
        return {entry.memory, key.buffer_bytes(), format, count,
                BufferId{entry.slot, entry.generation}};
      }
      key.cursor = cursor;
    }
    return AllocSlow(format, count);
  }

  // A buffer held across frames until Release().
  Buffer Acquire(BufferFormat format, std::uint32_t count, const char* site = nullptr);

  // Returns a held buffer. False (and nothing changes) for an id that is not a currently held
  // buffer: unknown, stale, frame-scoped, or released already.
  bool Release(BufferId id);

  // Ends the frame: returns every frame-scoped buffer, trims idle keys, seals the frame's stats.
  void EndFrame();

  // Applies new options; a lower cap frees nothing but refuses new memory until under it.
  // A new stack_sampling starts a new gap.
  void SetOptions(const PoolOptions& options) {
    const bool resample = options.stack_sampling != options_.stack_sampling;
    options_ = options;
    if (resample) sample_countdown_ = NextSampleGap();
    next_trim_frame_ = TrimDueFrame();
  }
  const PoolOptions& options() const { return options_; }

  // Stats as of the last EndFrame(); all zero before the first.
  const PoolStats& Stats() const { return sealed_; }

  // The frame now being filled (the next to be sealed).
  std::uint64_t CurrentFrame() const { return frame_; }

  // Calls fn(const OutstandingBuffer&) for every held buffer, which after EndFrame() are all
  // the buffers outstanding. Site and frame are recorded for held buffers only: frame-scoped
  // ones cannot outlive their frame. O(the most buffers held at once): for diagnosis on request.
  template <typename Fn>
  void ForEachOutstanding(Fn&& fn) const {
    for (const HeldRecord& record : held_) {
      if (record.slot != kNone) fn(Describe(record));
    }
  }

  // Held buffers grouped by (site, format), kept up to date on every Acquire and Release, so
  // this costs O(groups), never O(buffers). Groups are returned in first-seen order. The same
  // site text at two addresses (two translation units) makes two groups; merge by text if needed.
  void OutstandingBySite(std::vector<OutstandingGroup>& out) const;

  // Sampled held buffers grouped by the call stack of their Acquire() (PoolOptions::
  // stack_sampling), the `top` stacks by bytes, the rest summed. Kept up to date on every
  // Acquire and Release like the sites; this costs O(stacks). A pool keeps at most kMaxStacks
  // distinct stacks; while that many hold buffers, a new one counts as unsampled.
  static constexpr std::size_t kMaxStacks = 1024;
  void OutstandingByStack(std::size_t top, HeldStacks& out) const;

  // Held buffers by age (HeldAges), kept up to date as buffers come and go and as frames pass
  // (a buffer moves up a bucket once per bound): O(1). The bounds are in frames; the monitor
  // sets them from its period. The default is 1 s, 1 min, 10 min and 1 h at 60 Hz.
  const HeldAges& Ages() const { return ages_; }
  void SetAgeBounds(const std::array<std::uint64_t, kHeldAgeBuckets - 1>& frames);

  // Marks: from AddMark() on, held buffers acquired since are also counted for that mark, by
  // site and by stack, until DropMark(). Each mark costs an Acquire() and a Release() a few
  // adds; at most kMaxMarks (the oldest is dropped to make room).
  static constexpr std::size_t kMaxMarks = 16;
  void AddMark(std::uint64_t id);
  void DropMark(std::uint64_t id);
  void HeldSinceMarks(std::size_t top, std::vector<HeldSince>& out) const;

  // Changes each time a held buffer comes or goes or a mark is added or dropped: what the
  // attribution shows cannot have changed while it stays the same.
  std::uint64_t HeldVersion() const { return held_version_; }

  // Recounts pooled and in-use bytes by walking every buffer. O(buffers): a check of the
  // running sums for tests and debugging, never used on the tick path.
  struct Audit {
    std::uint64_t pooled_bytes = 0;
    std::uint64_t in_use_bytes = 0;
    std::uint64_t buffers = 0;
  };
  Audit AuditBytes() const;

 private:
  // A slot is one buffer's memory. Pooled: in its key's stack (free, or handed out by Alloc()
  // this frame; the key's cursor tells which). Held: handed out by Acquire().
  enum class SlotState : std::uint8_t { kEmpty, kPooled, kHeld };
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint64_t kNoKey = ~std::uint64_t{0};  // an empty entry of the key table
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};  // a frame that never comes

  // A held buffer's neighbours in one list of held buffers (by their records' positions in
  // held_), in allocation order (oldest first).
  struct Links {
    std::uint32_t prev = kNone;
    std::uint32_t next = kNone;
  };
  // The ends of such a list.
  struct Chain {
    std::uint32_t oldest = kNone;
    std::uint32_t newest = kNone;
  };

  // 24 bytes a buffer, pooled or held: what only a held buffer needs is in its HeldRecord.
  struct Slot {
    std::byte* memory = nullptr;
    std::uint32_t key = kNone;
    std::uint32_t generation = 0;
    std::uint32_t held = kNone;  // its record's position in held_ while held
    SlotState state = SlotState::kEmpty;
    std::uint8_t offset = 0;  // of memory in its allocation, which begins before it to align it
  };
  static_assert(sizeof(Slot) == 24);

  // A held buffer: its slot, where it came from, and its place in the lists of its group, its
  // stack and all held buffers. A record stays where it is while its buffer is held, so the
  // lists name records; a released buffer's record (slot kNone) is reused by the next Acquire().
  struct HeldRecord {
    std::uint32_t slot = kNone;
    std::uint32_t group = kNone;
    std::uint32_t stack = kNone;  // kNone when not sampled
    Links group_links = {};
    Links stack_links = {};
    Links age_links = {};
    std::uint64_t frame = 0;  // frame of the Acquire() that handed it out
    const char* site = nullptr;
  };
  static_assert(sizeof(HeldRecord) == 56);

  struct Group {
    const char* site = nullptr;
    BufferFormat format = BufferFormat::kU8;
    HeldTally held;
    Chain chain;
  };

  struct StackRecord {
    CallStack stack;
    const char* site = nullptr;
    HeldTally held;
    Chain chain;
  };
  struct CallStackHash {
    std::size_t operator()(const CallStack& stack) const {
      std::uint64_t hash = stack.depth;
      for (std::uintptr_t frame : stack.Frames()) hash = (hash ^ frame) * 0x100000001B3ULL;
      return hash;
    }
  };

  struct Mark {
    std::uint64_t id = 0;
    std::uint64_t frame = 0;
    HeldTally held;
    std::vector<HeldTally> groups;  // by group index
    std::vector<HeldTally> stacks;  // by stack index
    HeldTally unsampled;
  };

  struct GroupKey {
    const char* site;
    BufferFormat format;
    friend bool operator==(const GroupKey&, const GroupKey&) = default;
  };
  struct GroupKeyHash {
    std::size_t operator()(const GroupKey& key) const {
      return std::hash<const void*>()(key.site) ^ static_cast<std::size_t>(key.format);
    }
  };

  // What Alloc() hands out, copied from the slot so that the frame-scoped path never reads it.
  struct StackEntry {
    std::byte* memory;
    std::uint32_t slot;
    std::uint32_t generation;
  };

  // What the frame-scoped path reads of a key, one cache line (KeyInfo holds the rest). The
  // stack's bottom entry is kept here too, so the frame's first Alloc() of a key waits on two
  // loads, its table entry and this line, not three (the stack's entry after them): a frame of
  // many keys with a buffer each is mostly such first uses.
  struct alignas(64) Key {
    std::uint32_t cursor = 0;  // stack[0, cursor) went out through Alloc() in last_used_frame
    // The key's pooled buffers, its stack: stack[0, size), in entries_ (KeyInfo says where;
    // PointStacks() renews the pointer when entries_ moves). stack[0, cursor) are
    // frame-scoped, the rest free. A frame's first Alloc() of the key
    // resets the cursor, as an arena resets, so EndFrame() visits no key; Acquire() takes a
    // free one from the top and Release() puts it back there.
    std::uint32_t size = 0;
    StackEntry* stack = nullptr;
    // The buffer's bytes from bit kScopedBytesShift up, and 1 below: what an Alloc() of the
    // key adds to frame_scoped_, ready to add (no constant to load on the fast path).
    std::uint64_t scoped_step = 0;
    std::uint64_t last_used_frame = 0;
    // stack[0] while size != 0, copied here by PushEntry(), the only writer of a stack: the
    // frame's first Alloc() of the key reads its buffer from the key's own line.
    StackEntry bottom = {};

    std::uint64_t buffer_bytes() const { return scoped_step >> kScopedBytesShift; }
  };
  static_assert(sizeof(Key) == 64);

  // The rest of a key, in key_info_ at the key's index.
  struct KeyInfo {
    std::uint64_t packed = kNoKey;
    std::uint32_t held = 0;  // held buffers of this key outstanding
    // The key's stack is entries_[first, first + size), with room up to first + capacity.
    std::uint32_t first = 0;
    std::uint32_t capacity = 0;
    BufferFormat format = BufferFormat::kU8;
    bool active = false;
  };

  // The key table: open addressing with linear probing, at most half full, so a probe for a
  // known key reads one or two neighbouring entries. Deletion shifts the run back (no
  // tombstones), so lookups never slow down as keys come and go.
  struct TableEntry {
    std::uint64_t packed = kNoKey;
    std::uint32_t index = kNone;
  };

  static std::uint64_t PackKey(BufferFormat format, std::uint32_t count) {
    return (static_cast<std::uint64_t>(format) << 32) | count;
  }
  std::size_t Home(std::uint64_t packed) const {
    return static_cast<std::size_t>((packed * 0x9E3779B97F4A7C15ULL) >> table_shift_);
  }
  // The table has 2^(64 - table_shift_) entries: the mask comes from the shift Home() loads.
  std::size_t TableMask() const { return ~std::size_t{0} >> table_shift_; }
  [[gnu::always_inline]] std::uint32_t FindKey(std::uint64_t packed) const {
    std::size_t i = Home(packed);
    // Most keys are at home (the table is at most half full): that probe is the straight path.
    if (table_[i].packed == packed) [[likely]]
      return KnownIndex(table_[i]);
    const std::size_t mask = TableMask();
    while (table_[i].packed != kNoKey) {
      i = (i + 1) & mask;
      if (table_[i].packed == packed) return KnownIndex(table_[i]);
    }
    return kNone;
  }
  static std::uint32_t KnownIndex(const TableEntry& entry) {
    if (entry.index == kNone) __builtin_unreachable();  // a key's entry has its index
    return entry.index;
  }

  // The frame from which the trim queue's head has been idle long enough for Trim() to look
  // at it; never when the queue is empty or trimming is off.
  std::uint64_t TrimDueFrame() const {
    if (options_.trim_idle_frames == 0 || trim_queue_.empty()) return kNever;
    return trim_queue_.FrontFrame() + options_.trim_idle_frames;
  }

  Buffer AllocSlow(BufferFormat format, std::uint32_t count);
  [[gnu::noinline]] void EndBusyFrame();  // kept out of EndFrame()'s fast path
  void SealScoped();
  void SealChanged();
  void NextFrame();
  std::uint32_t FindOrAddKey(BufferFormat format, std::uint32_t count);
  void TableInsert(std::uint64_t packed, std::uint32_t index);  // counted in active_keys_
  void TablePlace(const TableEntry& entry);
  void TableErase(std::uint64_t packed);
  std::uint32_t NewBuffer(std::uint32_t key_index);
  void FreeSlotMemory(std::uint32_t slot_index);
  std::uint32_t ResetIfStale(std::uint32_t key_index);
  void PushEntry(std::uint32_t key_index, const StackEntry& entry);
  void GrowStack(std::uint32_t key_index);
  void ResizeEntries(std::size_t size);
  void CompactEntries();
  void PointStacks();
  void Trim();
  void DropKey(std::uint32_t key_index);
  std::uint64_t HeldBytes(std::uint32_t held) const {
    return keys_[slots_[held_[held].slot].key].buffer_bytes();
  }
  void Append(Chain& chain, Links HeldRecord::*links, std::uint32_t held);
  void Unlink(Chain& chain, Links HeldRecord::*links, std::uint32_t held);
  void AttributeHeld(std::uint32_t held);
  void UnattributeHeld(std::uint32_t held);
  std::uint32_t InternStack(const CallStack& stack, const char* site);
  std::uint32_t NextSampleGap();
  void AgeHeld();
  void SummarizeStacks(std::size_t top, const std::vector<HeldTally>* by_stack,
                       HeldStacks& out) const;
  OutstandingBuffer Describe(const HeldRecord& record) const;

  PoolOptions options_;
  std::vector<TableEntry> table_;
  int table_shift_ = 0;  // 64 - log2(table_.size())
  // The frame now being filled. Alloc() reads it with the table and the keys; it is kept apart
  // from the counters so that no wide load at the seal spans a counter just stored.
  std::uint64_t frame_ = 0;
  // TrimDueFrame(), kept as the queue and the options change: EndFrame() calls Trim() only from
  // this frame on, so a pool with trimming on pays for it only when a key may be idle.
  std::uint64_t next_trim_frame_ = kNever;
  std::vector<Key> keys_;          // by key index
  std::vector<KeyInfo> key_info_;  // by key index, beside keys_
  // Every key's stack, side by side (not a heap block each), so that a frame that visits many
  // keys reads their entries from few cache lines. A stack that outgrows its room moves to the
  // end; the room it leaves is waste, compacted away once it is half of the array.
  std::vector<StackEntry> entries_;
  std::size_t entries_waste_ = 0;
  std::vector<std::uint32_t> empty_keys_;  // inactive entries of keys_, for reuse
  std::uint64_t active_keys_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> empty_slots_;  // slots without memory, for reuse
  // Every active key, at its last use when it was queued, which later uses do not update
  // (Trim() requeues a key it finds used since).
  detail::TrimQueue trim_queue_;

  std::vector<HeldRecord> held_;          // buffers handed out by Acquire(), and free records
  std::vector<std::uint32_t> free_held_;  // records of released buffers, for reuse
  std::vector<Group> groups_;
  std::unordered_map<GroupKey, std::uint32_t, GroupKeyHash> group_index_;
  std::vector<StackRecord> stacks_;
  std::unordered_map<CallStack, std::uint32_t, CallStackHash> stack_index_;
  std::uint32_t sample_countdown_ = 0;  // Acquire() calls until the next sampled one
  std::uint64_t sample_random_ = 0x9E3779B97F4A7C15ULL;  // xorshift state for the gaps
  // Ages: all held buffers in allocation order; edge i is the oldest one younger than bound i
  // (kNone when there is none), so a frame moves each edge past the buffers that crossed it.
  Chain age_chain_;
  std::array<std::uint64_t, kHeldAgeBuckets - 1> age_bounds_ = {60, 3600, 36000, 216000};
  std::array<std::uint32_t, kHeldAgeBuckets - 1> age_edges_ = {kNone, kNone, kNone, kNone};
  std::uint64_t next_aging_frame_ = kNever;  // no edge crosses before this frame
  HeldAges ages_{};
  std::vector<Mark> marks_;
  std::uint64_t held_version_ = 0;

  // This frame's frame-scoped allocations, counted as they happen with one add each (of the
  // key's scoped_step): the count in the bits below kScopedBytesShift, their bytes above. Both
  // fit: a frame's frame-scoped buffers are distinct buffers of the pool, which holds at most
  // kMaxBuffers of them and fewer than kMaxPooledBytes. Every one is also a release at
  // EndFrame().
  static constexpr int kScopedBytesShift = 24;
  static constexpr std::uint64_t kScopedCountMask = (std::uint64_t{1} << kScopedBytesShift) - 1;
  static_assert(kMaxBuffers <= kScopedCountMask);
  static_assert(kMaxPooledBytes <= std::uint64_t{1} << (64 - kScopedBytesShift));
  std::uint64_t frame_scoped_ = 0;
  std::uint64_t frame_acquires_ = 0;
  std::uint64_t frame_releases_ = 0;
  std::uint64_t held_bytes_ = 0;  // bytes of held buffers, the only ones in use between frames
  // Running between frames; sealed into sealed_ by EndFrame().
  std::uint64_t pooled_bytes_ = 0;  // also what the byte cap compares, so kept when plain
  std::uint64_t misses_ = 0;
  std::uint64_t allocation_failures_ = 0;
  std::uint64_t trimmed_bytes_ = 0;
  // Whether anything but frame-scoped traffic happened this frame: held buffers, new memory,
  // refusals, trimming, keys made or dropped. A frame of frame-scoped allocations only seals
  // its counts and nothing else.
  bool changed_ = false;
  std::uint64_t frame_peak_ = 0;  // in-use bytes just before this frame's releases, the most
  PoolStats sealed_;              // what Stats() returns
};

// Owns one held buffer of a pool and releases it when destroyed, like a std::unique_ptr: the
// RAII form of Acquire()/Release(). Move-only. Empty (false) when the pool refused the buffer.
// The pool must outlive it; it is used on the pool's thread only.
class HeldBuffer {
 public:
  HeldBuffer() = default;
  HeldBuffer(BufferPool& pool, BufferFormat format, std::uint32_t count, const char* site = nullptr)
      : pool_(&pool), buffer_(pool.Acquire(format, count, site)) {}
  ~HeldBuffer() { Reset(); }
  HeldBuffer(HeldBuffer&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)), buffer_(std::exchange(other.buffer_, {})) {}
  HeldBuffer& operator=(HeldBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      pool_ = std::exchange(other.pool_, nullptr);
      buffer_ = std::exchange(other.buffer_, {});
    }
    return *this;
  }
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;

  const Buffer& get() const { return buffer_; }
  const Buffer* operator->() const { return &buffer_; }
  explicit operator bool() const { return static_cast<bool>(buffer_); }

  // Returns the buffer to the pool now; the handle is empty afterwards.
  void Reset() {
    if (pool_ != nullptr && buffer_) pool_->Release(buffer_.id());
    pool_ = nullptr;
    buffer_ = {};
  }

 private:
  BufferPool* pool_ = nullptr;
  Buffer buffer_;
};

}  // namespace POOLWATCH_POOL_NAMESPACE

}  // namespace poolwatch

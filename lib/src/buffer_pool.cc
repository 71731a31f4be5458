#include "poolwatch/buffer_pool.h"

#include <algorithm>
#include <new>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace poolwatch {
inline namespace POOLWATCH_POOL_NAMESPACE {

namespace {
constexpr std::size_t kInitialTableSize = 16;
constexpr int kInitialTableShift = 64 - 4;
static_assert(std::size_t{1} << (64 - kInitialTableShift) == kInitialTableSize);

// A buffer's memory is an allocation of its bytes and the slack to align them to kAlignment
// (operator new aligns to 16), not an aligned operator new: glibc makes that from a larger
// block, and the pieces it frees before and after the buffer go to bins that only allocations
// of their own small sizes reuse: 64-100 bytes more than this a buffer of a few hundred bytes
// (docs/performance.md).
constexpr std::size_t kSlack = BufferPool::kAlignment - __STDCPP_DEFAULT_NEW_ALIGNMENT__;
static_assert(BufferPool::kAlignment % __STDCPP_DEFAULT_NEW_ALIGNMENT__ == 0);
static_assert(kSlack <= std::numeric_limits<std::uint8_t>::max());

struct AlignedMemory {
  std::byte* memory;
  std::uint8_t offset;  // of memory in its allocation
};

// kAlignment-aligned room for `bytes`. Under AddressSanitizer the slack is poisoned, so a write
// past the buffer is reported as it was with a block of the buffer's size.
AlignedMemory AllocateAligned(std::uint64_t bytes) {
  auto* block = static_cast<std::byte*>(::operator new(bytes + kSlack));
  const auto address = reinterpret_cast<std::uintptr_t>(block);
  const std::size_t offset = -address & (BufferPool::kAlignment - 1);
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(block, offset);
  ASAN_POISON_MEMORY_REGION(block + offset + bytes, kSlack - offset);
#endif
  return {block + offset, static_cast<std::uint8_t>(offset)};
}

void FreeAligned(std::byte* memory, std::uint8_t offset) { ::operator delete(memory - offset); }
}  // namespace

BufferPool::BufferPool(PoolOptions options)
    : options_(options), table_(kInitialTableSize), table_shift_(kInitialTableShift) {}

BufferPool::~BufferPool() {
  for (Slot& slot : slots_) {
    if (slot.memory != nullptr) FreeAligned(slot.memory, slot.offset);
  }
}

// Alloc() when the key is new or all its buffers are out: new memory, within the byte cap.
Buffer BufferPool::AllocSlow(BufferFormat format, std::uint32_t count) {
  if (count == 0) return {};
  const std::uint32_t key_index = ResetIfStale(FindOrAddKey(format, count));
  const std::uint32_t slot_index = NewBuffer(key_index);
  if (slot_index == kNone) return {};
  const Slot& slot = slots_[slot_index];
  PushEntry(key_index, {slot.memory, slot_index, slot.generation});
  Key& key = keys_[key_index];
  ++key.cursor;
  if constexpr (kPoolInstrumented) frame_scoped_ += key.scoped_step;
  return {slot.memory, key.buffer_bytes(), format, count, BufferId{slot_index, slot.generation}};
}

// Marks the key used this frame; on its first use in the frame, its cursor goes back to 0 (the
// frame-scoped buffers it handed out before have all returned).
std::uint32_t BufferPool::ResetIfStale(std::uint32_t key_index) {
  Key& key = keys_[key_index];
  if (key.last_used_frame != frame_) {
    key.last_used_frame = frame_;
    key.cursor = 0;
  }
  return key_index;
}

void BufferPool::PushEntry(std::uint32_t key_index, const StackEntry& entry) {
  if (keys_[key_index].size == key_info_[key_index].capacity) GrowStack(key_index);
  Key& key = keys_[key_index];
  if (key.size == 0) key.bottom = entry;
  key.stack[key.size++] = entry;
}

// Twice the room for a full stack: in place when it is the last in entries_, else at the end,
// its old room left as waste.
void BufferPool::GrowStack(std::uint32_t key_index) {
  KeyInfo& info = key_info_[key_index];
  const std::uint32_t capacity = std::max<std::uint32_t>(1, 2 * info.capacity);
  if (info.capacity != 0 && info.first + info.capacity == entries_.size()) {
    ResizeEntries(info.first + capacity);
  } else {
    if (entries_waste_ > entries_.size() / 2) CompactEntries();
    const std::size_t first = entries_.size();
    ResizeEntries(first + capacity);
    std::copy_n(entries_.data() + info.first, keys_[key_index].size, entries_.data() + first);
    entries_waste_ += info.capacity;
    info.first = static_cast<std::uint32_t>(first);
  }
  info.capacity = capacity;
  keys_[key_index].stack = entries_.data() + info.first;
}

// Resizes entries_, and points the keys' stacks into it again if it moved: a resize moves the
// array exactly when it grows the capacity. (Comparing data() before and after would read a
// pointer to the freed array.)
void BufferPool::ResizeEntries(std::size_t size) {
  const std::size_t capacity = entries_.capacity();
  entries_.resize(size);
  if (entries_.capacity() != capacity) PointStacks();
}

// Moves every active key's stack to the front of entries_, in key order, leaving no waste.
// O(entries); GrowStack() calls it once the waste is half the array, so it costs O(1) a growth.
void BufferPool::CompactEntries() {
  std::vector<StackEntry> compact;
  compact.reserve(entries_.size() - entries_waste_);
  for (KeyInfo& info : key_info_) {
    if (info.capacity == 0) continue;
    const std::size_t first = compact.size();
    const StackEntry* stack = entries_.data() + info.first;
    compact.insert(compact.end(), stack, stack + info.capacity);
    info.first = static_cast<std::uint32_t>(first);
  }
  entries_.swap(compact);
  entries_waste_ = 0;
  PointStacks();
}

// Each key's stack pointer, after entries_ moved.
void BufferPool::PointStacks() {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    keys_[i].stack = key_info_[i].capacity == 0 ? nullptr : entries_.data() + key_info_[i].first;
  }
}

Buffer BufferPool::Acquire(BufferFormat format, std::uint32_t count, const char* site) {
  if (count == 0) return {};
  const std::uint32_t key_index = ResetIfStale(FindOrAddKey(format, count));
  std::uint32_t slot_index = kNone;
  if (Key& key = keys_[key_index]; key.size > key.cursor) {
    --key.size;
    slot_index = key.stack[key.size].slot;
  } else {
    slot_index = NewBuffer(key_index);
    if (slot_index == kNone) return {};
  }

  Key& key = keys_[key_index];
  Slot& slot = slots_[slot_index];
  slot.state = SlotState::kHeld;
  ++slot.generation;  // every id handed out for this slot before is stale now
  ++key_info_[key_index].held;
  if (free_held_.empty()) {
    slot.held = static_cast<std::uint32_t>(held_.size());
    held_.emplace_back();
  } else {
    slot.held = free_held_.back();
    free_held_.pop_back();
  }
  HeldRecord& record = held_[slot.held];
  record = {.slot = slot_index};
  if constexpr (kPoolInstrumented) {
    ++frame_acquires_;
    changed_ = true;
    record.site = site;
    record.frame = frame_;
    if (options_.stack_sampling != 0) {
      if (sample_countdown_ > 1) {
        --sample_countdown_;
      } else {
        record.stack = InternStack(CaptureStack(1), site);  // from the caller of Acquire()
        sample_countdown_ = NextSampleGap();
      }
    }
    held_bytes_ += key.buffer_bytes();
    AttributeHeld(slot.held);
  }
  return {slot.memory, key.buffer_bytes(), format, count, BufferId{slot_index, slot.generation}};
}

bool BufferPool::Release(BufferId id) {
  if (!id.valid() || id.slot >= slots_.size()) return false;
  Slot& slot = slots_[id.slot];
  if (slot.state != SlotState::kHeld || slot.generation != id.generation) return false;
  Key& key = keys_[ResetIfStale(slot.key)];
  if constexpr (kPoolInstrumented) {
    UnattributeHeld(slot.held);
    ++frame_releases_;
    changed_ = true;
    // In-use bytes only fall at a release (or at the frame's end): the frame's peak is the
    // most of what was in use just before one.
    frame_peak_ = std::max(frame_peak_, held_bytes_ + (frame_scoped_ >> kScopedBytesShift));
    held_bytes_ -= key.buffer_bytes();
  }
  held_[slot.held].slot = kNone;
  free_held_.push_back(slot.held);
  slot.held = kNone;
  slot.state = SlotState::kPooled;
  PushEntry(slot.key, {slot.memory, id.slot, slot.generation});
  --key_info_[slot.key].held;
  return true;
}

// Sealing writes the frame's numbers straight into Stats(): nothing between two EndFrame()
// calls changes what Stats() shows.
void BufferPool::SealScoped() {
  // Each was an allocation and is now a release; with no release during the frame, its end is
  // its peak.
  const std::uint64_t n = frame_scoped_ & kScopedCountMask;
  sealed_.last_frame = {frame_, n, n, held_bytes_ + (frame_scoped_ >> kScopedBytesShift)};
  sealed_.allocations_total += n;
  sealed_.releases_total += n;
}

// Counts the frame sealed and starts the next one; ages held buffers when one crosses a bound.
void BufferPool::NextFrame() {
  sealed_.frames = frame_ + 1;
  frame_scoped_ = 0;
  ++frame_;
  if (frame_ >= next_aging_frame_) AgeHeld();
}

// Frame-scoped buffers return without a visit: the keys reset their cursors at their next use.
// What is left is trimming (only in a frame where a key may be idle) and sealing, so a frame's
// end costs what an arena's reset and a few counters cost.
void BufferPool::EndFrame() {
  if constexpr (kPoolInstrumented) {
    // A frame of frame-scoped traffic only (the common one) seals four numbers here, with no
    // call but a tail call, so that the function needs no frame of its own; anything else
    // (held traffic, new memory, a key that may be idle) takes EndBusyFrame().
    if (changed_ || frame_ >= next_trim_frame_) {
      EndBusyFrame();
      return;
    }
    SealScoped();
    NextFrame();
  } else {
    if (frame_ >= next_trim_frame_) Trim();
    ++frame_;
  }
}

void BufferPool::EndBusyFrame() {
  if (frame_ >= next_trim_frame_) Trim();
  if (changed_) {
    SealChanged();
  } else {
    SealScoped();
  }
  NextFrame();
}

void BufferPool::SealChanged() {
  const std::uint64_t scoped = frame_scoped_ & kScopedCountMask;
  const std::uint64_t allocations = frame_acquires_ + scoped;
  const std::uint64_t releases = frame_releases_ + scoped;
  const std::uint64_t peak =
      std::max(frame_peak_, held_bytes_ + (frame_scoped_ >> kScopedBytesShift));
  sealed_.last_frame = {frame_, allocations, releases, peak};
  frame_peak_ = 0;
  sealed_.allocations_total += allocations;
  sealed_.releases_total += releases;
  sealed_.misses_total = misses_;
  sealed_.allocation_failures_total = allocation_failures_;
  sealed_.trimmed_bytes_total = trimmed_bytes_;
  sealed_.outstanding_buffers = held_.size() - free_held_.size();
  sealed_.pooled_bytes = pooled_bytes_;
  sealed_.in_use_bytes = held_bytes_;
  sealed_.keys = active_keys_;
  frame_acquires_ = 0;
  frame_releases_ = 0;
  changed_ = false;
}

void BufferPool::OutstandingBySite(std::vector<OutstandingGroup>& out) const {
  out.clear();
  for (const Group& group : groups_) {
    if (group.held.count == 0) continue;
    out.push_back({group.site, group.format, group.held.count, group.held.bytes,
                   held_[group.chain.oldest].frame, held_[group.chain.newest].frame});
  }
}

// The top stacks by bytes, then buffers, then age; `by_stack` (a mark's) in place of the
// stacks' own tallies when given.
void BufferPool::SummarizeStacks(std::size_t top, const std::vector<HeldTally>* by_stack,
                                 HeldStacks& out) const {
  out.top.clear();
  out.other_stacks = 0;
  out.other = {};
  const auto tally = [&](std::size_t i) -> HeldTally {
    if (by_stack == nullptr) return stacks_[i].held;
    return i < by_stack->size() ? (*by_stack)[i] : HeldTally{};
  };
  const auto before = [](const HeldStack& a, const HeldStack& b) {
    if (a.held.bytes != b.held.bytes) return a.held.bytes > b.held.bytes;
    if (a.held.count != b.held.count) return a.held.count > b.held.count;
    return a.oldest_frame < b.oldest_frame;
  };
  for (std::size_t i = 0; i < stacks_.size(); ++i) {
    const HeldTally held = tally(i);
    if (held.count == 0) continue;
    const StackRecord& record = stacks_[i];
    HeldStack entry{record.stack, record.site, held,
                    by_stack == nullptr ? held_[record.chain.oldest].frame : 0};
    if (out.top.size() < top) {
      out.top.push_back(entry);
      std::ranges::push_heap(out.top, before);  // the heap's front is the least of the top
      continue;
    }
    if (top != 0 && before(entry, out.top.front())) {
      std::ranges::pop_heap(out.top, before);
      std::swap(entry, out.top.back());
      std::ranges::push_heap(out.top, before);
    }
    ++out.other_stacks;
    out.other.count += entry.held.count;
    out.other.bytes += entry.held.bytes;
  }
  std::ranges::sort_heap(out.top, before);
}

void BufferPool::OutstandingByStack(std::size_t top, HeldStacks& out) const {
  SummarizeStacks(top, nullptr, out);
  HeldTally sampled;
  for (const StackRecord& record : stacks_) {
    sampled.count += record.held.count;
    sampled.bytes += record.held.bytes;
  }
  out.unsampled = {held_.size() - free_held_.size() - sampled.count, held_bytes_ - sampled.bytes};
}

void BufferPool::SetAgeBounds(const std::array<std::uint64_t, kHeldAgeBuckets - 1>& frames) {
  // Rebuilt from the list: a buffer's bucket follows from its age and the new bounds.
  age_bounds_ = frames;
  ages_ = {};
  age_edges_.fill(kNone);
  next_aging_frame_ = 0;
  for (std::uint32_t held = age_chain_.oldest; held != kNone; held = held_[held].age_links.next) {
    ages_[0].Add(HeldBytes(held));
    for (std::uint32_t& edge : age_edges_) {
      if (edge == kNone) edge = held;
    }
  }
  AgeHeld();
}

// Moves each edge past the slots now as old as its bound: each goes up one bucket. Edges only
// move towards the newest, so every slot crosses each bound once: O(1) a buffer, amortized.
// Bounds are visited from the lowest, so a slot that crossed two bounds at once goes up two.
void BufferPool::AgeHeld() {
  next_aging_frame_ = kNever;
  for (std::size_t i = 0; i < age_edges_.size(); ++i) {
    std::uint32_t& edge = age_edges_[i];
    while (edge != kNone && frame_ - held_[edge].frame >= age_bounds_[i]) {
      const std::uint64_t bytes = HeldBytes(edge);
      ages_[i].Remove(bytes);
      ages_[i + 1].Add(bytes);
      edge = held_[edge].age_links.next;
    }
    if (edge != kNone) {
      next_aging_frame_ = std::min(next_aging_frame_, held_[edge].frame + age_bounds_[i]);
    }
  }
}

void BufferPool::AddMark(std::uint64_t id) {
  if (marks_.size() == kMaxMarks) marks_.erase(marks_.begin());
  marks_.push_back({id, frame_, {}, {}, {}, {}});
  ++held_version_;
}

void BufferPool::DropMark(std::uint64_t id) {
  if (std::erase_if(marks_, [id](const Mark& mark) { return mark.id == id; }) != 0) {
    ++held_version_;
  }
}

void BufferPool::HeldSinceMarks(std::size_t top, std::vector<HeldSince>& out) const {
  out.resize(marks_.size());
  for (std::size_t m = 0; m < marks_.size(); ++m) {
    const Mark& mark = marks_[m];
    HeldSince& since = out[m];
    since.mark = mark.id;
    since.frame = mark.frame;
    since.held = mark.held;
    since.sites.clear();
    for (std::size_t g = 0; g < mark.groups.size(); ++g) {
      if (mark.groups[g].count == 0) continue;
      since.sites.push_back(
          {groups_[g].site, groups_[g].format, mark.groups[g].count, mark.groups[g].bytes, 0, 0});
    }
    SummarizeStacks(top, &mark.stacks, since.stacks);
    since.stacks.unsampled = mark.unsampled;
  }
}

// A random gap with mean stack_sampling: uniform in [1, 2N - 1] (xorshift64).
std::uint32_t BufferPool::NextSampleGap() {
  const std::uint64_t n = options_.stack_sampling;
  if (n <= 1) return 1;
  sample_random_ ^= sample_random_ << 13;
  sample_random_ ^= sample_random_ >> 7;
  sample_random_ ^= sample_random_ << 17;
  return static_cast<std::uint32_t>(1 + sample_random_ % (2 * n - 1));
}

// The stack's record, made on its first sight; kNone when the table is full of stacks that
// still hold buffers (a record whose buffers are all back is reused).
std::uint32_t BufferPool::InternStack(const CallStack& stack, const char* site) {
  if (const auto it = stack_index_.find(stack); it != stack_index_.end()) return it->second;
  std::uint32_t index = kNone;
  if (stacks_.size() < kMaxStacks) {
    index = static_cast<std::uint32_t>(stacks_.size());
    stacks_.emplace_back();
  } else {
    const auto idle =
        std::ranges::find(stacks_, 0U, [](const StackRecord& r) { return r.held.count; });
    if (idle == stacks_.end()) return kNone;
    index = static_cast<std::uint32_t>(idle - stacks_.begin());
    stack_index_.erase(idle->stack);
  }
  stacks_[index] = {stack, site, {}, {}};
  stack_index_.emplace(stack, index);
  return index;
}

void BufferPool::Append(Chain& chain, Links HeldRecord::*links, std::uint32_t held) {
  Links& own = held_[held].*links;
  own.prev = chain.newest;
  own.next = kNone;
  if (chain.newest != kNone) (held_[chain.newest].*links).next = held;
  chain.newest = held;
  if (chain.oldest == kNone) chain.oldest = held;
}

void BufferPool::Unlink(Chain& chain, Links HeldRecord::*links, std::uint32_t held) {
  Links& own = held_[held].*links;
  if (own.prev != kNone) {
    (held_[own.prev].*links).next = own.next;
  } else {
    chain.oldest = own.next;
  }
  if (own.next != kNone) {
    (held_[own.next].*links).prev = own.prev;
  } else {
    chain.newest = own.prev;
  }
  own = {};
}

// Counts a newly held slot in its group, its stack, its age bucket (the youngest) and every
// mark (all of them older than it).
void BufferPool::AttributeHeld(std::uint32_t held_index) {
  HeldRecord& held = held_[held_index];
  const std::uint64_t bytes = HeldBytes(held_index);
  const GroupKey key{held.site, key_info_[slots_[held.slot].key].format};
  auto [it, added] = group_index_.try_emplace(key, static_cast<std::uint32_t>(groups_.size()));
  if (added) groups_.push_back({key.site, key.format, {}, {}});
  held.group = it->second;
  Group& group = groups_[held.group];
  Append(group.chain, &HeldRecord::group_links, held_index);
  group.held.Add(bytes);
  if (held.stack != kNone) {
    StackRecord& record = stacks_[held.stack];
    Append(record.chain, &HeldRecord::stack_links, held_index);
    record.held.Add(bytes);
  }

  Append(age_chain_, &HeldRecord::age_links, held_index);
  ages_[0].Add(bytes);
  for (std::size_t i = 0; i < age_edges_.size(); ++i) {
    if (age_edges_[i] == kNone) {
      age_edges_[i] = held_index;
      next_aging_frame_ = std::min(next_aging_frame_, frame_ + age_bounds_[i]);
    }
  }

  for (Mark& mark : marks_) {
    mark.held.Add(bytes);
    if (mark.groups.size() <= held.group) mark.groups.resize(groups_.size());
    mark.groups[held.group].Add(bytes);
    if (held.stack == kNone) {
      mark.unsampled.Add(bytes);
    } else {
      if (mark.stacks.size() <= held.stack) mark.stacks.resize(stacks_.size());
      mark.stacks[held.stack].Add(bytes);
    }
  }
  ++held_version_;
}

void BufferPool::UnattributeHeld(std::uint32_t held_index) {
  const HeldRecord& held = held_[held_index];
  const std::uint64_t bytes = HeldBytes(held_index);
  for (Mark& mark : marks_) {
    if (held.frame < mark.frame) continue;
    mark.held.Remove(bytes);
    mark.groups[held.group].Remove(bytes);
    if (held.stack == kNone) {
      mark.unsampled.Remove(bytes);
    } else {
      mark.stacks[held.stack].Remove(bytes);
    }
  }

  std::size_t bucket = 0;
  while (bucket < age_bounds_.size() && frame_ - held.frame >= age_bounds_[bucket]) ++bucket;
  ages_[bucket].Remove(bytes);
  for (std::uint32_t& edge : age_edges_) {
    if (edge == held_index) edge = held.age_links.next;
  }
  Unlink(age_chain_, &HeldRecord::age_links, held_index);

  if (held.stack != kNone) {
    StackRecord& record = stacks_[held.stack];
    Unlink(record.chain, &HeldRecord::stack_links, held_index);
    record.held.Remove(bytes);
  }
  Group& group = groups_[held.group];
  Unlink(group.chain, &HeldRecord::group_links, held_index);
  group.held.Remove(bytes);
  ++held_version_;
}

// Walks the slots for pooled and held bytes, and the keys' cursors for frame-scoped ones.
BufferPool::Audit BufferPool::AuditBytes() const {
  Audit audit;
  for (const Slot& slot : slots_) {
    if (slot.memory == nullptr) continue;
    const std::uint64_t bytes = keys_[slot.key].buffer_bytes();
    audit.pooled_bytes += bytes;
    ++audit.buffers;
    if (slot.state == SlotState::kHeld) audit.in_use_bytes += bytes;
  }
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const Key& key = keys_[i];
    if (key_info_[i].active && key.last_used_frame == frame_)
      audit.in_use_bytes += key.cursor * key.buffer_bytes();
  }
  return audit;
}

std::uint32_t BufferPool::FindOrAddKey(BufferFormat format, std::uint32_t count) {
  const std::uint64_t packed = PackKey(format, count);
  if (const std::uint32_t found = FindKey(packed); found != kNone) return found;

  std::uint32_t index = 0;
  if (!empty_keys_.empty()) {
    index = empty_keys_.back();
    empty_keys_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(keys_.size());
    keys_.emplace_back();
    key_info_.emplace_back();
  }
  const std::uint64_t buffer_bytes = static_cast<std::uint64_t>(count) * ElementSize(format);
  keys_[index] = {.scoped_step = (buffer_bytes << kScopedBytesShift) | 1,
                  .last_used_frame = frame_};
  key_info_[index] = {.packed = packed, .format = format, .active = true};
  ++active_keys_;
  if constexpr (kPoolInstrumented) changed_ = true;
  TableInsert(packed, index);
  trim_queue_.Push(index, frame_);
  next_trim_frame_ = TrimDueFrame();
  return index;
}

void BufferPool::TableInsert(std::uint64_t packed, std::uint32_t index) {
  if (2 * active_keys_ > table_.size()) {  // keep it at most half full
    std::vector<TableEntry> old(2 * table_.size());
    old.swap(table_);
    --table_shift_;
    for (const TableEntry& entry : old) {
      if (entry.packed != kNoKey) TablePlace(entry);
    }
  }
  TablePlace({packed, index});
}

void BufferPool::TablePlace(const TableEntry& entry) {
  const std::size_t mask = TableMask();
  std::size_t i = Home(entry.packed);
  while (table_[i].packed != kNoKey) i = (i + 1) & mask;
  table_[i] = entry;
}

// Removes a key and shifts back the entries after it that probed past its place, so that every
// key stays reachable from its home without tombstones.
void BufferPool::TableErase(std::uint64_t packed) {
  const std::size_t mask = TableMask();
  std::size_t hole = Home(packed);
  while (table_[hole].packed != packed) hole = (hole + 1) & mask;
  for (std::size_t next = (hole + 1) & mask; table_[next].packed != kNoKey;
       next = (next + 1) & mask) {
    // The entry at `next` may fill the hole if its home is not in (hole, next], cyclically.
    const std::size_t home = Home(table_[next].packed);
    const bool home_after_hole = ((home - hole) & mask) <= ((next - hole) & mask) && home != hole;
    if (!home_after_hole) {
      table_[hole] = table_[next];
      hole = next;
    }
  }
  table_[hole] = {};
}

// A slot with new memory for the key, counted as a miss; kNone when the byte cap refuses it.
std::uint32_t BufferPool::NewBuffer(std::uint32_t key_index) {
  const std::uint64_t bytes = keys_[key_index].buffer_bytes();
  if constexpr (kPoolInstrumented) changed_ = true;
  if ((options_.max_bytes != 0 && pooled_bytes_ + bytes > options_.max_bytes) ||
      pooled_bytes_ + bytes >= kMaxPooledBytes ||
      slots_.size() - empty_slots_.size() >= kMaxBuffers) {
    if constexpr (kPoolInstrumented) ++allocation_failures_;
    // A key made only for this refused request would count as bloat; drop it again.
    if (keys_[key_index].size == 0 && key_info_[key_index].held == 0) DropKey(key_index);
    return kNone;
  }
  std::uint32_t slot_index = 0;
  if (!empty_slots_.empty()) {
    slot_index = empty_slots_.back();
    empty_slots_.pop_back();
  } else {
    slot_index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[slot_index];
  const AlignedMemory aligned = AllocateAligned(bytes);
  slot.memory = aligned.memory;
  slot.offset = aligned.offset;
  slot.key = key_index;
  slot.state = SlotState::kPooled;
  pooled_bytes_ += bytes;
  if constexpr (kPoolInstrumented) ++misses_;
  return slot_index;
}

void BufferPool::FreeSlotMemory(std::uint32_t slot_index) {
  Slot& slot = slots_[slot_index];
  FreeAligned(slot.memory, slot.offset);
  slot.memory = nullptr;
  slot.state = SlotState::kEmpty;
  slot.key = kNone;
  ++slot.generation;
  empty_slots_.push_back(slot_index);
}

// Uses do not move a key in the trim queue; they only stamp last_used_frame. Every key idle for
// trim_idle_frames was queued at least that long ago, so the queue yields all of them before
// any key queued later. Trim visits exactly the keys queued that long ago: an idle one has its
// free buffers freed (all of its stack: its cursor is from an earlier frame) and is dropped once
// it holds nothing, or requeued to be looked at again after another idle period if it still has
// held buffers; one used since it was queued is requeued at its last use. The queue's head
// tells when the next visit is due (next_trim_frame_), so frames before it do not call Trim().
void BufferPool::Trim() {
  const std::uint64_t idle = options_.trim_idle_frames;
  while (frame_ >= next_trim_frame_) {
    const std::uint32_t key_index = trim_queue_.FrontKey();
    Key& key = keys_[key_index];
    if (key.last_used_frame + idle > frame_) {
      trim_queue_.RequeueFront(key.last_used_frame);
      next_trim_frame_ = TrimDueFrame();
      continue;
    }
    if constexpr (kPoolInstrumented) changed_ = changed_ || key.size != 0;
    for (std::uint32_t i = 0; i < key.size; ++i) {
      pooled_bytes_ -= key.buffer_bytes();
      if constexpr (kPoolInstrumented) trimmed_bytes_ += key.buffer_bytes();
      FreeSlotMemory(key.stack[i].slot);
    }
    key.size = 0;
    key.cursor = 0;
    if (key_info_[key_index].held == 0) {
      DropKey(key_index);
    } else {
      trim_queue_.RequeueFront(frame_);
      next_trim_frame_ = TrimDueFrame();
    }
  }
}

void BufferPool::DropKey(std::uint32_t key_index) {
  if constexpr (kPoolInstrumented) changed_ = true;
  trim_queue_.Remove(key_index);
  next_trim_frame_ = TrimDueFrame();
  TableErase(key_info_[key_index].packed);
  entries_waste_ += key_info_[key_index].capacity;  // its stack's room, until a compaction
  keys_[key_index] = {};
  key_info_[key_index] = {};
  --active_keys_;
  empty_keys_.push_back(key_index);
}

OutstandingBuffer BufferPool::Describe(const HeldRecord& record) const {
  const std::uint32_t key = slots_[record.slot].key;
  return {record.site, key_info_[key].format, keys_[key].buffer_bytes(), record.frame};
}

}  // namespace POOLWATCH_POOL_NAMESPACE
}  // namespace poolwatch

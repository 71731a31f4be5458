#include "poolwatch/buffer_pool.h"

#include <new>
#include <utility>

namespace poolwatch {
inline namespace POOLWATCH_POOL_NAMESPACE {

BufferPool::BufferPool(PoolOptions options) : options_(options) {}

BufferPool::~BufferPool() {
  for (Slot& slot : slots_) {
    if (slot.memory != nullptr) ::operator delete (slot.memory, std::align_val_t{kAlignment});
  }
}

Buffer BufferPool::Alloc(BufferFormat format, std::uint32_t count, const char* site) {
  return Take(format, count, site, SlotState::kFrameScoped);
}

Buffer BufferPool::Acquire(BufferFormat format, std::uint32_t count, const char* site) {
  return Take(format, count, site, SlotState::kHeld);
}

Buffer BufferPool::Take(BufferFormat format, std::uint32_t count, const char* site,
                        SlotState state) {
  if (count == 0) return {};
  const std::uint32_t key_index = FindOrAddKey(format, count);
  std::uint32_t slot_index = kNone;
  if (!keys_[key_index].free.empty()) {
    slot_index = keys_[key_index].free.back();
    keys_[key_index].free.pop_back();
  } else {
    const std::uint64_t bytes = keys_[key_index].buffer_bytes;
    if (options_.max_bytes != 0 && pooled_bytes_ + bytes > options_.max_bytes) {
      if constexpr (kPoolInstrumented) ++allocation_failures_;
      // A key made only for this refused request would count as bloat; drop it again.
      if (keys_[key_index].live == 0) DropKey(key_index);
      return {};
    }
    slot_index = NewSlot();
    slots_[slot_index].memory =
        static_cast<std::byte*>(::operator new (bytes, std::align_val_t{kAlignment}));
    slots_[slot_index].key = key_index;
    pooled_bytes_ += bytes;
    if constexpr (kPoolInstrumented) ++misses_;
  }

  Key& key = keys_[key_index];
  Slot& slot = slots_[slot_index];
  slot.state = state;
  ++slot.generation;
  ++key.live;
  Touch(key_index);
  // The only instrumentation a frame-scoped buffer pays for: totals, outstanding and in-use bytes
  // are derived when the frame is sealed (after EndFrame only held buffers are in use).
  if constexpr (kPoolInstrumented) ++frame_allocations_;
  if (state == SlotState::kHeld) {
    slot.held_index = static_cast<std::uint32_t>(held_.size());
    held_.push_back(slot_index);
    if constexpr (kPoolInstrumented) {
      slot.site = site;
      slot.frame = frame_;
      held_bytes_ += key.buffer_bytes;
      GroupAppend(slot_index);
    }
  } else {
    frame_scoped_.push_back(slot_index);
  }
  return MakeBuffer(slot_index);
}

bool BufferPool::Release(BufferId id) {
  if (!id.valid() || id.slot >= slots_.size()) return false;
  Slot& slot = slots_[id.slot];
  if (slot.state != SlotState::kHeld || slot.generation != id.generation) return false;
  // Swap-remove from held_ so that a release is O(1).
  const std::uint32_t moved = held_.back();
  held_[slot.held_index] = moved;
  slots_[moved].held_index = slot.held_index;
  held_.pop_back();
  slot.held_index = kNone;
  if constexpr (kPoolInstrumented) {
    GroupUnlink(id.slot);
    ++frame_releases_;
    held_bytes_ -= keys_[slot.key].buffer_bytes;
  }
  ReturnToFreeList(id.slot);
  return true;
}

void BufferPool::EndFrame() {
  for (std::uint32_t slot_index : frame_scoped_) ReturnToFreeList(slot_index);
  if constexpr (kPoolInstrumented) frame_releases_ += frame_scoped_.size();
  frame_scoped_.clear();

  if (options_.trim_idle_frames != 0) Trim();

  if constexpr (kPoolInstrumented) {
    // Sealing writes the frame's numbers straight into Stats(): nothing between two
    // EndFrame() calls changes what Stats() shows.
    sealed_.last_frame = {frame_, frame_allocations_, frame_releases_};
    sealed_.frames = frame_ + 1;
    sealed_.allocations_total += frame_allocations_;
    sealed_.releases_total += frame_releases_;
    sealed_.misses_total = misses_;
    sealed_.allocation_failures_total = allocation_failures_;
    sealed_.trimmed_bytes_total = trimmed_bytes_;
    sealed_.outstanding_buffers = sealed_.allocations_total - sealed_.releases_total;
    sealed_.pooled_bytes = pooled_bytes_;
    sealed_.in_use_bytes = held_bytes_;
    sealed_.keys = key_index_.size();
    frame_allocations_ = 0;
    frame_releases_ = 0;
  }
  ++frame_;
}

void BufferPool::OutstandingBySite(std::vector<OutstandingGroup>& out) const {
  out.clear();
  for (const Group& group : groups_) {
    if (group.count == 0) continue;
    out.push_back({group.site, group.format, group.count, group.bytes, slots_[group.oldest].frame});
  }
}

void BufferPool::GroupAppend(std::uint32_t slot_index) {
  Slot& slot = slots_[slot_index];
  const GroupKey key{slot.site, keys_[slot.key].format};
  auto [it, added] = group_index_.try_emplace(key, static_cast<std::uint32_t>(groups_.size()));
  if (added) groups_.push_back({key.site, key.format});
  Group& group = groups_[it->second];
  slot.group = it->second;
  slot.group_prev = group.newest;
  slot.group_next = kNone;
  if (group.newest != kNone) slots_[group.newest].group_next = slot_index;
  group.newest = slot_index;
  if (group.oldest == kNone) group.oldest = slot_index;
  ++group.count;
  group.bytes += keys_[slot.key].buffer_bytes;
}

void BufferPool::GroupUnlink(std::uint32_t slot_index) {
  Slot& slot = slots_[slot_index];
  Group& group = groups_[slot.group];
  if (slot.group_prev != kNone) {
    slots_[slot.group_prev].group_next = slot.group_next;
  } else {
    group.oldest = slot.group_next;
  }
  if (slot.group_next != kNone) {
    slots_[slot.group_next].group_prev = slot.group_prev;
  } else {
    group.newest = slot.group_prev;
  }
  --group.count;
  group.bytes -= keys_[slot.key].buffer_bytes;
  slot.group = kNone;
  slot.group_prev = kNone;
  slot.group_next = kNone;
}

BufferPool::Audit BufferPool::AuditBytes() const {
  Audit audit;
  for (const Slot& slot : slots_) {
    if (slot.memory == nullptr) continue;
    const std::uint64_t bytes = keys_[slot.key].buffer_bytes;
    audit.pooled_bytes += bytes;
    ++audit.buffers;
    if (slot.state == SlotState::kFrameScoped || slot.state == SlotState::kHeld) {
      audit.in_use_bytes += bytes;
    }
  }
  return audit;
}

std::uint32_t BufferPool::FindOrAddKey(BufferFormat format, std::uint32_t count) {
  const std::uint64_t packed = PackKey(format, count);
  CachedKey& cached = key_cache_[CacheSlot(packed)];
  if (cached.packed == packed) return cached.index;
  if (auto it = key_index_.find(packed); it != key_index_.end()) {
    cached = {packed, it->second};
    return it->second;
  }

  std::uint32_t index = 0;
  if (!empty_keys_.empty()) {
    index = empty_keys_.back();
    empty_keys_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(keys_.size());
    keys_.emplace_back();
  }
  Key& key = keys_[index];
  key.packed = packed;
  key.format = format;
  key.count = count;
  key.buffer_bytes = static_cast<std::uint64_t>(count) * ElementSize(format);
  key.free.clear();
  key.live = 0;
  key.active = true;
  key.in_lru = false;
  key_index_.emplace(packed, index);
  cached = {packed, index};
  return index;
}

std::uint32_t BufferPool::NewSlot() {
  if (!empty_slots_.empty()) {
    const std::uint32_t index = empty_slots_.back();
    empty_slots_.pop_back();
    return index;
  }
  slots_.emplace_back();
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

void BufferPool::ReturnToFreeList(std::uint32_t slot_index) {
  Slot& slot = slots_[slot_index];
  Key& key = keys_[slot.key];
  slot.state = SlotState::kFree;
  key.free.push_back(slot_index);
  --key.live;
  Touch(slot.key);
}

void BufferPool::FreeSlotMemory(std::uint32_t slot_index) {
  Slot& slot = slots_[slot_index];
  ::operator delete (slot.memory, std::align_val_t{kAlignment});
  slot.memory = nullptr;
  slot.state = SlotState::kEmpty;
  slot.key = kNone;
  empty_slots_.push_back(slot_index);
}

void BufferPool::Touch(std::uint32_t key_index) {
  Key& key = keys_[key_index];
  // Trimming only compares frames, so a key already moved to the tail this frame stays there.
  if (key.in_lru && key.last_used_frame == frame_) return;
  key.last_used_frame = frame_;
  if (key.in_lru && lru_tail_ == key_index) return;
  if (key.in_lru) LruUnlink(key_index);
  key.lru_prev = lru_tail_;
  key.lru_next = kNone;
  if (lru_tail_ != kNone) keys_[lru_tail_].lru_next = key_index;
  lru_tail_ = key_index;
  if (lru_head_ == kNone) lru_head_ = key_index;
  key.in_lru = true;
}

void BufferPool::LruUnlink(std::uint32_t key_index) {
  Key& key = keys_[key_index];
  if (!key.in_lru) return;
  if (key.lru_prev != kNone) {
    keys_[key.lru_prev].lru_next = key.lru_next;
  } else {
    lru_head_ = key.lru_next;
  }
  if (key.lru_next != kNone) {
    keys_[key.lru_next].lru_prev = key.lru_prev;
  } else {
    lru_tail_ = key.lru_prev;
  }
  key.lru_prev = kNone;
  key.lru_next = kNone;
  key.in_lru = false;
}

// Keys sit in the LRU list in order of last use, so only the idle ones at its head are visited.
// A trimmed key leaves the list until it is used again; it is forgotten entirely once it has no
// buffers left.
void BufferPool::Trim() {
  while (lru_head_ != kNone &&
         keys_[lru_head_].last_used_frame + options_.trim_idle_frames <= frame_) {
    const std::uint32_t key_index = lru_head_;
    Key& key = keys_[key_index];
    for (std::uint32_t slot_index : key.free) {
      pooled_bytes_ -= key.buffer_bytes;
      if constexpr (kPoolInstrumented) trimmed_bytes_ += key.buffer_bytes;
      FreeSlotMemory(slot_index);
    }
    key.free.clear();
    LruUnlink(key_index);
    if (key.live == 0) DropKey(key_index);
  }
}

void BufferPool::DropKey(std::uint32_t key_index) {
  if (CachedKey& cached = key_cache_[CacheSlot(keys_[key_index].packed)];
      cached.packed == keys_[key_index].packed) {
    cached = {};
  }
  LruUnlink(key_index);
  key_index_.erase(keys_[key_index].packed);
  keys_[key_index].active = false;
  empty_keys_.push_back(key_index);
}

Buffer BufferPool::MakeBuffer(std::uint32_t slot_index) const {
  const Slot& slot = slots_[slot_index];
  const Key& key = keys_[slot.key];
  return {slot.memory, static_cast<std::size_t>(key.buffer_bytes), key.format, key.count,
          BufferId{slot_index, slot.generation}};
}

OutstandingBuffer BufferPool::Describe(std::uint32_t slot_index) const {
  const Slot& slot = slots_[slot_index];
  const Key& key = keys_[slot.key];
  return {slot.site, key.format, key.buffer_bytes, slot.frame};
}

}  // namespace POOLWATCH_POOL_NAMESPACE
}  // namespace poolwatch

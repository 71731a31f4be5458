#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "poolwatch/buffer_pool.h"
#include "poolwatch/mark_board.h"

namespace poolwatch {

// The exponential buckets of a native (sparse) Prometheus histogram, for non-negative values:
// bucket `offset + i` counts `counts[i]` observations in (2^((k-1)/8), 2^(k/8)] (schema 3: a
// factor of 1.09 per bucket, as Prometheus's Go client defaults to), and `zero_count` those at
// most `zero_threshold`. Grows to the range observed; no bound to choose.
struct NativeBuckets {
  static constexpr std::int32_t kSchema = 3;
  static constexpr double kZeroThreshold = 2.938735877055719e-39;  // 2^-128, as the Go client's

  std::int32_t offset = 0;
  std::vector<std::uint64_t> counts;
  std::uint64_t zero_count = 0;

  void Observe(double value);
  // The bucket index of a value above the zero threshold.
  static std::int32_t Key(double value);
};

// A cumulative histogram over fixed upper bounds, with an implicit +Inf bucket: seconds for
// durations, a count for allocations. Optionally also native buckets (NativeBuckets) of the same
// observations, for the protobuf format. Plain data: copied into every snapshot. Not
// thread-safe.
class Histogram {
 public:
  Histogram() = default;
  // `upper_bounds` must be strictly increasing.
  explicit Histogram(std::vector<double> upper_bounds, bool native = false);

  void Observe(double value);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Per-bucket (not cumulative) counts; one more than upper_bounds(), the last is +Inf.
  const std::vector<std::uint64_t>& bucket_counts() const { return bucket_counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // The native buckets, if the histogram keeps them.
  const std::optional<NativeBuckets>& native() const { return native_; }

  // Bounds (seconds) for a frame's duration or a tick's lateness under a tick budget: 5 µs,
  // 10 µs, 25 µs, ... in steps of 1-2.5-5 up to half of budget/16, then budget/16, /8, /4, /2,
  // 0.75, 1 (the budget itself, so "more than the budget" is exact), 1.5, 2, 4 and 8 budgets.
  static std::vector<double> DurationBuckets(std::chrono::nanoseconds budget);
  // Bounds for a count per frame: 0 (an idle frame), then powers of 4 from 1 to 65536.
  static std::vector<double> CountBuckets();

 private:
  std::vector<double> upper_bounds_;
  std::vector<std::uint64_t> bucket_counts_ = {0};
  std::uint64_t count_ = 0;
  double sum_ = 0;
  std::optional<NativeBuckets> native_;
};

// The largest value added over a trailing window of frames, and since the start. The window is
// a ring of `slots` runs of `slot_frames` frames each, plus the run being filled, so Max()
// covers the last slots × slot_frames frames at least, and one run more at most. Add() is
// O(1), Max() O(slots). Plain data, not thread-safe.
template <typename T>
class WindowedMax {
 public:
  WindowedMax() = default;
  WindowedMax(std::uint64_t slot_frames, std::size_t slots)
      : maxima_(slots + 1, T{}), slot_frames_(std::max<std::uint64_t>(slot_frames, 1)) {}

  void Add(T value) {
    if (frames_in_slot_ == slot_frames_) {
      current_ = current_ + 1 == maxima_.size() ? 0 : current_ + 1;
      maxima_[current_] = value;
      frames_in_slot_ = 1;
    } else {
      maxima_[current_] = std::max(maxima_[current_], value);
      ++frames_in_slot_;
    }
    high_water_ = std::max(high_water_, value);
  }
  T Max() const { return *std::ranges::max_element(maxima_); }  // never empty
  T HighWater() const { return high_water_; }

 private:
  std::vector<T> maxima_ = {T{}};
  std::size_t current_ = 0;
  std::uint64_t frames_in_slot_ = 0;
  std::uint64_t slot_frames_ = 1;
  T high_water_{};
};

// How one frame of a loop went, as its loop measured it.
struct FrameTiming {
  std::chrono::nanoseconds duration{};  // time spent executing the frame
  std::chrono::nanoseconds lateness{};  // wake-up time minus the tick's deadline; < 0 counts as 0
  bool overrun = false;                 // the frame ended after the next tick's deadline
};

// A loop's timing as of its last completed frame.
struct LoopStats {
  std::uint64_t frames = 0;    // frames completed
  std::uint64_t overruns = 0;  // frames that ended after the next tick's deadline
  double last_frame_seconds = 0;
  double last_tick_lateness_seconds = 0;
};

// What a pool's frames reached, over every frame (not only the frames a snapshot follows):
// over the monitor's trailing peak window ("peak") and since the start ("max").
struct PoolPeaks {
  std::uint64_t frame_peak_in_use_bytes = 0;  // the most in use at any moment of a frame
  std::uint64_t frame_max_in_use_bytes = 0;
  std::uint64_t frame_peak_allocations = 0;  // the most allocations in one frame
  std::uint64_t frame_max_allocations = 0;
};

// The most recently acquired of a pool's held buffers that are still outstanding: where a leak
// is growing now. `time` is its frame's time, estimated once from the loop's period when the
// monitor first sees it, then kept, so that it reads the same in every later snapshot.
struct LatestHeld {
  const char* site = nullptr;  // nullptr for an untagged Acquire()
  std::uint64_t frame = 0;
  std::chrono::system_clock::time_point time;
};

// The upper bounds of the age buckets of held buffers (HeldAges): under 1 s, 1 min, 10 min,
// 1 h, and older. The monitor turns them into frames of its period for its pools.
inline constexpr std::array<std::chrono::seconds, kHeldAgeBuckets - 1> kHeldAgeBounds = {
    std::chrono::seconds{1}, std::chrono::minutes{1}, std::chrono::minutes{10},
    std::chrono::hours{1}};
// The `age` label of each bucket, in poolwatch_pool_outstanding_age_buffers and /debug/health.
inline constexpr std::array<std::string_view, kHeldAgeBuckets> kHeldAgeLabels = {
    "under_1s", "1s_to_1m", "1m_to_10m", "10m_to_1h", "over_1h"};

// One pool as of the end of a frame: its sealed stats and its held buffers by (site, format),
// by call stack, by age, and since each mark.
struct PoolSnapshot {
  std::string name;  // the `pool` label
  PoolStats stats;
  PoolPeaks peaks;
  Histogram allocations_per_frame;  // every frame's allocations, bounded by CountBuckets()
  std::vector<OutstandingGroup> outstanding;
  std::optional<LatestHeld> latest_held;  // none while nothing is held
  std::uint32_t stack_sampling = 0;       // the pool's PoolOptions::stack_sampling
  HeldStacks stacks;                      // the monitor's top_stacks stacks, the rest summed
  HeldAges ages{};
  std::vector<HeldSince> marks;  // one per mark the pool counts, oldest first
};

// A sealed, self-contained copy of one loop and all its pools after one frame, handed to
// subscribers. Every pool in it describes the same frame of the loop.
struct HealthSnapshot {
  std::string loop;  // the `loop` label
  std::chrono::nanoseconds period{};
  std::uint64_t sequence = 0;  // 1 for the loop's first snapshot
  std::chrono::system_clock::time_point time;
  LoopStats timing;
  double frame_peak_duration_seconds = 0;  // the longest frame in the trailing peak window
  Histogram frame_duration;
  Histogram tick_lateness;
  std::vector<PoolSnapshot> pools;  // in the order they were added

  // The pool of that name, or nullptr.
  const PoolSnapshot* FindPool(std::string_view name) const;
};

struct HealthMonitorOptions {
  std::string loop = "main";  // the `loop` label: 1 to 64 characters, no control characters
  // The tick budget: SimulationLoop's period, and what the frame-duration buckets bracket.
  std::chrono::nanoseconds period{16'666'667};
  // Emit a snapshot every this many frames (1: after every frame).
  std::uint32_t snapshot_interval_frames = 1;
  // The trailing window of the peaks (PoolPeaks, the longest frame), in whole seconds of
  // frames at `period`: every scraper sees a peak for this long, nothing resets on reading.
  std::chrono::seconds peak_window{15};
  // How many call stacks a snapshot lists per pool (and per mark), by bytes held.
  std::size_t top_stacks = 8;
};

// The monitor of one loop and its pools. EndFrame() is the one call that ends a frame: it ends
// the frame of every pool (returning frame-scoped buffers, sealing their stats), records the
// frame's timing, and, when due, hands a snapshot of it all to the subscribers. Stats are read
// after they are sealed, so a snapshot describes the frame it follows.
//
// Thread-safety: the loop's thread owns the monitor and its pools; EndFrame() runs there and
// calls the subscribers there (a subscriber must be quick and must not call back into the
// loop). AddPool() and Subscribe() only before the first EndFrame().
class HealthMonitor {
 public:
  using Subscriber = std::function<void(const HealthSnapshot&)>;

  // Throws std::invalid_argument for an invalid loop name or a zero period.
  explicit HealthMonitor(HealthMonitorOptions options = {});
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Adds a pool under a name unique in this monitor; the pool must outlive the monitor. Throws
  // std::invalid_argument for an invalid or duplicate name, std::logic_error once frames ran.
  void AddPool(std::string name, BufferPool& pool);
  void Subscribe(Subscriber subscriber);
  // The marks its pools count from (BufferPool::AddMark), shared with whatever makes them (the
  // exporter's POST /debug/mark). Before the first EndFrame(); std::logic_error after.
  void UseMarks(std::shared_ptr<const MarkBoard> marks);

  // Ends the frame of the loop and of all its pools; emits a snapshot when one is due.
  void EndFrame(const FrameTiming& timing);

  // Changes how often snapshots are emitted; takes effect at the next EndFrame().
  void SetSnapshotInterval(std::uint32_t frames) { options_.snapshot_interval_frames = frames; }

  const std::string& loop() const { return options_.loop; }
  std::chrono::nanoseconds period() const { return options_.period; }
  const LoopStats& stats() const { return stats_; }
  std::uint64_t snapshots() const { return snapshot_.sequence; }
  std::vector<std::string> PoolNames() const;

 private:
  struct Member {
    std::string name;
    BufferPool* pool;
    WindowedMax<std::uint64_t> peak_in_use_bytes;
    WindowedMax<std::uint64_t> allocations;
    Histogram allocations_per_frame;
    std::optional<LatestHeld> latest_held;
    std::uint64_t held_version = ~std::uint64_t{0};  // of the attribution in the snapshot
  };

  // A peak window of whole seconds: one run per second of frames at the period, rounded up so
  // that the window is never shorter than asked (60 frames a run at 60 Hz, not 59).
  template <typename T>
  WindowedMax<T> PeakWindow() const {
    const std::chrono::nanoseconds second = std::chrono::seconds{1};
    return {static_cast<std::uint64_t>((second + options_.period - std::chrono::nanoseconds{1}) /
                                       options_.period),
            static_cast<std::size_t>(options_.peak_window.count())};
  }

  void Emit();
  void SyncMarks();
  std::optional<LatestHeld> LatestHeldOf(Member& member, const PoolSnapshot& pool);

  HealthMonitorOptions options_;
  std::vector<Member> pools_;
  std::vector<Subscriber> subscribers_;
  LoopStats stats_;
  Histogram frame_duration_;
  Histogram tick_lateness_;
  WindowedMax<double> frame_seconds_;
  std::uint64_t last_snapshot_frames_ = 0;
  std::shared_ptr<const MarkBoard> marks_;
  std::uint64_t marks_version_ = 0;      // of the board, when the pools last took its marks
  std::vector<std::uint64_t> mark_ids_;  // the marks the pools count
  // Filled in place for every emission, so that its storage is reused: no allocation per frame.
  HealthSnapshot snapshot_;
};

}  // namespace poolwatch

#include "poolwatch/health_monitor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "poolwatch/names.h"

namespace poolwatch {

namespace {
double ToSeconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

std::int32_t NativeBuckets::Key(double value) {
  // value = fraction × 2^exponent with the fraction in [0.5, 1): the exponent picks the power of
  // two, the fraction one of its 8 buckets, whose upper bounds 2^(i/8) / 2 these are.
  static constexpr std::array<double, 8> kBounds = {0.5,
                                                    0.5452538663326288,
                                                    0.5946035575013605,
                                                    0.6484197773255048,
                                                    0.7071067811865475,
                                                    0.7711054127039704,
                                                    0.8408964152537144,
                                                    0.9170040432046711};
  int exponent = 0;
  const double fraction = std::frexp(value, &exponent);
  const auto i = std::lower_bound(kBounds.begin(), kBounds.end(), fraction) - kBounds.begin();
  return static_cast<std::int32_t>(i) + (exponent - 1) * 8;
}

void NativeBuckets::Observe(double value) {
  if (!(value > kZeroThreshold)) {  // NaN counts as zero too: it has no bucket
    ++zero_count;
    return;
  }
  const std::int32_t key = Key(value);
  if (counts.empty()) {
    offset = key;
    counts.push_back(0);
  } else if (key < offset) {
    counts.insert(counts.begin(), static_cast<std::size_t>(offset - key), 0);
    offset = key;
  } else if (key >= offset + static_cast<std::int32_t>(counts.size())) {
    counts.resize(static_cast<std::size_t>(key - offset) + 1, 0);
  }
  ++counts[static_cast<std::size_t>(key - offset)];
}

Histogram::Histogram(std::vector<double> upper_bounds, bool native)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {
  if (native) native_.emplace();
}

void Histogram::Observe(double value) {
  const auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  ++bucket_counts_[static_cast<std::size_t>(it - upper_bounds_.begin())];
  ++count_;
  sum_ += value;
  if (native_) native_->Observe(value);
}

std::vector<double> Histogram::DurationBuckets(std::chrono::nanoseconds budget) {
  // Written out rather than multiplied, so that every bound prints as short as it reads.
  constexpr double kFine[] = {5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
                              5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,  0.25,   0.5,  1,    2.5};
  const double b = ToSeconds(budget);
  std::vector<double> bounds;
  for (double bound : kFine) {
    if (bound * 2 <= b / 16) bounds.push_back(bound);  // a step apart from budget/16
  }
  bounds.insert(bounds.end(),
                {b / 16, b / 8, b / 4, b / 2, b * 0.75, b, b * 1.5, b * 2, b * 4, b * 8});
  return bounds;
}

std::vector<double> Histogram::CountBuckets() {
  return {0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
}

const PoolSnapshot* HealthSnapshot::FindPool(std::string_view name) const {
  const auto it = std::ranges::find(pools, name, &PoolSnapshot::name);
  return it == pools.end() ? nullptr : &*it;
}

HealthMonitor::HealthMonitor(HealthMonitorOptions options)
    : options_(std::move(options)),
      frame_duration_(Histogram::DurationBuckets(options_.period), /*native=*/true),
      tick_lateness_(Histogram::DurationBuckets(options_.period), /*native=*/true) {
  CheckName("loop", options_.loop);
  if (options_.period <= std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("loop \"" + options_.loop + "\": the period must be positive");
  }
  if (options_.peak_window <= std::chrono::seconds::zero()) {
    throw std::invalid_argument("loop \"" + options_.loop + "\": the peak window must be positive");
  }
  frame_seconds_ = PeakWindow<double>();
  snapshot_.loop = options_.loop;
  snapshot_.period = options_.period;
}

void HealthMonitor::AddPool(std::string name, BufferPool& pool) {
  if (stats_.frames != 0) {
    throw std::logic_error("loop \"" + options_.loop +
                           "\": pools are added before the first frame");
  }
  CheckName("pool", name);
  if (std::ranges::find(pools_, name, &Member::name) != pools_.end()) {
    throw std::invalid_argument("loop \"" + options_.loop + "\": pool \"" + name +
                                "\" is added twice");
  }
  std::array<std::uint64_t, kHeldAgeBuckets - 1> age_frames{};
  for (std::size_t i = 0; i < age_frames.size(); ++i) {  // whole frames, rounded up
    const std::chrono::nanoseconds bound = kHeldAgeBounds[i];
    age_frames[i] = static_cast<std::uint64_t>(
        (bound + options_.period - std::chrono::nanoseconds{1}) / options_.period);
  }
  pool.SetAgeBounds(age_frames);
  pools_.push_back({name,
                    &pool,
                    PeakWindow<std::uint64_t>(),
                    PeakWindow<std::uint64_t>(),
                    Histogram(Histogram::CountBuckets()),
                    {}});
  PoolSnapshot& snapshot = snapshot_.pools.emplace_back();
  snapshot.name = std::move(name);
}

void HealthMonitor::UseMarks(std::shared_ptr<const MarkBoard> marks) {
  if (stats_.frames != 0) {
    throw std::logic_error("loop \"" + options_.loop + "\": marks are set before the first frame");
  }
  marks_ = std::move(marks);
}

void HealthMonitor::Subscribe(Subscriber subscriber) {
  subscribers_.push_back(std::move(subscriber));
}

std::vector<std::string> HealthMonitor::PoolNames() const {
  std::vector<std::string> names;
  names.reserve(pools_.size());
  for (const Member& member : pools_) names.push_back(member.name);
  return names;
}

void HealthMonitor::EndFrame(const FrameTiming& timing) {
  for (Member& member : pools_) {
    member.pool->EndFrame();
    const PoolFrameStats& frame = member.pool->Stats().last_frame;
    member.peak_in_use_bytes.Add(frame.peak_in_use_bytes);
    member.allocations.Add(frame.allocations);
    member.allocations_per_frame.Observe(static_cast<double>(frame.allocations));
  }

  ++stats_.frames;
  if (timing.overrun) ++stats_.overruns;
  stats_.last_frame_seconds = ToSeconds(timing.duration);
  stats_.last_tick_lateness_seconds = ToSeconds(std::max(timing.lateness, {}));
  frame_duration_.Observe(stats_.last_frame_seconds);
  frame_seconds_.Add(stats_.last_frame_seconds);
  tick_lateness_.Observe(stats_.last_tick_lateness_seconds);

  if (marks_ && marks_->version() != marks_version_) SyncMarks();

  const std::uint64_t interval = std::max<std::uint32_t>(options_.snapshot_interval_frames, 1);
  if (stats_.frames >= last_snapshot_frames_ + interval) Emit();
}

// The pools start counting for marks made since the last frame, and stop for marks the board
// dropped. Runs only when the board changed (marks are made by hand, rarely).
void HealthMonitor::SyncMarks() {
  marks_version_ = marks_->version();
  std::vector<std::uint64_t> ids;
  for (const Mark& mark : marks_->List()) ids.push_back(mark.id);
  for (const Member& member : pools_) {
    for (std::uint64_t id : mark_ids_) {
      if (std::ranges::find(ids, id) == ids.end()) member.pool->DropMark(id);
    }
    for (std::uint64_t id : ids) {
      if (std::ranges::find(mark_ids_, id) == mark_ids_.end()) member.pool->AddMark(id);
    }
  }
  mark_ids_ = std::move(ids);
}

// The newest group's newest buffer (the first group of the newest frame: groups are in
// first-seen order). Its time is estimated back from this snapshot by whole periods once, when it
// first appears, and kept while it stays the latest.
std::optional<LatestHeld> HealthMonitor::LatestHeldOf(Member& member, const PoolSnapshot& pool) {
  const OutstandingGroup* newest = nullptr;
  for (const OutstandingGroup& group : pool.outstanding) {
    if (newest == nullptr || group.newest_frame > newest->newest_frame) newest = &group;
  }
  if (newest == nullptr) {
    member.latest_held.reset();
  } else if (!member.latest_held || member.latest_held->site != newest->site ||
             member.latest_held->frame != newest->newest_frame) {
    const std::uint64_t frames_ago = pool.stats.last_frame.frame - newest->newest_frame;
    member.latest_held =
        LatestHeld{newest->site, newest->newest_frame,
                   snapshot_.time - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                        options_.period * static_cast<std::int64_t>(frames_ago))};
  }
  return member.latest_held;
}

// The pools' stats were sealed by their EndFrame() above: read now, they describe this frame.
// O(pools + sites), whatever the number of buffers; O(stacks) more for a pool whose held buffers
// changed.
void HealthMonitor::Emit() {
  last_snapshot_frames_ = stats_.frames;
  ++snapshot_.sequence;
  snapshot_.time = std::chrono::system_clock::now();
  snapshot_.timing = stats_;
  snapshot_.frame_peak_duration_seconds = frame_seconds_.Max();
  snapshot_.frame_duration = frame_duration_;
  snapshot_.tick_lateness = tick_lateness_;
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    Member& member = pools_[i];
    snapshot_.pools[i].stats = member.pool->Stats();
    snapshot_.pools[i].peaks = {member.peak_in_use_bytes.Max(),
                                member.peak_in_use_bytes.HighWater(), member.allocations.Max(),
                                member.allocations.HighWater()};
    snapshot_.pools[i].allocations_per_frame = member.allocations_per_frame;
    PoolSnapshot& pool = snapshot_.pools[i];
    member.pool->OutstandingBySite(pool.outstanding);
    pool.latest_held = LatestHeldOf(member, pool);
    pool.stack_sampling = member.pool->options().stack_sampling;
    pool.ages = member.pool->Ages();
    // Stacks and marks change only with held buffers: rebuilt only when those did.
    if (member.held_version != member.pool->HeldVersion()) {
      member.held_version = member.pool->HeldVersion();
      member.pool->OutstandingByStack(options_.top_stacks, pool.stacks);
      member.pool->HeldSinceMarks(options_.top_stacks, pool.marks);
    }
  }
  for (const Subscriber& subscriber : subscribers_) subscriber(snapshot_);
}

}  // namespace poolwatch

#include "poolwatch/diagnostics_store.h"

#include <algorithm>
#include <utility>

namespace poolwatch {

namespace {

std::size_t Capacity(const DiagnosticsOptions& options) {
  const auto interval_ms = std::max<std::int64_t>(options.sample_interval.count(), 1);
  std::int64_t longest_window_ms = 0;
  for (const ThresholdCondition& c : ThresholdConditions(options.thresholds)) {
    longest_window_ms = std::max<std::int64_t>(longest_window_ms, c.window_seconds * 1000LL);
  }
  const auto for_window = static_cast<std::size_t>(longest_window_ms / interval_ms + 2);
  return std::max(options.history_points, for_window);
}

HistoryPoint PointOf(const PoolHealth& h) {
  const PoolStats& p = h.pool.stats;
  return {h.time,
          p.last_frame.frame,
          p.pooled_bytes,
          p.in_use_bytes,
          p.keys,
          p.outstanding_buffers,
          p.last_frame.allocations,
          p.last_frame.releases,
          h.timing.last_frame_seconds,
          p.allocations_total,
          p.releases_total,
          h.timing.frames,
          h.timing.overruns};
}

}  // namespace

DiagnosticsStore::DiagnosticsStore(std::string pool, DiagnosticsOptions options,
                                   ChangeListener on_change)
    : pool_(std::move(pool)),
      options_(options),
      on_change_(std::move(on_change)),
      capacity_(Capacity(options_)) {
  for (const ThresholdCondition& condition : ThresholdConditions(options_.thresholds)) {
    ConditionState state{condition, std::nullopt, std::nullopt, {}};
    state.verdict.alert = condition.alert;
    state.verdict.kind = condition.kind;
    conditions_.push_back(std::move(state));
  }
}

const HistoryPoint* DiagnosticsStore::PointAtOrAfter(
    std::chrono::system_clock::time_point time) const {
  const auto it =
      std::lower_bound(history_.begin(), history_.end(), time,
                       [](const HistoryPoint& point, std::chrono::system_clock::time_point t) {
                         return point.time < t;
                       });
  return it == history_.end() ? nullptr : &*it;
}

// Counters over a window are taken from the history point at the window's start (or the oldest
// there is, as Prometheus' increase() uses the samples it has).
double DiagnosticsStore::ValueOf(const ThresholdCondition& condition, const PoolHealth& h) const {
  const PoolStats& p = h.pool.stats;
  const auto window_start = h.time - std::chrono::seconds{condition.window_seconds};
  const HistoryPoint* start = PointAtOrAfter(window_start);
  switch (condition.kind) {
    case ConditionKind::kImbalance: {
      if (start == nullptr) return 0;
      const auto allocated = static_cast<double>(p.allocations_total - start->allocations_total);
      const auto released = static_cast<double>(p.releases_total - start->releases_total);
      return allocated - released;
    }
    case ConditionKind::kPooledBytes:
      return static_cast<double>(p.pooled_bytes);
    case ConditionKind::kKeys:
      return static_cast<double>(p.keys);
    case ConditionKind::kOverrunRatio: {
      if (start == nullptr || h.timing.frames <= start->frames_total) return 0;
      return static_cast<double>(h.timing.overruns - start->overruns_total) /
             static_cast<double>(h.timing.frames - start->frames_total);
    }
  }
  return 0;
}

void DiagnosticsStore::Receive(const HealthSnapshot& snapshot) {
  // Only the tick thread touches pool_index_; the pool keeps its place from frame to frame.
  if (pool_index_ >= snapshot.pools.size() || snapshot.pools[pool_index_].name != pool_) {
    const PoolSnapshot* found = snapshot.FindPool(pool_);
    if (found == nullptr) return;
    pool_index_ = static_cast<std::size_t>(found - snapshot.pools.data());
  }
  const PoolSnapshot& pool = snapshot.pools[pool_index_];
  std::vector<VerdictChange> changes;
  {
    std::scoped_lock lock(mutex_);
    if (!latest_) latest_.emplace();
    // Assigned field by field into the kept copy, so that its storage is reused.
    PoolHealth& health = *latest_;
    health.loop = snapshot.loop;
    health.period = snapshot.period;
    health.sequence = snapshot.sequence;
    health.time = snapshot.time;
    health.timing = snapshot.timing;
    health.pool = pool;
    // Samples stay on a grid of sample_interval, so frame jitter does not stretch the spacing.
    if (snapshot.time >= next_sample_) {
      history_.push_back(PointOf(health));
      while (history_.size() > capacity_) history_.pop_front();
      next_sample_ += options_.sample_interval;
      if (next_sample_ <= snapshot.time) next_sample_ = snapshot.time + options_.sample_interval;
    }

    const auto now = snapshot.time;
    for (ConditionState& state : conditions_) {
      const ThresholdCondition& c = state.condition;
      const double value = ValueOf(c, health);
      const auto track = [&](const Bound& bound, auto& since) {
        if (!bound.Holds(value)) {
          since.reset();
        } else if (!since) {
          since = now;
        }
        return since && now - *since >= std::chrono::seconds{c.for_seconds};
      };
      const bool warning_fires = track(c.warning, state.warning_since);
      const bool critical_fires = track(c.critical, state.critical_since);
      const Severity firing = critical_fires  ? Severity::kCritical
                              : warning_fires ? Severity::kWarning
                                              : Severity::kOk;
      const Severity holding = state.critical_since  ? Severity::kCritical
                               : state.warning_since ? Severity::kWarning
                                                     : Severity::kOk;
      Verdict& verdict = state.verdict;
      verdict.value = value;
      verdict.pending = holding > firing ? holding : Severity::kOk;
      if (firing != verdict.severity || verdict.since == std::chrono::system_clock::time_point{}) {
        if (firing != verdict.severity)
          changes.push_back({pool_, snapshot.loop, c.alert, verdict.severity, firing, value});
        verdict.severity = firing;
        verdict.since = now;
      }
    }
  }
  if (on_change_) {
    for (const VerdictChange& change : changes) on_change_(change);
  }
}

DiagnosticsReport DiagnosticsStore::Report() const {
  std::scoped_lock lock(mutex_);
  DiagnosticsReport report;
  report.pool = pool_;
  report.latest = latest_;
  for (const ConditionState& state : conditions_) report.verdicts.push_back(state.verdict);
  const std::size_t skip =
      history_.size() > options_.history_points ? history_.size() - options_.history_points : 0;
  report.history.assign(history_.begin() + static_cast<std::ptrdiff_t>(skip), history_.end());
  return report;
}

}  // namespace poolwatch

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

HistoryPoint PointOf(const HealthSnapshot& s) {
  return {s.time,
          s.pool.last_frame.frame,
          s.pool.pooled_bytes,
          s.pool.in_use_bytes,
          s.pool.keys,
          s.pool.outstanding_buffers,
          s.pool.last_frame.allocations,
          s.pool.last_frame.releases,
          s.health.last_frame_seconds,
          s.pool.allocations_total,
          s.pool.releases_total,
          s.health.frames,
          s.health.overruns};
}

}  // namespace

DiagnosticsStore::DiagnosticsStore(DiagnosticsOptions options, ChangeListener on_change)
    : options_(options), on_change_(std::move(on_change)), capacity_(Capacity(options_)) {
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
double DiagnosticsStore::ValueOf(const ThresholdCondition& condition,
                                 const HealthSnapshot& s) const {
  const auto window_start = s.time - std::chrono::seconds{condition.window_seconds};
  const HistoryPoint* start = PointAtOrAfter(window_start);
  switch (condition.kind) {
    case ConditionKind::kImbalance: {
      if (start == nullptr) return 0;
      const auto allocated =
          static_cast<double>(s.pool.allocations_total - start->allocations_total);
      const auto released = static_cast<double>(s.pool.releases_total - start->releases_total);
      return allocated - released;
    }
    case ConditionKind::kPooledBytes:
      return static_cast<double>(s.pool.pooled_bytes);
    case ConditionKind::kKeys:
      return static_cast<double>(s.pool.keys);
    case ConditionKind::kOverrunRatio: {
      if (start == nullptr || s.health.frames <= start->frames_total) return 0;
      return static_cast<double>(s.health.overruns - start->overruns_total) /
             static_cast<double>(s.health.frames - start->frames_total);
    }
  }
  return 0;
}

void DiagnosticsStore::Receive(const HealthSnapshot& snapshot) {
  std::vector<VerdictChange> changes;
  {
    std::scoped_lock lock(mutex_);
    latest_ = snapshot;
    // Samples stay on a grid of sample_interval, so frame jitter does not stretch the spacing.
    if (snapshot.time >= next_sample_) {
      history_.push_back(PointOf(snapshot));
      while (history_.size() > capacity_) history_.pop_front();
      next_sample_ += options_.sample_interval;
      if (next_sample_ <= snapshot.time) next_sample_ = snapshot.time + options_.sample_interval;
    }

    const auto now = snapshot.time;
    for (ConditionState& state : conditions_) {
      const ThresholdCondition& c = state.condition;
      const double value = ValueOf(c, snapshot);
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
          changes.push_back({c.alert, verdict.severity, firing, value});
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
  report.latest = latest_;
  for (const ConditionState& state : conditions_) report.verdicts.push_back(state.verdict);
  const std::size_t skip =
      history_.size() > options_.history_points ? history_.size() - options_.history_points : 0;
  report.history.assign(history_.begin() + static_cast<std::ptrdiff_t>(skip), history_.end());
  return report;
}

}  // namespace poolwatch

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "poolwatch/alert_rules.h"
#include "poolwatch/health_monitor.h"

namespace poolwatch {

struct DiagnosticsOptions {
  std::size_t history_points = 300;                 // points kept for charts
  std::chrono::milliseconds sample_interval{1000};  // time between two history points
  AlertThresholds thresholds{};                     // the same as the shipped rules'

  friend bool operator==(const DiagnosticsOptions&, const DiagnosticsOptions&) = default;
};

// One point of recent history, sampled every sample_interval.
struct HistoryPoint {
  std::chrono::system_clock::time_point time;
  std::uint64_t frame = 0;
  std::uint64_t pooled_bytes = 0;
  std::uint64_t in_use_bytes = 0;
  std::uint64_t keys = 0;
  std::uint64_t outstanding_buffers = 0;
  std::uint64_t frame_allocations = 0;  // in the frame sampled
  std::uint64_t frame_releases = 0;
  double frame_seconds = 0;
  // Counters, for the windowed conditions.
  std::uint64_t allocations_total = 0;
  std::uint64_t releases_total = 0;
  std::uint64_t frames_total = 0;
  std::uint64_t overruns_total = 0;
};

// The verdict on one threshold condition, as the shipped Prometheus rules would give it: a level
// fires once its bound has held for the condition's `for`.
struct Verdict {
  std::string alert;
  ConditionKind kind = ConditionKind::kImbalance;
  double value = 0;                   // the value the bounds are compared with, now
  Severity severity = Severity::kOk;  // firing level
  Severity pending = Severity::kOk;   // a higher level whose bound holds, not yet long enough
  std::chrono::system_clock::time_point since;  // when `severity` began
};

struct VerdictChange {
  std::string pool;
  std::string loop;
  std::string alert;
  Severity from = Severity::kOk;
  Severity to = Severity::kOk;
  double value = 0;
};

// What the store keeps of the latest snapshot: its pool, and the timing of the pool's loop.
struct PoolHealth {
  std::string loop;
  std::chrono::nanoseconds period{};  // the loop's, for ages in seconds
  std::uint64_t sequence = 0;         // the loop's snapshot number
  std::chrono::system_clock::time_point time;
  LoopStats timing;
  PoolSnapshot pool;
};

struct DiagnosticsReport {
  std::string pool;
  std::optional<PoolHealth> latest;
  std::vector<Verdict> verdicts;
  std::vector<HistoryPoint> history;  // oldest first, at most history_points
};

// Diagnosis of one pool. Receives its loop's health snapshots and keeps what diagnosis needs:
// the pool's latest state (with its attribution of held buffers by site), a bounded ring of
// history, and verdicts on the shipped alert thresholds with their `for` durations, evaluated
// in-process so that they agree with Alertmanager without Prometheus (the overrun verdict is the
// pool's loop's). A verdict change is reported once, to the listener.
//
// Cost per snapshot: O(conditions + log(history)), whatever the number of buffers.
// Thread-safety: Receive() on the pool's loop thread (the listener runs there), Report() from
// any thread.
class DiagnosticsStore {
 public:
  using ChangeListener = std::function<void(const VerdictChange&)>;

  explicit DiagnosticsStore(std::string pool, DiagnosticsOptions options = {},
                            ChangeListener on_change = {});

  // Snapshots of loops that do not hold this pool are ignored.
  void Receive(const HealthSnapshot& snapshot);
  DiagnosticsReport Report() const;
  const std::string& pool() const { return pool_; }
  const DiagnosticsOptions& options() const { return options_; }

 private:
  struct ConditionState {
    ThresholdCondition condition;
    std::optional<std::chrono::system_clock::time_point> warning_since;
    std::optional<std::chrono::system_clock::time_point> critical_since;
    Verdict verdict;
  };

  double ValueOf(const ThresholdCondition& condition, const PoolHealth& health) const;
  const HistoryPoint* PointAtOrAfter(std::chrono::system_clock::time_point time) const;

  const std::string pool_;
  const DiagnosticsOptions options_;
  const ChangeListener on_change_;
  const std::size_t capacity_;  // history kept: enough for charts and for the longest window

  std::size_t pool_index_ = 0;  // where the pool was in the last snapshot, tried first

  mutable std::mutex mutex_;
  std::optional<PoolHealth> latest_;
  std::deque<HistoryPoint> history_;
  std::chrono::system_clock::time_point next_sample_{};
  std::vector<ConditionState> conditions_;
};

}  // namespace poolwatch

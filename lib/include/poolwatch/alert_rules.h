#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace poolwatch {

enum class Severity : std::uint8_t { kOk, kWarning, kCritical };

std::string_view SeverityName(Severity severity);

// One side of a threshold: "value > bound" or "value >= bound".
struct Bound {
  enum class Op : std::uint8_t { kGreater, kGreaterOrEqual };
  Op op = Op::kGreater;
  double value = 0;

  bool Holds(double x) const { return op == Op::kGreater ? x > value : x >= value; }
  std::string PromQL() const;  // e.g. "> 52428800"

  friend bool operator==(const Bound&, const Bound&) = default;
};

// The sprint's alert thresholds: the one definition from which both the Prometheus rule file
// and the in-process verdicts (DiagnosticsStore) are derived.
struct AlertThresholds {
  // Allocations minus releases over the window (every frame counts, not a sampled one):
  // any imbalance warns, 10 or more is critical.
  Bound imbalance_warning{Bound::Op::kGreater, 0};
  Bound imbalance_critical{Bound::Op::kGreaterOrEqual, 10};
  std::uint32_t imbalance_window_seconds = 300;
  std::uint32_t imbalance_for_seconds = 300;
  Bound pooled_bytes_warning{Bound::Op::kGreater, 50.0 * 1024 * 1024};
  Bound pooled_bytes_critical{Bound::Op::kGreater, 100.0 * 1024 * 1024};
  std::uint32_t pooled_bytes_for_seconds = 300;
  Bound keys_warning{Bound::Op::kGreater, 50};
  Bound keys_critical{Bound::Op::kGreater, 100};
  std::uint32_t keys_for_seconds = 300;
  // Beyond the sprint's table: the share of frames that miss their deadline, over 5 minutes.
  Bound overrun_ratio_warning{Bound::Op::kGreater, 0.01};
  Bound overrun_ratio_critical{Bound::Op::kGreater, 0.10};
  std::uint32_t overrun_window_seconds = 300;
  std::uint32_t overrun_for_seconds = 600;
  // The frame-time percentile operators of game and simulation servers watch first: a loop
  // whose p99 frame takes longer than `frame_time_budget_ratio` × its tick period over the
  // window warns. The period is a bucket bound of poolwatch_frame_duration_seconds, so at a
  // ratio of 1 the comparison is exact: more than 1 % of the frames took longer than the period.
  double frame_time_quantile = 0.99;
  double frame_time_budget_ratio = 1;
  std::uint32_t frame_time_window_seconds = 300;
  std::uint32_t frame_time_for_seconds = 600;

  friend bool operator==(const AlertThresholds&, const AlertThresholds&) = default;
};

// What a pool threshold condition measures.
enum class ConditionKind : std::uint8_t { kImbalance, kPooledBytes, kKeys, kOverrunRatio };

// One threshold condition: an alert name shared by its warning and critical rules.
struct ThresholdCondition {
  ConditionKind kind;
  std::string alert;  // e.g. "PoolwatchPoolImbalance"
  Bound warning;
  Bound critical;
  std::uint32_t for_seconds = 0;     // how long a level must hold before its alert fires
  std::uint32_t window_seconds = 0;  // the window a rate or increase is taken over; 0: none

  Severity Evaluate(double value) const {
    if (critical.Holds(value)) return Severity::kCritical;
    if (warning.Holds(value)) return Severity::kWarning;
    return Severity::kOk;
  }
};

std::vector<ThresholdCondition> ThresholdConditions(const AlertThresholds& thresholds);

struct RuleOptions {
  AlertThresholds thresholds{};
  std::string job = "poolwatch";  // the scrape job, for the target-down alert
  // Where docs/runbooks.md is published; each alert links to its section.
  std::string runbook_url = "https://github.com/poolwatch/poolwatch/blob/main/docs/runbooks.md";
};

// The Prometheus rule file (YAML) for these options: the alerting rules, and the recording rules
// of the fleet views (group poolwatch.fleet, named level:metric:operations).
std::string PrometheusRuleFile(const RuleOptions& options);

}  // namespace poolwatch

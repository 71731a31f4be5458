#include "poolwatch/alert_rules.h"

#include <gtest/gtest.h>

namespace poolwatch {
namespace {

const ThresholdCondition& Find(const std::vector<ThresholdCondition>& conditions,
                               ConditionKind kind) {
  for (const auto& condition : conditions) {
    if (condition.kind == kind) return condition;
  }
  throw std::runtime_error("no such condition");
}

TEST(AlertRulesTest, SprintThresholdsAtTheirBoundaries) {
  const auto conditions = ThresholdConditions(AlertThresholds{});
  const auto& imbalance = Find(conditions, ConditionKind::kImbalance);
  EXPECT_EQ(imbalance.Evaluate(0), Severity::kOk);
  EXPECT_EQ(imbalance.Evaluate(1), Severity::kWarning);
  EXPECT_EQ(imbalance.Evaluate(9), Severity::kWarning);
  EXPECT_EQ(imbalance.Evaluate(10), Severity::kCritical);
  EXPECT_EQ(imbalance.Evaluate(-3), Severity::kOk);

  const auto& bytes = Find(conditions, ConditionKind::kPooledBytes);
  EXPECT_EQ(bytes.Evaluate(50.0 * 1024 * 1024), Severity::kOk);
  EXPECT_EQ(bytes.Evaluate(50.0 * 1024 * 1024 + 1), Severity::kWarning);
  EXPECT_EQ(bytes.Evaluate(100.0 * 1024 * 1024), Severity::kWarning);
  EXPECT_EQ(bytes.Evaluate(100.0 * 1024 * 1024 + 1), Severity::kCritical);

  const auto& keys = Find(conditions, ConditionKind::kKeys);
  EXPECT_EQ(keys.Evaluate(50), Severity::kOk);
  EXPECT_EQ(keys.Evaluate(51), Severity::kWarning);
  EXPECT_EQ(keys.Evaluate(100), Severity::kWarning);
  EXPECT_EQ(keys.Evaluate(101), Severity::kCritical);
}

TEST(AlertRulesTest, RuleExpressionsComeFromTheSameBounds) {
  AlertThresholds thresholds;
  thresholds.keys_warning = {Bound::Op::kGreaterOrEqual, 7};
  thresholds.pooled_bytes_critical = {Bound::Op::kGreater, 0.5};
  const std::string rules = PrometheusRuleFile({thresholds, "myjob", "https://x/runbooks.md"});
  EXPECT_NE(rules.find("expr: 'poolwatch_pool_keys >= 7'"), std::string::npos) << rules;
  EXPECT_NE(rules.find("expr: 'poolwatch_pool_pooled_bytes > 0.5'"), std::string::npos);
  EXPECT_NE(rules.find("expr: 'up{job=\"myjob\"} == 0'"), std::string::npos);
  EXPECT_NE(rules.find("runbook_url: 'https://x/runbooks.md#poolwatchpoolkeys'"),
            std::string::npos);
}

// Every member of the public options has an initializer, so that a designated initializer may
// name any few of them: without one, g++ -Wextra warns of the member left out (an error here).
TEST(AlertRulesTest, OptionsNamingOneFieldKeepTheOtherDefaults) {
  const std::string rules = PrometheusRuleFile({.job = "myjob"});
  EXPECT_NE(rules.find("expr: 'up{job=\"myjob\"} == 0'"), std::string::npos) << rules;
  EXPECT_NE(rules.find("expr: 'poolwatch_pool_pooled_bytes > 52428800'"), std::string::npos);
  EXPECT_NE(rules.find("runbook_url: 'https://github.com/poolwatch/poolwatch/blob/main/docs/"
                       "runbooks.md#poolwatchpoolkeys'"),
            std::string::npos);
}

TEST(AlertRulesTest, FrameTimeAlertTakesItsQuantileRatioAndWindows) {
  AlertThresholds thresholds;
  thresholds.frame_time_quantile = 0.995;
  thresholds.frame_time_budget_ratio = 1.5;
  thresholds.frame_time_window_seconds = 120;
  thresholds.frame_time_for_seconds = 900;
  const std::string rules = PrometheusRuleFile({thresholds, "poolwatch", "https://x"});
  EXPECT_NE(rules.find("      - alert: PoolwatchLoopFrameTime\n"
                       "        expr: |-\n"
                       "          histogram_quantile(0.995, "
                       "rate(poolwatch_frame_duration_seconds_bucket[2m]))\n"
                       "          > 1.5 * poolwatch_tick_period_seconds\n"
                       "        for: 15m\n"
                       "        labels:\n"
                       "          severity: warning\n"),
            std::string::npos)
      << rules;
  EXPECT_NE(rules.find("The p99.5 frame time of loop {{ $labels.loop }} over the last 2m is "
                       "{{ $value | humanizeDuration }}, longer than 1.5 × its tick period"),
            std::string::npos);
  EXPECT_NE(rules.find("more than 0.5 % of its frames"), std::string::npos);
}

TEST(AlertRulesTest, FleetRecordingRulesTakeTheAlertsWindowsAndTheirNames) {
  AlertThresholds thresholds;
  thresholds.imbalance_window_seconds = 600;
  thresholds.overrun_window_seconds = 90;
  const std::string rules = PrometheusRuleFile({thresholds, "poolwatch", "https://x"});
  EXPECT_NE(rules.find("      - record: instance_pool:poolwatch_pool_imbalance:increase10m\n"
                       "        expr: 'increase(poolwatch_pool_allocations_total[10m]) - "
                       "increase(poolwatch_pool_releases_total[10m])'\n"),
            std::string::npos)
      << rules;
  EXPECT_NE(rules.find("      - record: job_pool:poolwatch_pool_imbalance:increase10m\n"
                       "        expr: 'sum by (job, pool) "
                       "(instance_pool:poolwatch_pool_imbalance:increase10m)'\n"),
            std::string::npos);
  // The ratio divides the two summed rates, each recorded on its own.
  EXPECT_NE(
      rules.find("      - record: job_loop:poolwatch_frame_overruns_per_frames:ratio_rate90s\n"
                 "        expr: 'job_loop:poolwatch_frame_overruns:rate90s / "
                 "job_loop:poolwatch_frames:rate90s'\n"),
      std::string::npos);
  EXPECT_NE(rules.find("expr: 'sum by (job, loop) (rate(poolwatch_frames_total[90s]))'"),
            std::string::npos);
  // The alert uses the same window.
  EXPECT_NE(rules.find("expr: 'increase(poolwatch_pool_allocations_total[10m]) - "
                       "increase(poolwatch_pool_releases_total[10m]) > 0'"),
            std::string::npos);
}

TEST(AlertRulesTest, QuotesInTextAreEscapedForYaml) {
  const std::string rules = PrometheusRuleFile({});
  // "old keys' free buffers" inside a single-quoted scalar doubles the quote.
  EXPECT_NE(rules.find("old keys'' free buffers"), std::string::npos);
}

TEST(AlertRulesTest, BoundsPrintAsPromQL) {
  EXPECT_EQ((Bound{Bound::Op::kGreater, 52428800}.PromQL()), "> 52428800");
  EXPECT_EQ((Bound{Bound::Op::kGreaterOrEqual, 10}.PromQL()), ">= 10");
  EXPECT_EQ((Bound{Bound::Op::kGreater, 0.01}.PromQL()), "> 0.01");
}

}  // namespace
}  // namespace poolwatch

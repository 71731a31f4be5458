#include "poolwatch/alert_rules.h"

#include <array>
#include <cmath>
#include <sstream>

namespace poolwatch {

namespace {

// Integers as integers ("52428800"), others in the shortest form that reads back ("0.01").
std::string Number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  std::ostringstream out;
  for (int precision = 1; precision < 17; ++precision) {
    out.str("");
    out.precision(precision);
    out << value;
    if (std::stod(out.str()) == value) break;
  }
  return out.str();
}

// A YAML single-quoted scalar: only the quote itself needs escaping (by doubling).
std::string Quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string Anchor(std::string_view alert) {
  std::string anchor;
  for (char c : alert) anchor += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return anchor;
}

struct Rule {
  std::string alert;
  std::string expr;
  std::string for_duration;
  Severity severity;
  std::string summary;
  std::string description;
};

// A recording rule: `record` names the result by the `level:metric:operations` convention.
struct Recording {
  std::string record;
  std::string expr;
};

struct Group {
  std::string name;
  std::vector<Rule> rules;
  std::vector<Recording> recordings;
};

std::string Window(std::uint32_t seconds) {
  return seconds % 60 == 0 ? std::to_string(seconds / 60) + "m" : std::to_string(seconds) + "s";
}

// Buffers allocated and not released over `window`: the imbalance alert's input, and the
// per-instance fleet view.
std::string ImbalanceExpr(const std::string& window) {
  return "increase(poolwatch_pool_allocations_total[" + window +
         "]) - increase(poolwatch_pool_releases_total[" + window + "])";
}

// The fleet views: what a dashboard or a global Prometheus needs from many instances, computed
// where the raw series are. Windows come from the same thresholds as the alerts. Ratios record
// their numerator and denominator, so that whoever aggregates further sums both and never
// averages a ratio.
Group FleetGroup(const AlertThresholds& t) {
  const std::string imbalance = Window(t.imbalance_window_seconds);
  const std::string overrun = Window(t.overrun_window_seconds);
  const std::string instance_imbalance =
      "instance_pool:poolwatch_pool_imbalance:increase" + imbalance;
  const std::string overruns = "job_loop:poolwatch_frame_overruns:rate" + overrun;
  const std::string frames = "job_loop:poolwatch_frames:rate" + overrun;
  return {
      "poolwatch.fleet",
      {},
      {
          {instance_imbalance, ImbalanceExpr(imbalance)},
          {"job_pool:poolwatch_pool_imbalance:increase" + imbalance,
           "sum by (job, pool) (" + instance_imbalance + ")"},
          {"job_pool:poolwatch_pool_pooled_bytes:sum",
           "sum by (job, pool) (poolwatch_pool_pooled_bytes)"},
          {"job_pool:poolwatch_pool_pooled_bytes:max",
           "max by (job, pool) (poolwatch_pool_pooled_bytes)"},
          {"job_pool:poolwatch_pool_keys:max", "max by (job, pool) (poolwatch_pool_keys)"},
          {overruns, "sum by (job, loop) (rate(poolwatch_frame_overruns_total[" + overrun + "]))"},
          {frames, "sum by (job, loop) (rate(poolwatch_frames_total[" + overrun + "]))"},
          {"job_loop:poolwatch_frame_overruns_per_frames:ratio_rate" + overrun,
           overruns + " / " + frames},
      }};
}

std::vector<Group> Groups(const RuleOptions& options) {
  const AlertThresholds& t = options.thresholds;
  Group pool{"poolwatch.pool", {}, {}};
  Group loop{"poolwatch.loop", {}, {}};
  // Warning and critical of each threshold condition share the alert name and differ in
  // severity; their bounds and `for` come from ThresholdConditions, the one definition.
  for (const ThresholdCondition& c : ThresholdConditions(t)) {
    const std::string window = Window(c.window_seconds);
    std::string expr;
    std::string summary;
    std::string description;
    switch (c.kind) {
      case ConditionKind::kImbalance:
        expr = ImbalanceExpr(window);
        summary = "Pool {{ $labels.pool }} on {{ $labels.instance }} leaks buffers";
        description =
            "{{ $value | humanize }} more buffers were allocated than released in pool "
            "{{ $labels.pool }} over the last " +
            window +
            ". Buffers held across frames and never released accumulate; see "
            "poolwatch_pool_outstanding_buffers."
            // The page names where to look: the site holding the most bytes, by query.
            "{{ with printf \"topk(1, poolwatch_pool_outstanding_site_bytes{instance=%q, "
            "pool=%q})\" $labels.instance $labels.pool | query }}{{ range . }} Most held bytes "
            "come from site {{ .Labels.site }} ({{ .Value | humanize1024 }}B).{{ end }}{{ end }}";
        break;
      case ConditionKind::kPooledBytes:
        expr = "poolwatch_pool_pooled_bytes";
        summary = "Pool {{ $labels.pool }} on {{ $labels.instance }} holds too much memory";
        description =
            "Pool {{ $labels.pool }} owns {{ $value | humanize1024 }}B (free and in use). "
            "Compare poolwatch_pool_in_use_bytes: if it is much lower, free buffers of old keys "
            "are piling up (bloat).";
        break;
      case ConditionKind::kKeys:
        expr = "poolwatch_pool_keys";
        summary = "Pool {{ $labels.pool }} on {{ $labels.instance }} has too many buffer keys";
        description =
            "Pool {{ $labels.pool }} has {{ $value }} distinct (format, size) keys. Domain "
            "changes leave old keys' free buffers behind unless trimming is enabled.";
        break;
      case ConditionKind::kOverrunRatio:
        expr = "rate(poolwatch_frame_overruns_total[" + window + "]) / ";
        expr += "rate(poolwatch_frames_total[" + window + "])";
        summary = "Loop {{ $labels.loop }} on {{ $labels.instance }} misses frame deadlines";
        description =
            "{{ $value | humanizePercentage }} of loop {{ $labels.loop }}'s frames ended after "
            "their tick's deadline over the last " +
            window + ".";
        break;
    }
    Group& group = c.kind == ConditionKind::kOverrunRatio ? loop : pool;
    for (const auto& [bound, severity] :
         {std::pair{c.warning, Severity::kWarning}, std::pair{c.critical, Severity::kCritical}}) {
      group.rules.push_back({c.alert, expr + " " + bound.PromQL(), Window(c.for_seconds), severity,
                             summary, description});
    }
  }

  pool.rules.push_back(
      {"PoolwatchPoolAllocationFailures",
       "increase(poolwatch_pool_allocation_failures_total[5m]) > 0", "1m", Severity::kCritical,
       "Pool {{ $labels.pool }} on {{ $labels.instance }} refuses allocations",
       "{{ $value | humanize }} allocations were refused in the last 5m because pool "
       "{{ $labels.pool }} reached its byte cap (pool.max_bytes)."});
  pool.rules.push_back(
      {"PoolwatchPoolPooledBytesGrowth",
       "predict_linear(poolwatch_pool_pooled_bytes[1h], 4 * 3600) " +
           t.pooled_bytes_critical.PromQL() +
           "\nand on (job, instance) (time() - process_start_time_seconds) > 4200",
       "30m", Severity::kWarning,
       "Pool {{ $labels.pool }} on {{ $labels.instance }} grows towards its critical size",
       "At the growth of the last hour, pool {{ $labels.pool }} will own more than " +
           Number(t.pooled_bytes_critical.value) +
           " bytes within 4h (predicted {{ $value | humanize1024 }}B). The first 10 minutes "
           "after a start (warm-up) are not in the window."});

  const std::string frame_window = Window(t.frame_time_window_seconds);
  const std::string budget =
      t.frame_time_budget_ratio == 1
          ? std::string("poolwatch_tick_period_seconds")
          : Number(t.frame_time_budget_ratio) + " * poolwatch_tick_period_seconds";
  const std::string percentile = "p" + Number(std::round(t.frame_time_quantile * 1e4) / 1e2);
  const std::string slowest = Number(std::round((1 - t.frame_time_quantile) * 1e4) / 1e2);
  loop.rules.push_back(
      {"PoolwatchLoopFrameTime",
       "histogram_quantile(" + Number(t.frame_time_quantile) +
           ", rate(poolwatch_frame_duration_seconds_bucket[" + frame_window + "]))\n> " + budget,
       Window(t.frame_time_for_seconds), Severity::kWarning,
       "Loop {{ $labels.loop }} on {{ $labels.instance }} has slow frames",
       "The " + percentile + " frame time of loop {{ $labels.loop }} over the last " +
           frame_window + " is {{ $value | humanizeDuration }}, longer than " +
           (t.frame_time_budget_ratio == 1
                ? std::string("its tick period")
                : Number(t.frame_time_budget_ratio) + " × its tick period") +
           " (poolwatch_tick_period_seconds): more than " + slowest +
           " % of its frames take longer than the loop can afford, and each delays the ticks "
           "after it."});
  loop.rules.push_back(
      {"PoolwatchLoopStalled", "rate(poolwatch_frames_total[2m]) == 0", "2m", Severity::kCritical,
       "Loop {{ $labels.loop }} on {{ $labels.instance }} executes no frames",
       "poolwatch_frames_total of loop {{ $labels.loop }} has not increased for 2m "
       "(rate {{ $value }}/s) although the target is scraped: its tick thread is "
       "stuck."});

  Group target{"poolwatch.target", {}, {}};
  target.rules.push_back(
      {"PoolwatchTargetDown", "up{job=\"" + options.job + "\"} == 0", "1m", Severity::kCritical,
       "poolwatchd target {{ $labels.instance }} is down",
       "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}, up = "
       "{{ $value }}): no pool metrics and no pool alerts from it."});
  target.rules.push_back(
      {"PoolwatchConfigReloadFailed", "poolwatch_config_last_reload_successful == 0", "10m",
       Severity::kWarning, "poolwatchd on {{ $labels.instance }} runs on an older config",
       "The last configuration reload of {{ $labels.instance }} was refused "
       "(poolwatch_config_last_reload_successful = {{ $value }}) more than 10m ago: it runs on "
       "the configuration it had before, not on its config file as that is now."});
  return {pool, loop, target, FleetGroup(t)};
}

}  // namespace

std::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kOk:
      return "ok";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "ok";
}

std::string Bound::PromQL() const { return (op == Op::kGreater ? "> " : ">= ") + Number(value); }

std::vector<ThresholdCondition> ThresholdConditions(const AlertThresholds& t) {
  return {
      {ConditionKind::kImbalance, "PoolwatchPoolImbalance", t.imbalance_warning,
       t.imbalance_critical, t.imbalance_for_seconds, t.imbalance_window_seconds},
      {ConditionKind::kPooledBytes, "PoolwatchPoolPooledBytes", t.pooled_bytes_warning,
       t.pooled_bytes_critical, t.pooled_bytes_for_seconds, 0},
      {ConditionKind::kKeys, "PoolwatchPoolKeys", t.keys_warning, t.keys_critical,
       t.keys_for_seconds, 0},
      {ConditionKind::kOverrunRatio, "PoolwatchFrameOverruns", t.overrun_ratio_warning,
       t.overrun_ratio_critical, t.overrun_for_seconds, t.overrun_window_seconds},
  };
}

std::string PrometheusRuleFile(const RuleOptions& options) {
  std::ostringstream out;
  out << "# Generated by `poolwatchd --print-rules` from poolwatch's alert thresholds\n"
         "# (lib/include/poolwatch/alert_rules.h). Do not edit: change the thresholds and\n"
         "# regenerate. A test fails when this file is stale. The alerts come first; the group\n"
         "# poolwatch.fleet records the fleet views (docs/scaling.md).\n"
         "groups:\n";
  for (const Group& group : Groups(options)) {
    out << "  - name: " << group.name << "\n    rules:\n";
    for (const Recording& recording : group.recordings) {
      out << "      - record: " << recording.record << "\n"
          << "        expr: " << Quote(recording.expr) << "\n";
    }
    for (const Rule& rule : group.rules) {
      out << "      - alert: " << rule.alert << "\n";
      if (rule.expr.find('\n') != std::string::npos) {
        out << "        expr: |-\n";
        std::istringstream lines(rule.expr);
        for (std::string line; std::getline(lines, line);) out << "          " << line << "\n";
      } else {
        out << "        expr: " << Quote(rule.expr) << "\n";
      }
      out << "        for: " << rule.for_duration << "\n"
          << "        labels:\n"
          << "          severity: " << SeverityName(rule.severity) << "\n"
          << "        annotations:\n"
          << "          summary: " << Quote(rule.summary) << "\n"
          << "          description: " << Quote(rule.description) << "\n"
          << "          runbook_url: " << Quote(options.runbook_url + "#" + Anchor(rule.alert))
          << "\n";
    }
  }
  return out.str();
}

}  // namespace poolwatch

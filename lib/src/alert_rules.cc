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

struct Group {
  std::string name;
  std::vector<Rule> rules;
};

std::string Window(std::uint32_t seconds) {
  return seconds % 60 == 0 ? std::to_string(seconds / 60) + "m" : std::to_string(seconds) + "s";
}

std::vector<Group> Groups(const RuleOptions& options) {
  const AlertThresholds& t = options.thresholds;
  const std::string window = Window(t.imbalance_window_seconds);
  const std::string imbalance = "increase(poolwatch_pool_allocations_total[" + window +
                                "]) - increase(poolwatch_pool_releases_total[" + window + "])";
  const std::string overrun_ratio =
      "rate(poolwatch_frame_overruns_total[5m]) / rate(poolwatch_frames_total[5m])";

  const auto pair = [](const std::string& alert, const std::string& expr, Bound warning,
                       Bound critical, const std::string& for_duration, const std::string& summary,
                       const std::string& description) {
    return std::array<Rule, 2>{Rule{alert, expr + " " + warning.PromQL(), for_duration,
                                    Severity::kWarning, summary, description},
                               Rule{alert, expr + " " + critical.PromQL(), for_duration,
                                    Severity::kCritical, summary, description}};
  };

  Group pool{"poolwatch.pool", {}};
  for (auto rules : {
           pair("PoolwatchPoolImbalance", imbalance, t.imbalance_warning, t.imbalance_critical,
                "5m", "Pool {{ $labels.pool }} on {{ $labels.instance }} leaks buffers",
                "{{ $value | humanize }} more buffers were allocated than released in pool "
                "{{ $labels.pool }} over the last " +
                    window +
                    ". Buffers held across frames and never released accumulate; see "
                    "poolwatch_pool_outstanding_buffers."),
           pair("PoolwatchPoolPooledBytes", "poolwatch_pool_pooled_bytes", t.pooled_bytes_warning,
                t.pooled_bytes_critical, "5m",
                "Pool {{ $labels.pool }} on {{ $labels.instance }} holds too much memory",
                "Pool {{ $labels.pool }} owns {{ $value | humanize1024 }}B (free and in use). "
                "Compare poolwatch_pool_in_use_bytes: if it is much lower, free buffers of old "
                "keys are piling up (bloat)."),
           pair("PoolwatchPoolKeys", "poolwatch_pool_keys", t.keys_warning, t.keys_critical, "5m",
                "Pool {{ $labels.pool }} on {{ $labels.instance }} has too many buffer keys",
                "Pool {{ $labels.pool }} has {{ $value }} distinct (format, size) keys. Domain "
                "changes leave old keys' free buffers behind unless trimming is enabled."),
       }) {
    pool.rules.insert(pool.rules.end(), rules.begin(), rules.end());
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

  Group loop{"poolwatch.loop", {}};
  for (const Rule& rule :
       pair("PoolwatchFrameOverruns", overrun_ratio, t.overrun_ratio_warning,
            t.overrun_ratio_critical, "10m",
            "poolwatchd on {{ $labels.instance }} misses frame deadlines",
            "{{ $value | humanizePercentage }} of frames ended after their tick's deadline over "
            "the last 5m.")) {
    loop.rules.push_back(rule);
  }
  loop.rules.push_back({"PoolwatchLoopStalled", "rate(poolwatch_frames_total[2m]) == 0", "2m",
                        Severity::kCritical,
                        "poolwatchd on {{ $labels.instance }} executes no frames",
                        "poolwatch_frames_total has not increased for 2m (rate {{ $value }}/s) "
                        "although the target is scraped: the tick loop is stuck."});

  Group target{"poolwatch.target", {}};
  target.rules.push_back(
      {"PoolwatchTargetDown", "up{job=\"" + options.job + "\"} == 0", "1m", Severity::kCritical,
       "poolwatchd target {{ $labels.instance }} is down",
       "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}, up = "
       "{{ $value }}): no pool metrics and no pool alerts from it."});
  return {pool, loop, target};
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
       t.imbalance_critical},
      {ConditionKind::kPooledBytes, "PoolwatchPoolPooledBytes", t.pooled_bytes_warning,
       t.pooled_bytes_critical},
      {ConditionKind::kKeys, "PoolwatchPoolKeys", t.keys_warning, t.keys_critical},
      {ConditionKind::kOverrunRatio, "PoolwatchFrameOverruns", t.overrun_ratio_warning,
       t.overrun_ratio_critical},
  };
}

std::string PrometheusRuleFile(const RuleOptions& options) {
  std::ostringstream out;
  out << "# Generated by `poolwatchd --print-rules` from poolwatch's alert thresholds\n"
         "# (lib/include/poolwatch/alert_rules.h). Do not edit: change the thresholds and\n"
         "# regenerate. A test fails when this file is stale.\n"
         "groups:\n";
  for (const Group& group : Groups(options)) {
    out << "  - name: " << group.name << "\n    rules:\n";
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

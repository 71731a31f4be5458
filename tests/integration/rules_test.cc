// The shipped Prometheus and Alertmanager files, checked by the real promtool and amtool.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "daemon_process.h"

namespace poolwatch::testing {
namespace {

const std::string kSource = POOLWATCH_SOURCE_DIR;

TEST(RulesTest, CheckedInRuleFileIsTheGeneratedOne) {
  const RunResult generated = RunPoolwatchd({"--print-rules"});
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  EXPECT_EQ(generated.output, ReadFile(kSource + "/config/prometheus/poolwatch.rules.yml"))
      << "config/prometheus/poolwatch.rules.yml is stale: regenerate it with\n"
         "  poolwatchd --print-rules > config/prometheus/poolwatch.rules.yml";
}

TEST(RulesTest, PromtoolAcceptsTheGeneratedRules) {
  const RunResult check =
      RunCommand("promtool check rules /dev/stdin", RunPoolwatchd({"--print-rules"}).output);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("SUCCESS: 22 rules found"), std::string::npos) << check.output;
}

TEST(RulesTest, PromtoolRuleUnitTestsPass) {
  const RunResult test = RunCommand("promtool test rules '" + kSource +
                                    "/config/prometheus/tests/poolwatch.rules.test.yml'");
  EXPECT_EQ(test.exit_code, 0) << test.output;
  EXPECT_NE(test.output.find("SUCCESS"), std::string::npos) << test.output;
}

TEST(RulesTest, EveryAlertHasForSeverityAndTheAnnotationsOperatorsExpect) {
  const std::string rules = ReadFile(kSource + "/config/prometheus/poolwatch.rules.yml");
  std::istringstream lines(rules);
  int alerts = 0;
  std::string block;
  const auto check = [&] {
    if (block.empty()) return;
    ++alerts;
    EXPECT_NE(block.find("\n        for: "), std::string::npos) << block;
    EXPECT_NE(block.find("severity: warning"), block.find("severity: critical")) << block;
    EXPECT_NE(block.find("summary: '"), std::string::npos) << block;
    EXPECT_NE(block.find("{{ $labels."), std::string::npos) << block;
    EXPECT_NE(block.find("{{ $value"), std::string::npos) << block;
    EXPECT_NE(block.find("runbook_url: '"), std::string::npos) << block;
  };
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("      - alert: ")) {
      check();
      block.clear();
    }
    if (line.starts_with("      - alert: ") || !block.empty()) block += line + "\n";
  }
  check();
  EXPECT_EQ(alerts, 14);
}

TEST(RulesTest, EveryRunbookLinkHasASection) {
  const std::string rules = ReadFile(kSource + "/config/prometheus/poolwatch.rules.yml");
  const std::string runbooks = ReadFile(kSource + "/docs/runbooks.md");
  std::istringstream lines(rules);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t at = line.find("      - alert: ");
    if (at == std::string::npos) continue;
    const std::string alert = line.substr(at + 15);
    EXPECT_NE(runbooks.find("\n## " + alert + "\n"), std::string::npos)
        << "docs/runbooks.md has no section for " << alert;
  }
}

TEST(RulesTest, PromtoolAcceptsThePrometheusConfig) {
  const RunResult check =
      RunCommand("promtool check config '" + kSource + "/config/prometheus/prometheus.yml'");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(RulesTest, AmtoolAcceptsTheAlertmanagerConfig) {
  const RunResult check =
      RunCommand("amtool check-config '" + kSource + "/config/alertmanager/alertmanager.yml'");
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("1 inhibit rules"), std::string::npos) << check.output;
}

TEST(RulesTest, AlertmanagerRoutesBySeverity) {
  const std::string config = kSource + "/config/alertmanager/alertmanager.yml";
  for (const auto& [severity, receiver] :
       {std::pair{"critical", "critical"}, std::pair{"warning", "warning"}}) {
    const RunResult route = RunCommand("amtool config routes test --config.file='" + config +
                                       "' alertname=PoolwatchPoolImbalance severity=" + severity);
    EXPECT_EQ(route.exit_code, 0) << route.output;
    // The last line names the receiver (amtool may warn on the lines before). Built with
    // append, not "\n" + std::string(...): GCC 12 at -O3 warns falsely (-Wrestrict) on that.
    const std::string last_line = std::string(receiver).append("\n");
    EXPECT_TRUE(route.output == last_line ||
                route.output.ends_with(std::string("\n").append(last_line)))
        << route.output;
  }
}

}  // namespace
}  // namespace poolwatch::testing

// End to end: real Prometheus and Alertmanager (Debian's packages) on 127.0.0.1 scrape three
// real poolwatchd processes every second, evaluate the shipped rules (only `for:` shortened) and
// route through the shipped Alertmanager config (only its timers shortened and the webhook
// pointed at a receiver in this test). The "leak" process runs several loops and pools, as a
// game server would: render steady, physics leaking (loop main), audio spiking (loop audio).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <tuple>

#include "daemon_process.h"
#include "e2e_support.h"
#include "http_client.h"
#include "webhook_receiver.h"

namespace poolwatch::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string PoolwatchConfig(const std::string& scenario) {
  return R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
    "pool": {"name": "e2e", "max_bytes": 268435456},
    "workload": {"scenario": ")" +
         scenario + R"(", "particles": 256, "bloat_every_frames": 1}})";
}

std::string ManyPoolsConfig() {
  return R"({"http": {"listen": "127.0.0.1:0"},
    "loops": [
      {"name": "main", "tick_hz": 100, "pools": [
        {"name": "render", "workload": {"scenario": "steady", "particles": 256}},
        {"name": "physics", "max_bytes": 268435456,
         "workload": {"scenario": "leak", "particles": 256}}]},
      {"name": "audio", "tick_hz": 200, "pools": [
        {"name": "audio", "trim_idle_frames": 600,
         "workload": {"scenario": "spike", "particles": 64}}]}]})";
}

class AlertingEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    for (const char* scenario : {"leak", "bloat", "steady"}) {
      const std::string config = dir_->Write(
          std::string(scenario) + ".json",
          std::string(scenario) == "leak" ? ManyPoolsConfig() : PoolwatchConfig(scenario));
      auto* daemon = new DaemonProcess({"--config", config});
      const std::uint16_t port = daemon->Port();
      ASSERT_NE(port, 0) << daemon->Log();
      daemons_.emplace_back(daemon);
      instance_[scenario] = "127.0.0.1:" + std::to_string(port);
    }
    webhook_ = new WebhookReceiver();

    const std::string rules_path = dir_->Write("poolwatch.rules.yml", ShortenedRules());
    const std::string alertmanager_path =
        dir_->Write("alertmanager.yml", ShortenedAlertmanagerConfig(webhook_->port()));
    std::filesystem::create_directories(dir_->path() / "am-data");
    alertmanager_port_ = FreePort();
    alertmanager_ =
        new ChildProcess({"/usr/bin/prometheus-alertmanager", "--config.file=" + alertmanager_path,
                          "--storage.path=" + (dir_->path() / "am-data").string(),
                          "--web.listen-address=127.0.0.1:" + std::to_string(alertmanager_port_),
                          "--cluster.listen-address=", "--log.level=warn"});

    std::string prometheus =
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - " +
        rules_path +
        "\nalerting:\n  alertmanagers:\n    - static_configs:\n"
        "        - targets: ['127.0.0.1:" +
        std::to_string(alertmanager_port_) +
        "']\nscrape_configs:\n  - job_name: poolwatch\n"
        "    static_configs:\n      - targets: ['" +
        instance_["leak"] + "', '" + instance_["bloat"] + "', '" + instance_["steady"] + "']\n";
    const std::string prometheus_path = dir_->Write("prometheus.yml", prometheus);
    prometheus_port_ = FreePort();
    prometheus_ =
        new ChildProcess({"/usr/bin/prometheus", "--config.file=" + prometheus_path,
                          "--storage.tsdb.path=" + (dir_->path() / "prom-data").string(),
                          "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
                          "--enable-feature=exemplar-storage", "--log.level=warn"});

    // A second Prometheus with native histograms: it asks for the protobuf format first and
    // keeps poolwatch's frame duration and lateness as native histograms.
    const std::string native_path = dir_->Write("prometheus-native.yml",
                                                "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                                                "  - job_name: poolwatch\n    static_configs:\n"
                                                "      - targets: ['" +
                                                    instance_["leak"] + "']\n");
    native_port_ = FreePort();
    native_prometheus_ = new ChildProcess(
        {"/usr/bin/prometheus", "--config.file=" + native_path,
         "--storage.tsdb.path=" + (dir_->path() / "native-data").string(),
         "--web.listen-address=127.0.0.1:" + std::to_string(native_port_),
         "--enable-feature=native-histograms,exemplar-storage", "--log.level=warn"});

    ASSERT_TRUE(
        Eventually([] { return HttpGet(alertmanager_port_, "/-/ready").status == 200; }, 30s))
        << alertmanager_->Log();
    ASSERT_TRUE(Eventually([] { return HttpGet(native_port_, "/-/ready").status == 200; }, 30s))
        << native_prometheus_->Log();
    ASSERT_TRUE(Eventually([] { return HttpGet(prometheus_port_, "/-/ready").status == 200; }, 30s))
        << prometheus_->Log();
    started_ = std::chrono::steady_clock::now();
  }

  static void TearDownTestSuite() {
    delete native_prometheus_;
    delete prometheus_;
    delete alertmanager_;
    delete webhook_;
    for (DaemonProcess* daemon : daemons_) delete daemon;
    daemons_.clear();
    delete dir_;
  }

  static json AlertmanagerAlerts(const std::string& alertname, const std::string& instance) {
    return poolwatch::testing::AlertmanagerAlerts(alertmanager_port_, alertname, instance);
  }

  static json Query(const std::string& promql) { return PrometheusQuery(prometheus_port_, promql); }

  // The newest exemplar a Prometheus keeps for `query` over the last 10 minutes, waiting up to
  // 30 s for one; null if none came.
  static json LatestExemplar(std::uint16_t port, const std::string& query) {
    json exemplar;
    Eventually(
        [&] {
          const auto now = std::chrono::system_clock::now().time_since_epoch();
          const long end = std::chrono::duration_cast<std::chrono::seconds>(now).count() + 1;
          const HttpResult response = HttpGet(
              port, "/api/v1/query_exemplars?query=" + UrlEncode(query) +
                        "&start=" + std::to_string(end - 600) + "&end=" + std::to_string(end));
          const json result = json::parse(response.body.empty() ? "{}" : response.body);
          if (result["status"] != "success" || result["data"].empty()) return false;
          if (result["data"][0]["exemplars"].empty()) return false;
          exemplar = result["data"][0]["exemplars"].back();
          return true;
        },
        30s);
    return exemplar;
  }

  static double Elapsed() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  // Waits until Alertmanager holds `alertname` for `scenario`'s instance (and `pool`, if
  // given); prints how long.
  static bool WaitForAlert(const std::string& alertname, const std::string& scenario,
                           const std::string& severity = "", const std::string& pool = "") {
    const bool found = Eventually(
        [&] {
          for (const json& alert : AlertmanagerAlerts(alertname, instance_[scenario])) {
            if ((severity.empty() || alert["labels"]["severity"] == severity) &&
                (pool.empty() || alert["labels"]["pool"] == pool)) {
              return true;
            }
          }
          return false;
        },
        90s);
    std::cout << "[ e2e      ] " << alertname << (severity.empty() ? "" : "/" + severity) << " for "
              << scenario << (pool.empty() ? "" : " pool " + pool)
              << (found ? " active in Alertmanager after " : " not seen in ") << Elapsed()
              << " s\n";
    return found;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::vector<DaemonProcess*> daemons_;
  static inline std::map<std::string, std::string> instance_;
  static inline WebhookReceiver* webhook_ = nullptr;
  static inline ChildProcess* alertmanager_ = nullptr;
  static inline ChildProcess* prometheus_ = nullptr;
  static inline std::uint16_t alertmanager_port_ = 0;
  static inline std::uint16_t prometheus_port_ = 0;
  static inline ChildProcess* native_prometheus_ = nullptr;
  static inline std::uint16_t native_port_ = 0;
  static inline std::chrono::steady_clock::time_point started_;
};

TEST_F(AlertingEndToEnd, LeakFiresTheImbalanceAlertAndTheWebhookReceivesIt) {
  ASSERT_TRUE(WaitForAlert("PoolwatchPoolImbalance", "leak", "warning", "physics"));
  ASSERT_TRUE(WaitForAlert("PoolwatchPoolImbalance", "leak", "critical", "physics"));
  std::string description;
  const bool delivered = Eventually(
      [&] {
        for (const auto& request : webhook_->Requests()) {
          if (request.method != "POST" || request.target != "/critical") continue;
          const json body = json::parse(request.body);
          for (const json& alert : body["alerts"]) {
            if (alert["labels"]["alertname"] == "PoolwatchPoolImbalance" &&
                alert["labels"]["instance"] == instance_["leak"] &&
                alert["labels"]["pool"] == "physics" && alert["status"] == "firing") {
              description = alert["annotations"]["description"];
              return true;
            }
          }
        }
        return false;
      },
      60s);
  std::cout << "[ e2e      ] webhook " << (delivered ? "received" : "did not receive")
            << " PoolwatchPoolImbalance/critical after " << Elapsed() << " s\n";
  EXPECT_TRUE(delivered);
  // The page says where to look: the site holding the most bytes, found by the rule's query.
  EXPECT_NE(description.find("Most held bytes come from site reference_workload.leak ("),
            std::string::npos)
      << description;
}

// In the process with three pools, only the leaking one alerts: no pool alert for its steady
// neighbour in the same loop, nor for the spiking pool of the other loop. (Loop alerts are about
// timing, which depends on the machine: under TSan the frames overrun.)
TEST_F(AlertingEndToEnd, OnlyTheLeakingPoolOfAManyPoolProcessAlerts) {
  ASSERT_TRUE(WaitForAlert("PoolwatchPoolImbalance", "leak", "critical", "physics"));
  ASSERT_TRUE(Eventually([] { return Elapsed() > 10; }, 30s));
  const json others = Query(R"(ALERTS{instance=")" + instance_["leak"] +
                            R"(", alertname=~"PoolwatchPool.*", pool!="physics"})");
  ASSERT_EQ(others["status"], "success") << others.dump();
  EXPECT_TRUE(others["data"]["result"].empty()) << others.dump(2);
  for (const json& alert : AlertmanagerAlerts("PoolwatchPoolImbalance", instance_["leak"])) {
    EXPECT_EQ(alert["labels"]["pool"], "physics") << alert.dump(2);
  }
  for (const auto& request : webhook_->Requests()) {
    if (request.method != "POST") continue;
    const json body = json::parse(request.body);
    for (const json& alert : body["alerts"]) {
      const json& labels = alert["labels"];
      if (labels["instance"] != instance_["leak"] || !labels.contains("pool")) continue;
      EXPECT_EQ(labels["pool"], "physics") << alert.dump(2);
    }
  }
  // ...although all three pools and both loops are scraped and moving.
  for (const char* pool : {"render", "physics", "audio"}) {
    const json series = Query("poolwatch_pool_allocations_total{instance=\"" + instance_["leak"] +
                              "\", pool=\"" + pool + "\"}");
    ASSERT_EQ(series["data"]["result"].size(), 1U) << pool << ": " << series.dump();
  }
  const json loops = Query("poolwatch_frames_total{instance=\"" + instance_["leak"] + "\"}");
  EXPECT_EQ(loops["data"]["result"].size(), 2U) << loops.dump();
}

TEST_F(AlertingEndToEnd, CriticalInhibitsTheWarningOfTheSameAlertAndTarget) {
  ASSERT_TRUE(WaitForAlert("PoolwatchPoolImbalance", "leak", "critical"));
  const bool inhibited = Eventually(
      [] {
        for (const json& alert : AlertmanagerAlerts("PoolwatchPoolImbalance", instance_["leak"])) {
          if (alert["labels"]["severity"] == "warning") {
            return alert["status"]["state"] == "suppressed" &&
                   !alert["status"]["inhibitedBy"].empty();
          }
        }
        return false;
      },
      30s);
  EXPECT_TRUE(inhibited) << "the warning of an alert whose critical is firing is not inhibited";
}

TEST_F(AlertingEndToEnd, BloatFiresTheKeysAndPooledBytesAlerts) {
  EXPECT_TRUE(WaitForAlert("PoolwatchPoolKeys", "bloat", "critical"));
  EXPECT_TRUE(WaitForAlert("PoolwatchPoolPooledBytes", "bloat", "critical"));
  // The bloat outgrows the 256 MiB cap: allocations are refused, counted and alerted on.
  EXPECT_TRUE(WaitForAlert("PoolwatchPoolAllocationFailures", "bloat", "critical"));
  EXPECT_TRUE(AlertmanagerAlerts("PoolwatchPoolImbalance", instance_["bloat"]).empty());
}

TEST_F(AlertingEndToEnd, SteadyFiresNoPoolAlertAtAll) {
  // Give the rules time to see the steady target as long as they needed for the leak.
  ASSERT_TRUE(WaitForAlert("PoolwatchPoolImbalance", "leak", "warning"));
  ASSERT_TRUE(Eventually([] { return Elapsed() > 10; }, 30s));
  const json alerts =
      Query(R"(ALERTS{alertname=~"PoolwatchPool.*", instance=")" + instance_["steady"] + R"("})");
  ASSERT_EQ(alerts["status"], "success") << alerts.dump();
  EXPECT_TRUE(alerts["data"]["result"].empty()) << alerts.dump(2);
  // ...although the target is scraped and its pool works.
  const json up = Query("up{instance=\"" + instance_["steady"] + "\"}");
  ASSERT_EQ(up["data"]["result"].size(), 1U);
  EXPECT_EQ(up["data"]["result"][0]["value"][1], "1");
}

// Every recording rule of the shipped rule file (group poolwatch.fleet) records series, and the
// job-level views carry job and pool or loop, and no instance.
// Prometheus negotiates OpenMetrics (its Accept header prefers it) and keeps the exemplars: the
// leaking pool's allocations carry the site of its latest held buffer, which is the leak.
TEST_F(AlertingEndToEnd, TheLeaksSiteReachesPrometheusAsAnExemplar) {
  const json exemplar =
      LatestExemplar(prometheus_port_, "poolwatch_pool_allocations_total{pool=\"physics\"}");
  EXPECT_EQ(exemplar["labels"]["site"], "reference_workload.leak") << exemplar.dump();
  ASSERT_TRUE(exemplar["labels"].contains("frame")) << exemplar.dump();
  const std::string frame = exemplar["labels"]["frame"];
  EXPECT_TRUE(!frame.empty() && std::ranges::all_of(frame, [](char c) {
    return c >= '0' && c <= '9';
  })) << frame;
  // A steady pool holds nothing, so it has no exemplar.
  const HttpResult render =
      HttpGet(prometheus_port_, "/api/v1/query_exemplars?query=" +
                                    UrlEncode("poolwatch_pool_allocations_total{pool=\"render\"}") +
                                    "&start=0&end=4102444800");
  EXPECT_EQ(json::parse(render.body)["data"].size(), 0U) << render.body;
}

// Prometheus 2.42 with --enable-feature=native-histograms,exemplar-storage negotiates the
// protobuf format: lateness is a native histogram (no _bucket series needed for a quantile),
// and the leak's site arrives as the counter's exemplar there too.
TEST_F(AlertingEndToEnd, NativeHistogramsAndExemplarsReachAPrometheusThatScrapesProtobuf) {
  json result;
  const bool quantile = Eventually(
      [&] {
        result = PrometheusQuery(
            native_port_,
            "histogram_quantile(0.99, sum(rate(poolwatch_tick_lateness_seconds[1m])))");
        return result["status"] == "success" && result["data"]["result"].size() == 1U &&
               std::isfinite(std::stod(result["data"]["result"][0]["value"][1].get<std::string>()));
      },
      30s);
  EXPECT_TRUE(quantile) << result.dump();
  // The raw series is a histogram sample, not a float: it came as a native histogram.
  const json raw = PrometheusQuery(native_port_, "poolwatch_frame_duration_seconds{loop=\"main\"}");
  ASSERT_EQ(raw["data"]["result"].size(), 1U) << raw.dump();
  EXPECT_TRUE(raw["data"]["result"][0].contains("histogram")) << raw.dump();
  EXPECT_GT(std::stod(raw["data"]["result"][0]["histogram"][1]["count"].get<std::string>()), 0)
      << raw.dump();
  const json site =
      LatestExemplar(native_port_, "poolwatch_pool_allocations_total{pool=\"physics\"}");
  EXPECT_EQ(site["labels"]["site"], "reference_workload.leak") << site.dump();
}

TEST_F(AlertingEndToEnd, EveryRecordingRuleHasData) {
  const std::string rules = ReadSource("config/prometheus/poolwatch.rules.yml");
  const std::regex record_line(R"(\n      - record: (\S+)(?=\n))");
  int records = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), record_line);
       it != std::sregex_iterator(); ++it) {
    const std::string record = (*it)[1];
    ++records;
    json result;
    const bool has_data = Eventually(
        [&] {
          result = Query(record);
          return result["status"] == "success" && !result["data"]["result"].empty();
        },
        30s);
    EXPECT_TRUE(has_data) << record << "\n" << result.dump();
    if (!has_data || !record.starts_with("job_")) continue;
    for (const json& series : result["data"]["result"]) {
      const json& labels = series["metric"];
      EXPECT_TRUE(labels.contains("job")) << record << ": " << labels.dump();
      EXPECT_FALSE(labels.contains("instance")) << record << ": " << labels.dump();
      EXPECT_TRUE(labels.contains(record.starts_with("job_pool:") ? "pool" : "loop"))
          << record << ": " << labels.dump();
    }
  }
  EXPECT_EQ(records, 8);
  // The leaking pool's imbalance, summed over the job, is positive.
  json physics;
  EXPECT_TRUE(Eventually(
      [&] {
        physics = Query(R"(job_pool:poolwatch_pool_imbalance:increase5m{pool="physics"} > 0)");
        return physics["data"]["result"].size() == 1U;
      },
      30s))
      << physics.dump();
}

TEST_F(AlertingEndToEnd, EveryDashboardQueryIsValidAndReturnsData) {
  const json dashboard = json::parse(ReadSource("config/grafana/dashboards/poolwatch.json"));
  ASSERT_TRUE(Eventually([] { return Elapsed() > 6; }, 30s));
  int queries = 0;
  int fleet_queries = 0;
  int heatmaps = 0;
  bool in_fleet_row = false;
  for (const json& panel : dashboard["panels"]) {
    // Rows group the panels: the fleet row's panels view every instance of the job at once,
    // from the recording rules; the panels of the other rows are per selected instance.
    if (panel["type"] == "row") {
      in_fleet_row = panel["title"].get<std::string>().starts_with("Fleet");
      continue;
    }
    EXPECT_FALSE(panel["fieldConfig"]["defaults"]["unit"].get<std::string>().empty())
        << panel["title"];
    // A heatmap draws the buckets as Prometheus keeps them (no recalculation): one row per `le`.
    if (panel["type"] == "heatmap") {
      ++heatmaps;
      EXPECT_FALSE(panel["options"]["calculate"].get<bool>()) << panel["title"];
      for (const json& target : panel["targets"]) {
        EXPECT_EQ(target["format"], "heatmap") << panel["title"];
        EXPECT_TRUE(target["expr"].get<std::string>().starts_with("sum by (le) (rate(poolwatch_"))
            << target["expr"];
      }
    }
    for (const json& target : panel["targets"]) {
      std::string expr = target["expr"];
      if (in_fleet_row) {
        EXPECT_EQ(expr.find("$instance"), std::string::npos) << expr;
        if (expr.find(":poolwatch_") != std::string::npos) ++fleet_queries;
      } else {
        EXPECT_NE(expr.find("$instance"), std::string::npos) << expr;
      }
      EXPECT_NE(expr.find("$job"), std::string::npos) << expr;
      if (expr.starts_with("rate(") || expr.find("(rate(") != std::string::npos) {
        EXPECT_NE(expr.find("$__rate_interval"), std::string::npos) << expr;
      }
      // What Grafana would send: the variables at "All", the rate interval for a 1 s scrape.
      expr = std::regex_replace(expr, std::regex("\\$job"), ".+");
      expr = std::regex_replace(expr, std::regex("\\$instance"), ".+");
      expr = std::regex_replace(expr, std::regex("\\$pool"), ".+");
      expr = std::regex_replace(expr, std::regex("\\$loop"), ".+");
      expr = std::regex_replace(expr, std::regex("\\$__rate_interval"), "4s");
      json result;
      const bool has_data = Eventually(
          [&] {
            result = Query(expr);
            return result["status"] == "success" && !result["data"]["result"].empty();
          },
          30s);
      EXPECT_TRUE(has_data) << panel["title"] << ": " << expr << "\n" << result.dump();
      ++queries;
    }
  }
  EXPECT_GE(queries, 20);
  EXPECT_EQ(heatmaps, 3) << "frame time, tick lateness and allocations per frame";
  // The allocation rate shows the exemplars this Prometheus keeps: the leak's site.
  int exemplar_queries = 0;
  for (const json& panel : dashboard["panels"]) {
    for (const json& target : panel.value("targets", json::array())) {
      if (!target.value("exemplar", false)) continue;
      ++exemplar_queries;
      EXPECT_NE(target["expr"].get<std::string>().find("poolwatch_pool_allocations_total"),
                std::string::npos);
    }
  }
  EXPECT_EQ(exemplar_queries, 1);
  EXPECT_GE(fleet_queries, 5) << "the fleet row's panels query the recording rules";

  // The pool and loop variables: multi-select with "All", each offering what the targets expose.
  std::map<std::string, json> variables;
  for (const json& variable : dashboard["templating"]["list"])
    variables[variable["name"]] = variable;
  // Pools render, physics, audio and the single-pool processes' e2e; loops main and audio.
  for (const auto& [name, metric, at_least] : {std::tuple{"pool", "poolwatch_pool_keys", 4U},
                                               std::tuple{"loop", "poolwatch_frames_total", 2U}}) {
    ASSERT_TRUE(variables.contains(name)) << name;
    EXPECT_TRUE(variables[name]["multi"].get<bool>()) << name;
    EXPECT_TRUE(variables[name]["includeAll"].get<bool>()) << name;
    EXPECT_NE(variables[name]["definition"].get<std::string>().find(metric), std::string::npos);
    const json values = Query(std::string("count by (") + name + ") (" + metric + "{job=~\".+\"})");
    EXPECT_GE(values["data"]["result"].size(), at_least) << name << ": " << values.dump();
  }
}

}  // namespace
}  // namespace poolwatch::testing

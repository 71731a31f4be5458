// End to end, HA as users run it: two real Prometheus replicas made from the shipped
// config/prometheus/prometheus.yml and prometheus-b.yml (only targets, intervals and paths
// changed) scrape the same poolwatchd processes and send every alert to a three-peer
// Alertmanager cluster gossiping on 127.0.0.1; a global Prometheus made from the shipped
// global.yml federates the replicas' fleet views.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "daemon_process.h"
#include "e2e_support.h"
#include "http_client.h"
#include "webhook_receiver.h"

namespace poolwatch::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::size_t kPeers = 3;

std::string PoolwatchConfig(const std::string& scenario) {
  return R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
    "pool": {"name": "ha", "max_bytes": 268435456},
    "workload": {"scenario": ")" +
         scenario + R"(", "particles": 256}})";
}

YAML::Node Targets(const std::vector<std::string>& targets) {
  YAML::Node static_config;
  for (const std::string& target : targets) static_config["targets"].push_back(target);
  YAML::Node list;
  list.push_back(static_config);
  return list;
}

class HaEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    for (const char* scenario : {"leak", "steady"}) {
      const std::string config =
          dir_->Write(std::string(scenario) + ".json", PoolwatchConfig(scenario));
      auto* daemon = new DaemonProcess({"--config", config});
      const std::uint16_t port = daemon->Port();
      ASSERT_NE(port, 0) << daemon->Log();
      daemons_.push_back(daemon);
      instance_[scenario] = "127.0.0.1:" + std::to_string(port);
    }
    webhook_ = new WebhookReceiver();

    // The Alertmanager cluster: three peers, each told the other two, with the shipped routing.
    // A peer waits its position in the cluster times --cluster.peer-timeout before it sends
    // what the peers before it should have sent; 3 s instead of 15 s keeps the test short.
    const std::string alertmanager_path =
        dir_->Write("alertmanager.yml", ShortenedAlertmanagerConfig(webhook_->port()));
    std::vector<std::uint16_t> cluster_ports;
    for (std::size_t i = 0; i < kPeers; ++i) {
      alertmanager_ports_.push_back(FreePort());
      cluster_ports.push_back(FreePort());
    }
    for (std::size_t i = 0; i < kPeers; ++i) {
      const auto storage = dir_->path() / ("am-" + std::to_string(i));
      std::filesystem::create_directories(storage);
      std::vector<std::string> argv = {
          "/usr/bin/prometheus-alertmanager",
          "--config.file=" + alertmanager_path,
          "--storage.path=" + storage.string(),
          "--web.listen-address=127.0.0.1:" + std::to_string(alertmanager_ports_[i]),
          "--cluster.listen-address=127.0.0.1:" + std::to_string(cluster_ports[i]),
          "--cluster.peer-timeout=3s",
          "--log.level=warn"};
      for (std::size_t j = 0; j < kPeers; ++j) {
        if (j != i) argv.push_back("--cluster.peer=127.0.0.1:" + std::to_string(cluster_ports[j]));
      }
      alertmanagers_.push_back(new ChildProcess(argv));
    }

    // The replicas: the shipped files with their targets pointed here and 1 s intervals; the
    // external labels and alert relabeling stay as shipped.
    const std::string rules_path = dir_->Write("poolwatch.rules.yml", ShortenedRules());
    std::vector<std::string> alertmanager_targets;
    alertmanager_targets.reserve(kPeers);
    for (const std::uint16_t port : alertmanager_ports_) {
      alertmanager_targets.push_back("127.0.0.1:" + std::to_string(port));
    }
    for (const char* file : {"prometheus.yml", "prometheus-b.yml"}) {
      YAML::Node config = YAML::Load(ReadSource(std::string("config/prometheus/") + file));
      config["global"]["scrape_interval"] = "1s";
      config["global"]["evaluation_interval"] = "1s";
      config["rule_files"][0] = rules_path;
      config["alerting"]["alertmanagers"][0]["static_configs"] = Targets(alertmanager_targets);
      config["scrape_configs"][0]["static_configs"] =
          Targets({instance_["leak"], instance_["steady"]});
      replica_ports_.push_back(StartPrometheus(file, YAML::Dump(config)));
    }

    // The global Prometheus: the shipped global.yml, federating from the two replicas.
    YAML::Node global = YAML::Load(ReadSource("config/prometheus/global.yml"));
    global["global"]["scrape_interval"] = "1s";
    global["scrape_configs"][0]["static_configs"] =
        Targets({"127.0.0.1:" + std::to_string(replica_ports_[0]),
                 "127.0.0.1:" + std::to_string(replica_ports_[1])});
    global_port_ = StartPrometheus("global.yml", YAML::Dump(global));

    for (const std::uint16_t port : alertmanager_ports_) {
      ASSERT_TRUE(Eventually([&] { return HttpGet(port, "/-/ready").status == 200; }, 30s))
          << "Alertmanager on port " << port << " is not ready";
    }
    for (const std::uint16_t port : {replica_ports_[0], replica_ports_[1], global_port_}) {
      ASSERT_TRUE(Eventually([&] { return HttpGet(port, "/-/ready").status == 200; }, 30s))
          << "Prometheus on port " << port << " is not ready";
    }
    started_ = std::chrono::steady_clock::now();
  }

  static std::uint16_t StartPrometheus(const std::string& name, const std::string& config) {
    const std::string path = dir_->Write(name, config);
    const std::uint16_t port = FreePort();
    prometheis_.push_back(new ChildProcess(
        {"/usr/bin/prometheus", "--config.file=" + path,
         "--storage.tsdb.path=" + (dir_->path() / (name + "-data")).string(),
         "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"}));
    return port;
  }

  static void TearDownTestSuite() {
    for (ChildProcess* prometheus : prometheis_) delete prometheus;
    for (ChildProcess* alertmanager : alertmanagers_) delete alertmanager;
    delete webhook_;
    for (DaemonProcess* daemon : daemons_) delete daemon;
    delete dir_;
  }

  static double Elapsed() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  // The webhook's notifications: every POST body.
  static std::vector<json> Notifications() {
    std::vector<json> notifications;
    for (const auto& request : webhook_->Requests()) {
      if (request.method == "POST") notifications.push_back(json::parse(request.body));
    }
    return notifications;
  }

  static bool CriticalImbalanceNotified() {
    for (const json& notification : Notifications()) {
      if (notification["status"] == "firing" &&
          notification["groupLabels"]["alertname"] == "PoolwatchPoolImbalance" &&
          notification["commonLabels"]["severity"] == "critical") {
        return true;
      }
    }
    return false;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::vector<DaemonProcess*> daemons_;
  static inline std::map<std::string, std::string> instance_;
  static inline WebhookReceiver* webhook_ = nullptr;
  static inline std::vector<ChildProcess*> alertmanagers_;
  static inline std::vector<ChildProcess*> prometheis_;
  static inline std::vector<std::uint16_t> alertmanager_ports_;
  static inline std::vector<std::uint16_t> replica_ports_;
  static inline std::uint16_t global_port_ = 0;
  static inline std::chrono::steady_clock::time_point started_;
};

TEST_F(HaEndToEnd, TheAlertmanagerPeersFormOneCluster) {
  for (const std::uint16_t port : alertmanager_ports_) {
    json status;
    const bool clustered = Eventually(
        [&] {
          const HttpResult result = HttpGet(port, "/api/v2/status");
          if (result.status != 200) return false;
          status = json::parse(result.body);
          return status["cluster"]["status"] == "ready" &&
                 status["cluster"]["peers"].size() == kPeers;
        },
        30s);
    EXPECT_TRUE(clustered) << "peer on port " << port << ": " << status["cluster"].dump();
  }
}

// Both replicas fire, every peer holds the alert, and yet the webhook gets one notification per
// alert group: the replicas' alerts are one alert once `replica` is dropped, and the peers
// share which notifications went out.
TEST_F(HaEndToEnd, OneNotificationPerAlertGroupWhileBothReplicasFire) {
  ASSERT_TRUE(Eventually(CriticalImbalanceNotified, 90s))
      << "no critical PoolwatchPoolImbalance notification after " << Elapsed() << " s";
  std::cout << "[ e2e      ] first critical notification after " << Elapsed() << " s\n";
  const std::string firing = R"(ALERTS{alertname="PoolwatchPoolImbalance", alertstate="firing",
      severity="critical", instance=")" +
                             instance_["leak"] + R"("})";
  for (const std::uint16_t port : replica_ports_) {
    const json alerts = PrometheusQuery(port, firing);
    EXPECT_EQ(alerts["data"]["result"].size(), 1U) << "replica on " << port << alerts.dump();
  }
  for (const std::uint16_t port : alertmanager_ports_) {
    const bool holds = Eventually(
        [&] {
          return !AlertmanagerAlerts(port, "PoolwatchPoolImbalance", instance_["leak"]).empty();
        },
        10s);
    EXPECT_TRUE(holds) << "Alertmanager peer on port " << port << " has not got the alert";
  }
  // The last peer would send after 2 × the 3 s peer timeout had the others' log not reached it;
  // group_interval is 1 s, so a second notification of a group would come within this wait.
  std::this_thread::sleep_for(10s);
  for (const std::uint16_t port : replica_ports_) {
    EXPECT_EQ(PrometheusQuery(port, firing)["data"]["result"].size(), 1U)
        << "replica on " << port << " stopped firing during the wait";
  }

  std::map<std::string, int> firing_per_group;
  for (const json& notification : Notifications()) {
    if (notification["status"] != "firing") continue;
    if (notification["groupLabels"]["alertname"] != "PoolwatchPoolImbalance") continue;
    ++firing_per_group[notification["groupKey"].get<std::string>()];
    // One alert per group, without the replica label: what both replicas sent is one alert.
    EXPECT_EQ(notification["alerts"].size(), 1U) << notification.dump(2);
    for (const json& alert : notification["alerts"]) {
      EXPECT_FALSE(alert["labels"].contains("replica")) << alert.dump(2);
      EXPECT_EQ(alert["labels"]["instance"], instance_["leak"]) << alert.dump(2);
    }
  }
  ASSERT_FALSE(firing_per_group.empty());
  for (const auto& [group, count] : firing_per_group) {
    EXPECT_EQ(count, 1) << group << " was notified " << count << " times";
  }
}

// The critical alert inhibits its warning on every peer, whichever replica each peer heard.
TEST_F(HaEndToEnd, CriticalInhibitsItsWarningOnEveryPeer) {
  for (const std::uint16_t port : alertmanager_ports_) {
    json alerts;
    const bool inhibited = Eventually(
        [&] {
          alerts = AlertmanagerAlerts(port, "PoolwatchPoolImbalance", instance_["leak"]);
          bool critical_active = false;
          bool warning_inhibited = false;
          for (const json& alert : alerts) {
            if (alert["labels"]["severity"] == "critical") {
              critical_active = alert["status"]["state"] == "active";
            } else if (alert["labels"]["severity"] == "warning") {
              warning_inhibited = alert["status"]["state"] == "suppressed" &&
                                  !alert["status"]["inhibitedBy"].empty();
            }
          }
          return critical_active && warning_inhibited;
        },
        60s);
    EXPECT_TRUE(inhibited) << "peer on port " << port << ": " << alerts.dump(2);
  }
  // The steady instance is the control: no warning names it. Under a sanitizer its frames run
  // several times slower, and the loop's timing warnings may fire for it rightly (a TSan run saw
  // 1.3 % of its frames overrun); the pool's may not.
  for (const json& notification : Notifications()) {
    if (notification["commonLabels"]["severity"] != "warning") continue;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const json& alertname = notification["groupLabels"]["alertname"];
    if (alertname == "PoolwatchFrameOverruns" || alertname == "PoolwatchLoopFrameTime") continue;
#endif
    EXPECT_NE(notification["groupLabels"]["instance"], instance_["steady"]) << notification.dump();
  }
}

// The global Prometheus holds the fleet views of both replicas, told apart by `replica`, and no
// raw series.
TEST_F(HaEndToEnd, TheGlobalPrometheusHasTheFleetViewsOfBothReplicas) {
  json result;
  const bool both = Eventually(
      [&] {
        result = PrometheusQuery(
            global_port_, R"(count by (replica) ({__name__=~"job_(pool|loop):poolwatch_.+"}))");
        return result["data"]["result"].size() == 2U;
      },
      60s);
  ASSERT_TRUE(both) << result.dump(2);
  std::set<std::string> replicas;
  for (const json& series : result["data"]["result"]) {
    replicas.insert(series["metric"]["replica"].get<std::string>());
  }
  EXPECT_EQ(replicas, (std::set<std::string>{"a", "b"}));

  // The leak, deduplicated over the replicas, is there with the pair's job and cluster.
  const bool leak = Eventually(
      [&] {
        result = PrometheusQuery(
            global_port_,
            R"(max without (replica) (job_pool:poolwatch_pool_imbalance:increase5m{pool="ha"}) > 0)");
        return result["data"]["result"].size() == 1U;
      },
      60s);
  ASSERT_TRUE(leak) << result.dump(2);
  EXPECT_EQ(result["data"]["result"][0]["metric"]["job"], "poolwatch");
  EXPECT_EQ(result["data"]["result"][0]["metric"]["cluster"], "poolwatch");
  for (const char* view :
       {"job_pool:poolwatch_pool_pooled_bytes:sum", "job_pool:poolwatch_pool_keys:max",
        "job_loop:poolwatch_frame_overruns_per_frames:ratio_rate5m"}) {
    EXPECT_TRUE(Eventually(
        [&] { return !PrometheusQuery(global_port_, view)["data"]["result"].empty(); }, 30s))
        << view;
  }
  // Only the views travel: no raw series, no per-instance rule.
  EXPECT_TRUE(PrometheusQuery(global_port_, "poolwatch_pool_keys")["data"]["result"].empty());
  EXPECT_TRUE(PrometheusQuery(global_port_,
                              "instance_pool:poolwatch_pool_imbalance:increase5m")["data"]["result"]
                  .empty());
}

}  // namespace
}  // namespace poolwatch::testing

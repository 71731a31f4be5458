// The shipped deploy/ files: parsed (yaml-cpp), checked for what operators rely on, and for
// drift from the files they are made from.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "credentials.h"
#include "daemon_process.h"
#include "notify_socket.h"

namespace poolwatch::testing {
namespace {

const std::filesystem::path kSource = POOLWATCH_SOURCE_DIR;

YAML::Node Load(const std::string& relative) {
  return YAML::LoadFile((kSource / relative).string());
}

TEST(DeployTest, EveryShippedYamlFileParses) {
  int files = 0;
  for (const char* dir : {"deploy", "config"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(kSource / dir)) {
      const auto ext = entry.path().extension();
      if (ext != ".yml" && ext != ".yaml") continue;
      EXPECT_NO_THROW(YAML::LoadAllFromFile(entry.path().string())) << entry.path();
      ++files;
    }
  }
  EXPECT_GE(files, 12);
}

TEST(DeployTest, PrometheusRuleHoldsExactlyTheShippedRuleGroups) {
  const YAML::Node rule = Load("deploy/kubernetes/prometheusrule.yaml");
  EXPECT_EQ(rule["kind"].as<std::string>(), "PrometheusRule");
  const YAML::Node shipped = Load("config/prometheus/poolwatch.rules.yml");
  EXPECT_EQ(YAML::Dump(rule["spec"]["groups"]), YAML::Dump(shipped["groups"]))
      << "regenerate: scripts/gen-prometheusrule.sh > deploy/kubernetes/prometheusrule.yaml";
  const RunResult generated =
      RunCommand("'" + (kSource / "scripts/gen-prometheusrule.sh").string() + "'");
  EXPECT_EQ(generated.output, ReadFile(kSource / "deploy/kubernetes/prometheusrule.yaml"));
}

TEST(DeployTest, DeploymentIsProbedLimitedAndUnprivileged) {
  const YAML::Node deployment = Load("deploy/kubernetes/deployment.yaml");
  const YAML::Node pod = deployment["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  const YAML::Node container = pod["containers"][0];
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_TRUE(container["resources"]["limits"]["memory"].IsDefined());
  EXPECT_TRUE(container["resources"]["requests"]["cpu"].IsDefined());
  EXPECT_TRUE(container["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(container["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_EQ(container["ports"][0]["containerPort"].as<int>(), 9720);
}

// The Prometheus Operator gives a ServiceMonitor's targets the job named by the Service label its
// jobLabel names, else the Service's name ("poolwatchd"). The target-down alert matches one job:
// if the two differed, a poolwatchd down in Kubernetes would never alert.
TEST(DeployTest, ServiceMonitorGivesTheJobTheRulesMatch) {
  const YAML::Node monitor = Load("deploy/kubernetes/servicemonitor.yaml");
  const YAML::Node service = Load("deploy/kubernetes/service.yaml");
  ASSERT_TRUE(monitor["spec"]["jobLabel"]) << "the job would be the Service's name";
  const YAML::Node job =
      service["metadata"]["labels"][monitor["spec"]["jobLabel"].as<std::string>()];
  ASSERT_TRUE(job) << "the Service has no label " << monitor["spec"]["jobLabel"];
  const std::string rules = ReadFile(kSource / "deploy/kubernetes/prometheusrule.yaml");
  EXPECT_NE(rules.find("up{job=\"" + job.as<std::string>() + "\"} == 0"), std::string::npos)
      << "PoolwatchTargetDown does not match job " << job.as<std::string>();
  // And the scrape configs outside Kubernetes name the same job.
  for (const char* file : {"config/prometheus/prometheus.yml", "config/prometheus/prometheus-b.yml",
                           "deploy/compose/prometheus.yml"}) {
    EXPECT_EQ(Load(file)["scrape_configs"][0]["job_name"].as<std::string>(), job.as<std::string>())
        << file;
  }
}

TEST(DeployTest, KustomizationLoadsOnlyFilesBelowItsDirectoryAndRollsOnAConfigChange) {
  // kustomize loads no file from outside the kustomization's directory ("security; file ... is
  // not in or below ..."): every file it names must exist there.
  const std::filesystem::path root =
      std::filesystem::weakly_canonical(kSource / "deploy/kubernetes");
  const YAML::Node kustomization = Load("deploy/kubernetes/kustomization.yaml");
  std::vector<std::string> files;
  for (const auto& resource : kustomization["resources"])
    files.push_back(resource.as<std::string>());
  for (const auto& file : kustomization["configMapGenerator"][0]["files"]) {
    const auto spec = file.as<std::string>();  // KEY=FILE or FILE
    files.push_back(spec.substr(spec.find('=') + 1));
  }
  ASSERT_EQ(files.size(), 5U);
  for (const std::string& file : files) {
    const std::filesystem::path path = std::filesystem::weakly_canonical(root / file);
    EXPECT_TRUE(std::filesystem::exists(path)) << file;
    EXPECT_EQ(path.lexically_relative(root).native().rfind("..", 0), std::string::npos)
        << file << " is outside " << root;
  }
  // The pods' config is the shipped one until a user edits it.
  EXPECT_EQ(ReadFile(root / "poolwatchd.json"), ReadFile(kSource / "config/poolwatchd.json"));
  // A changed config rolls the pods: the ConfigMap's name takes its content's hash.
  EXPECT_FALSE(kustomization["generatorOptions"].IsDefined());
}

TEST(DeployTest, ComposeMountsOnlyFilesThatExistAndTheShippedConfigs) {
  const YAML::Node compose = Load("deploy/docker-compose.yml");
  for (const char* service : {"poolwatchd", "prometheus", "prometheus-b", "alertmanager",
                              "alertmanager-2", "alertmanager-3", "grafana"}) {
    ASSERT_TRUE(compose["services"][service].IsDefined()) << service;
  }
  int mounts = 0;
  for (const auto& service : compose["services"]) {
    for (const auto& volume : service.second["volumes"]) {
      const auto spec = volume.as<std::string>();
      const std::string host = spec.substr(0, spec.find(':'));
      EXPECT_TRUE(std::filesystem::exists(kSource / "deploy" / host)) << spec;
      ++mounts;
    }
  }
  EXPECT_EQ(mounts, 10);
  EXPECT_TRUE(compose["services"]["poolwatchd"]["read_only"].as<bool>());
  const RunResult check = RunCommand("promtool check config --syntax-only '" +
                                     (kSource / "deploy/compose/prometheus.yml").string() + "'");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

// The HA pair as shipped: two Prometheus config files that differ only in the replica label,
// which both drop from the alerts they send to every peer of the Alertmanager cluster.
TEST(DeployTest, PrometheusReplicasDifferOnlyInTheirReplicaLabelAndDropItFromAlerts) {
  const YAML::Node a = Load("config/prometheus/prometheus.yml");
  const YAML::Node b = Load("config/prometheus/prometheus-b.yml");
  EXPECT_EQ(a["global"]["external_labels"]["replica"].as<std::string>(), "a");
  EXPECT_EQ(b["global"]["external_labels"]["replica"].as<std::string>(), "b");
  YAML::Node b_as_a = YAML::Clone(b);
  b_as_a["global"]["external_labels"]["replica"] = "a";
  EXPECT_EQ(YAML::Dump(b_as_a), YAML::Dump(a));
  for (const char* file : {"config/prometheus/prometheus.yml", "deploy/compose/prometheus.yml"}) {
    const YAML::Node config = Load(file);
    EXPECT_TRUE(config["global"]["external_labels"]["replica"].IsDefined()) << file;
    const YAML::Node relabel = config["alerting"]["alert_relabel_configs"][0];
    EXPECT_EQ(relabel["action"].as<std::string>(), "labeldrop") << file;
    EXPECT_EQ(relabel["regex"].as<std::string>(), "replica") << file;
    EXPECT_EQ(config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"].size(), 3U)
        << file << ": every peer of the three-peer cluster";
  }
  const RunResult check =
      RunCommand("promtool check config --syntax-only '" +
                 (kSource / "config/prometheus/prometheus-b.yml").string() + "'");
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // The same for the Prometheus Operator: two replicas, three Alertmanager pods.
  const std::vector<YAML::Node> operator_files =
      YAML::LoadAllFromFile((kSource / "deploy/kubernetes/prometheus-ha.yaml").string());
  ASSERT_EQ(operator_files.size(), 2U);
  EXPECT_EQ(operator_files[0]["kind"].as<std::string>(), "Prometheus");
  EXPECT_EQ(operator_files[0]["spec"]["replicas"].as<int>(), 2);
  EXPECT_EQ(operator_files[0]["spec"]["replicaExternalLabelName"].as<std::string>(), "replica");
  EXPECT_EQ(operator_files[1]["kind"].as<std::string>(), "Alertmanager");
  EXPECT_EQ(operator_files[1]["spec"]["replicas"].as<int>(), 3);
}

// Samples per instance are 12 + 34 × pools + 45 × loops at 60 Hz, up to 12 more per pool
// holding buffers from several sites, and one per (handler, code) of the HTTP server's answers,
// at most 39 (docs/metrics.md; daemon_test counts them). Every shipped
// scrape sets a sample_limit with headroom over the shipped configs, and room for what the docs
// promise, 20 pools on 4 loops, even while every pool's sites are at their most: a leak spread
// over sites must not be what fails the scrape.
TEST(DeployTest, EveryShippedScrapeHasASampleLimitWithHeadroom) {
  const auto series = [](int pools, int loops) { return 12 + 39 + (34 + 12) * pools + 45 * loops; };
  const int largest_shipped = series(3, 2);  // config/examples/game-server.json
  std::vector<std::pair<std::string, int>> limits;
  for (const char* file : {"config/prometheus/prometheus.yml", "config/prometheus/prometheus-b.yml",
                           "deploy/compose/prometheus.yml"}) {
    for (const auto& scrape : Load(file)["scrape_configs"]) {
      ASSERT_TRUE(scrape["sample_limit"].IsDefined()) << file;
      limits.emplace_back(file, scrape["sample_limit"].as<int>());
    }
  }
  limits.emplace_back(
      "deploy/kubernetes/servicemonitor.yaml",
      Load("deploy/kubernetes/servicemonitor.yaml")["spec"]["endpoints"][0]["sampleLimit"]
          .as<int>());
  ASSERT_EQ(limits.size(), 4U);
  for (const auto& [file, limit] : limits) {
    EXPECT_GE(limit, 4 * largest_shipped) << file;
    EXPECT_GE(limit, series(20, 4)) << file;
    // A limit far above any real instance would not catch a label gone unbounded.
    EXPECT_LE(limit, 10 * series(8, 8)) << file;
  }
  // The Operator's Prometheus caps every ServiceMonitor's limit at its enforcedSampleLimit.
  const YAML::Node operator_prometheus =
      YAML::LoadAllFromFile((kSource / "deploy/kubernetes/prometheus-ha.yaml").string())[0];
  EXPECT_GE(operator_prometheus["spec"]["enforcedSampleLimit"].as<int>(), limits.back().second);
}

TEST(DeployTest, SystemdUnitVerifiesCleanAndIsHardened) {
  const std::string unit = ReadFile(kSource / "deploy/systemd/poolwatchd.service");
  for (const char* line : {"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                           "ExecReload=/bin/kill -HUP $MAINPID", "CapabilityBoundingSet=\n",
                           "Type=notify\n", "WatchdogSec=", "Restart=on-failure\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  // Verified with the real binary in place of the install path: systemd-analyze prints every
  // problem (and exits 0 for most), so nothing may be printed.
  TempDir dir;
  std::string local = unit;
  for (std::size_t at = local.find("/usr/local/bin/poolwatchd"); at != std::string::npos;
       at = local.find("/usr/local/bin/poolwatchd", at)) {
    local.replace(at, 25, POOLWATCHD_PATH);
  }
  const std::string path = dir.Write("poolwatchd.service", local);
  const RunResult verify = RunCommand("systemd-analyze verify '" + path + "'");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(verify.output, "");
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// The system calls in a systemd syscall group, as systemd-analyze expands it (groups in groups
// too): the list systemd itself loads into the seccomp filter.
std::set<std::string> SyscallGroup(const std::string& group) {
  const RunResult run = RunCommand("systemd-analyze syscall-filter '" + group + "'");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  std::set<std::string> names;
  std::istringstream lines(run.output);
  std::string line;
  std::getline(lines, line);  // the group's own name
  while (std::getline(lines, line)) {
    const std::size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line[start] == '#') continue;
    const std::string name = line.substr(start);
    if (name.starts_with('@')) {
      names.merge(SyscallGroup(name));
    } else {
      names.insert(name);
    }
  }
  return names;
}

// The value of every `key=` line of a unit.
std::vector<std::string> UnitValues(const std::string& unit, const std::string& key) {
  std::vector<std::string> values;
  std::istringstream lines(unit);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(key + "=")) values.push_back(line.substr(key.size() + 1));
  }
  return values;
}

// The words of a unit's value, split at spaces.
std::vector<std::string> Words(const std::string& value) {
  std::vector<std::string> words;
  std::istringstream stream(value);
  for (std::string word; stream >> word;) words.push_back(word);
  return words;
}

// The unit's seccomp filter kills the process (SIGSYS) at the first system call it does not
// allow, and its RestrictAddressFamilies= makes socket() fail: only under systemd, so nothing
// else would show it. poolwatchd runs here under strace doing all it does as a service (TLS,
// bcrypt logins, every endpoint, stack sampling, a reload, a drained stop), and every call and
// socket family it used must pass the shipped unit's filters as systemd expands them. Not under a
// sanitizer: its runtime makes calls of its own, and the unit runs the plain build.
TEST(DeployTest, SystemdSandboxAllowsEverySyscallAndSocketFamilyTheDaemonUses) {
  const std::string unit = ReadFile(kSource / "deploy/systemd/poolwatchd.service");
  std::set<std::string> allowed;
  std::set<std::string> denied;
  // A line starting with "~" denies every group it names; the others allow theirs.
  for (const std::string& value : UnitValues(unit, "SystemCallFilter")) {
    const bool deny = value.starts_with('~');
    for (const std::string& group : Words(deny ? value.substr(1) : value)) {
      (deny ? denied : allowed).merge(SyscallGroup(group));
    }
  }
  ASSERT_GT(allowed.size(), 100U) << "no allow list in the unit, or systemd-analyze failed";
  ASSERT_FALSE(denied.empty());
  // The same for address families; with no allow line, every family not denied is allowed.
  std::set<std::string> allowed_families;
  std::set<std::string> denied_families;
  for (const std::string& value : UnitValues(unit, "RestrictAddressFamilies")) {
    const bool deny = value.starts_with('~');
    for (const std::string& family : Words(deny ? value.substr(1) : value)) {
      (deny ? denied_families : allowed_families).insert(family);
    }
  }
  ASSERT_FALSE(allowed_families.empty() && denied_families.empty())
      << "the unit restricts no address family";

  TempDir dir;
  SelfSignedCertificate(dir.path(), "server", "localhost");
  dir.Write("web.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "basic_auth_users:\n  alice: " +
                BcryptHash("secret", 5) + "\n");
  const std::uint16_t port = FreePort();
  const std::string config = dir.Write("poolwatchd.json", R"({
    "http": {"listen": "127.0.0.1:)" + std::to_string(port) + R"(", "web_config_file": "web.yml"},
    "loops": [
      {"name": "main", "tick_hz": 100, "pools": [
        {"name": "render", "workload": {"particles": 256}},
        {"name": "physics", "stack_sampling": 1,
         "workload": {"scenario": "leak", "particles": 256}}]},
      {"name": "audio", "tick_hz": 200, "pools": [
        {"name": "audio", "trim_idle_frames": 10, "workload": {"scenario": "spike"}}]}]})");
  const std::string trace = (dir.path() / "strace.txt").string();
  // As systemd starts it (Type=notify, WatchdogSec=): it tells systemd its states, and feeds
  // the watchdog, here every 10 s (the first at once), so that the messages stay below the
  // socket's queue (net.unix.max_dgram_qlen, 10 here) while nothing reads them.
  const NotifySocket systemd(dir.path() / "notify");
  ASSERT_TRUE(systemd.bound());
  std::optional<ChildProcess> started;
  {
    const ScopedEnvironment environment{{"NOTIFY_SOCKET", systemd.path().string()},
                                        {"WATCHDOG_USEC", "20000000"}};
    started.emplace(std::vector<std::string>{"/usr/bin/strace", "-f", "-qq", "-e", "signal=none",
                                             "-o", trace, POOLWATCHD_PATH, "--config", config});
  }
  ChildProcess& strace = *started;
  // The daemon is strace's child, the first pid in the trace. Stopping strace would only detach
  // it, so on any early return it is killed by its own pid.
  pid_t daemon = 0;
  ASSERT_TRUE(Eventually([&] {
    std::istringstream(ReadFile(trace)) >> daemon;
    return daemon > 0;
  })) << strace.Log();
  struct KillOnExit {
    pid_t pid;
    ~KillOnExit() {
      if (pid > 0) kill(pid, SIGKILL);
    }
  } guard{daemon};

  // The status curl got for `target` with `options`.
  const auto curl = [&](const std::string& options, const std::string& target) {
    return RunCommand("curl -sk --max-time 10 -o /dev/null -w '%{http_code}' " + options +
                      " 'https://127.0.0.1:" + std::to_string(port) + target + "'")
        .output;
  };
  const std::string alice = "-u alice:secret";
  ASSERT_TRUE(Eventually([&] { return curl(alice, "/readyz") == "200"; }, std::chrono::seconds{30}))
      << strace.Log();
  EXPECT_EQ(curl("-u alice:wrong", "/metrics"), "401");
  for (const char* target : {"/metrics", "/debug", "/debug/health", "/", "/healthz"}) {
    EXPECT_EQ(curl(alice, target), "200") << target;
  }
  EXPECT_EQ(curl(alice + " --compressed", "/metrics"), "200");
  EXPECT_EQ(curl(alice + " -H 'Accept: application/openmetrics-text;version=1.0.0'", "/metrics"),
            "200");
  EXPECT_EQ(curl(alice + " -H 'Accept: application/vnd.google.protobuf;"
                         "proto=io.prometheus.client.MetricFamily;encoding=delimited'",
                 "/metrics"),
            "200");
  EXPECT_EQ(curl(alice + " -X POST", "/debug/mark?name=before"), "201");

  kill(daemon, SIGHUP);
  ASSERT_TRUE(strace.WaitForLog("config reloaded")) << strace.Log();
  EXPECT_EQ(curl(alice, "/debug"), "200");
  kill(daemon, SIGTERM);
  ASSERT_EQ(strace.WaitExit(std::chrono::seconds{20}), 0) << strace.Log();
  std::set<std::string> told;
  for (std::string state = systemd.Receive(std::chrono::seconds{1}); !state.empty();
       state = systemd.Receive(std::chrono::seconds{1})) {
    told.insert(state.substr(0, state.find('\n')));
  }
  EXPECT_EQ(told, (std::set<std::string>{"READY=1", "WATCHDOG=1", "RELOADING=1", "STOPPING=1"}));
  guard.pid = 0;  // exited: the pid is no longer its own

  std::set<std::string> used;
  std::set<std::string> used_families;
  const std::regex call(R"(^\d+ +([a-z0-9_]+)\()");
  const std::regex socket_family(R"(socket\((AF_[A-Z0-9]+))");
  std::istringstream lines(ReadFile(trace));
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_search(line, match, call)) used.insert(match[1]);
    if (std::regex_search(line, match, socket_family)) used_families.insert(match[1]);
  }
  // The trace saw the daemon work: it served TLS over accepted sockets from named threads.
  for (const char* expected : {"bind", "accept", "clone3", "prctl", "write"}) {
    EXPECT_TRUE(used.contains(expected)) << expected << " missing from the trace";
  }
  for (const std::string& name : used) {
    EXPECT_TRUE(allowed.contains(name) && !denied.contains(name))
        << name << ": called by poolwatchd, killed by the unit's SystemCallFilter";
  }
  EXPECT_FALSE(used_families.empty());
  for (const std::string& family : used_families) {
    EXPECT_TRUE((allowed_families.empty() || allowed_families.contains(family)) &&
                !denied_families.contains(family))
        << family << ": socket() refused by the unit's RestrictAddressFamilies";
  }
}
#endif

}  // namespace
}  // namespace poolwatch::testing

// The shipped deploy/ files: parsed (yaml-cpp), checked for what operators rely on, and for
// drift from the files they are made from.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon_process.h"

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

  const YAML::Node kustomization = Load("deploy/kubernetes/kustomization.yaml");
  for (const auto& resource : kustomization["resources"]) {
    EXPECT_TRUE(std::filesystem::exists(kSource / "deploy/kubernetes" / resource.as<std::string>()))
        << resource.as<std::string>();
  }
  const auto config = kustomization["configMapGenerator"][0]["files"][0].as<std::string>();
  EXPECT_TRUE(
      std::filesystem::exists(kSource / "deploy/kubernetes" / config.substr(config.find('=') + 1)));
}

TEST(DeployTest, ComposeMountsOnlyFilesThatExistAndTheShippedConfigs) {
  const YAML::Node compose = Load("deploy/docker-compose.yml");
  for (const char* service : {"poolwatchd", "prometheus", "alertmanager", "grafana"}) {
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
  EXPECT_EQ(mounts, 6);
  EXPECT_TRUE(compose["services"]["poolwatchd"]["read_only"].as<bool>());
  const RunResult check = RunCommand("promtool check config --syntax-only '" +
                                     (kSource / "deploy/compose/prometheus.yml").string() + "'");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(DeployTest, SystemdUnitVerifiesCleanAndIsHardened) {
  const std::string unit = ReadFile(kSource / "deploy/systemd/poolwatchd.service");
  for (const char* line : {"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                           "ExecReload=/bin/kill -HUP $MAINPID", "CapabilityBoundingSet=\n"}) {
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

}  // namespace
}  // namespace poolwatch::testing

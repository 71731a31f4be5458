#include "cli.h"

#include <gtest/gtest.h>

namespace poolwatch::daemon {
namespace {

// What ParseCommandLine() refuses args with; empty when it accepts them.
std::string UsageErrorOf(const std::vector<std::string>& args) {
  try {
    ParseCommandLine(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(CliTest, DefaultsWithoutArguments) {
  const CliOptions options = ParseCommandLine({});
  EXPECT_EQ(options.config_path, "");  // the built-in defaults
  EXPECT_FALSE(options.check_config);
  EXPECT_FALSE(options.overrides.listen);
}

TEST(CliTest, AcceptsSpaceAndEqualsForms) {
  const CliOptions options =
      ParseCommandLine({"--config", "a.json", "--listen=127.0.0.1:1", "--log-level", "warn",
                        "--scenario=leak", "--check-config"});
  EXPECT_EQ(options.config_path, "a.json");
  EXPECT_EQ(options.overrides.listen, "127.0.0.1:1");
  EXPECT_EQ(options.overrides.log_level, "warn");
  EXPECT_EQ(options.overrides.scenario, "leak");
  EXPECT_TRUE(options.check_config);
}

TEST(CliTest, TakesTheWebConfigFileAsNodeExporterDoes) {
  EXPECT_EQ(
      ParseCommandLine({"--web.config.file=/etc/poolwatch/web.yml"}).overrides.web_config_file,
      "/etc/poolwatch/web.yml");
  EXPECT_EQ(ParseCommandLine({"--web.config.file", "web.yml"}).overrides.web_config_file,
            "web.yml");
  EXPECT_FALSE(ParseCommandLine({}).overrides.web_config_file);
  EXPECT_THROW(ParseCommandLine({"--web.config.file"}), UsageError);
}

TEST(CliTest, RefusesWhatItDoesNotKnowNamingIt) {
  EXPECT_EQ(UsageErrorOf({"--frobnicate"}), "unknown argument \"--frobnicate\" (see --help)");
  EXPECT_EQ(UsageErrorOf({"--config"}), "--config needs a value");
  EXPECT_EQ(UsageErrorOf({"--version=yes"}), "--version takes no value");
  EXPECT_NE(UsageErrorOf({"--scenario", "melt"}).find("--scenario: must be one of"),
            std::string::npos);
  EXPECT_NE(UsageErrorOf({"--log-level", "loud"}).find("--log-level: must be one of"),
            std::string::npos);
  EXPECT_NE(UsageErrorOf({"--listen", "nowhere"}).find("--listen: must be HOST:PORT"),
            std::string::npos);
}

TEST(CliTest, RefusesAFlagGivenTwiceInEitherForm) {
  EXPECT_EQ(UsageErrorOf({"--scenario", "leak", "--scenario=steady"}), "--scenario: given twice");
  EXPECT_EQ(UsageErrorOf({"--listen=:1", "--config", "a.json", "--listen", ":2"}),
            "--listen: given twice");
  EXPECT_EQ(UsageErrorOf({"--check-config", "--check-config"}), "--check-config: given twice");
  EXPECT_EQ(UsageErrorOf({"-h", "--help"}), "--help: given twice");
  // A value that looks like a flag is a value.
  EXPECT_EQ(ParseCommandLine({"--config", "--config"}).config_path, "--config");
  EXPECT_EQ(UsageErrorOf({"--web.config.file", "a.yml", "--log-level", "warn"}), "");
}

}  // namespace
}  // namespace poolwatch::daemon

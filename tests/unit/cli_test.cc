#include "cli.h"

#include <gtest/gtest.h>

namespace poolwatch::daemon {
namespace {

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
  const auto error = [](const std::vector<std::string>& args) -> std::string {
    try {
      ParseCommandLine(args);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error({"--frobnicate"}), "unknown argument \"--frobnicate\" (see --help)");
  EXPECT_EQ(error({"--config"}), "--config needs a value");
  EXPECT_EQ(error({"--version=yes"}), "--version takes no value");
  EXPECT_NE(error({"--scenario", "melt"}).find("--scenario: must be one of"), std::string::npos);
  EXPECT_NE(error({"--log-level", "loud"}).find("--log-level: must be one of"), std::string::npos);
  EXPECT_NE(error({"--listen", "nowhere"}).find("--listen: must be HOST:PORT"), std::string::npos);
}

}  // namespace
}  // namespace poolwatch::daemon

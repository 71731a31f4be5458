#include "config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace poolwatch::daemon {
namespace {

// The message of the ConfigError that parsing `text` throws, or "" if it parses.
std::string ErrorOf(const std::string& text) {
  try {
    ParseConfig(text, "test.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, EmptyObjectGivesTheDefaults) {
  const Config config = ParseConfig("{}");
  EXPECT_EQ(config.http.listen, ":9720");
  EXPECT_EQ(config.log.level, "info");
  ASSERT_EQ(config.loops.size(), 1U);
  EXPECT_EQ(config.loops[0].name, "main");
  EXPECT_EQ(config.loops[0].tick_hz, 60);
  ASSERT_EQ(config.loops[0].pools.size(), 1U);
  EXPECT_EQ(config.loops[0].pools[0].name, "reference");
  EXPECT_EQ(config.loops[0].pools[0].workload.scenario, Scenario::kSteady);
  EXPECT_EQ(config.loops[0].TickPeriod(), std::chrono::nanoseconds{16'666'666});
}

TEST(ConfigTest, ShippedDefaultConfigIsValid) {
  const Config config = LoadConfig(POOLWATCH_SOURCE_DIR "/config/poolwatchd.json");
  EXPECT_EQ(config.http.listen, ":9720");
  ASSERT_EQ(config.loops.size(), 1U);
  EXPECT_EQ(config.loops[0].pools.at(0).name, "reference");
}

// poolwatchd without --config runs on the built-in defaults; the shipped file states exactly
// those, so that editing a copy of it starts from what runs.
TEST(ConfigTest, ShippedDefaultConfigStatesTheBuiltInDefaults) {
  const Config shipped = LoadConfig(POOLWATCH_SOURCE_DIR "/config/poolwatchd.json");
  const Config built_in = LoadConfig("");
  EXPECT_TRUE(shipped == built_in) << "config/poolwatchd.json and Config{} differ";
  Config changed = built_in;
  changed.loops[0].pools[0].workload.spike_factor += 1;
  EXPECT_FALSE(changed == built_in);  // the comparison sees nested fields
}

TEST(ConfigTest, AnUnusableWebConfigFileIsNamedByItsKey) {
  const auto dir = std::filesystem::temp_directory_path() / "poolwatch_config_web_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "poolwatchd.json") << R"({"http": {"web_config_file": "missing.yml"}})";
  try {
    LoadConfig((dir / "poolwatchd.json").string());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_TRUE(message.starts_with("http.web_config_file: ")) << message;
    EXPECT_NE(message.find("missing.yml: cannot be opened for reading"), std::string::npos)
        << message;
  }
  ConfigOverrides overrides;
  overrides.web_config_file = (dir / "absent.yml").string();
  try {
    LoadConfig("", overrides);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("--web.config.file: ")) << e.what();
  }
  overrides.web_config_file = std::string(3, '\0');
  try {
    LoadConfig("", overrides);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--web.config.file: must be a file name without control characters");
  }
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, EveryKeyIsRead) {
  const Config config = ParseConfig(R"({
    "http": {"listen": "127.0.0.1:1234", "max_request_bytes": 4096, "header_timeout_seconds": 2.5,
             "idle_timeout_seconds": 30, "max_connections": 8},
    "log": {"level": "debug", "format": "json"},
    "loop": {"tick_hz": 120, "snapshot_interval_frames": 2},
    "pool": {"name": "audio", "max_bytes": 1048576, "trim_idle_frames": 600},
    "workload": {"scenario": "bloat", "particles": 100, "leak_buffers_per_frame": 3,
                 "leak_buffer_elements": 64, "bloat_every_frames": 7, "spike_every_frames": 9,
                 "spike_factor": 2},
    "diagnostics": {"history_points": 50, "sample_interval_seconds": 0.5, "peak_window_seconds": 60}
  })");
  EXPECT_EQ(config.http.listen, "127.0.0.1:1234");
  EXPECT_EQ(config.http.max_request_bytes, 4096U);
  EXPECT_EQ(config.http.header_timeout, std::chrono::milliseconds{2500});
  EXPECT_EQ(config.http.idle_timeout, std::chrono::seconds{30});
  EXPECT_EQ(config.http.max_connections, 8U);
  EXPECT_EQ(config.log.level, "debug");
  EXPECT_EQ(config.log.format, LogFormat::kJson);
  ASSERT_EQ(config.loops.size(), 1U);
  const LoopConfig& loop = config.loops[0];
  EXPECT_EQ(loop.name, "main");
  EXPECT_EQ(loop.tick_hz, 120);
  EXPECT_EQ(loop.snapshot_interval_frames, 2U);
  ASSERT_EQ(loop.pools.size(), 1U);
  const PoolConfig& pool = loop.pools[0];
  EXPECT_EQ(pool.name, "audio");
  EXPECT_EQ(pool.options.max_bytes, 1048576U);
  EXPECT_EQ(pool.options.trim_idle_frames, 600U);
  EXPECT_EQ(pool.workload.scenario, Scenario::kBloat);
  EXPECT_EQ(pool.workload.particles, 100U);
  EXPECT_EQ(pool.workload.leak_buffers_per_frame, 3U);
  EXPECT_EQ(pool.workload.leak_buffer_elements, 64U);
  EXPECT_EQ(pool.workload.bloat_every_frames, 7U);
  EXPECT_EQ(pool.workload.spike_every_frames, 9U);
  EXPECT_EQ(pool.workload.spike_factor, 2U);
  EXPECT_EQ(config.diagnostics.history_points, 50U);
  EXPECT_EQ(config.diagnostics.sample_interval, std::chrono::milliseconds{500});
  EXPECT_EQ(config.peak_window, std::chrono::seconds{60});
}

// The issue's example: two loops on their own threads, three pools.
constexpr const char* kLoops = R"({
  "loops": [
    {"name": "main", "tick_hz": 60, "pools": [
      {"name": "render", "workload": {"scenario": "steady"}},
      {"name": "physics", "max_bytes": 268435456, "workload": {"scenario": "leak"}}]},
    {"name": "audio", "tick_hz": 200, "snapshot_interval_frames": 4, "pools": [
      {"name": "audio", "trim_idle_frames": 600, "workload": {"scenario": "spike"}}]}]
})";

TEST(ConfigTest, LoopsArrayGivesEachLoopItsPoolsAndMissingKeysTheirDefaults) {
  const Config config = ParseConfig(kLoops);
  ASSERT_EQ(config.loops.size(), 2U);
  const LoopConfig& main = config.loops[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.tick_hz, 60);
  EXPECT_EQ(main.snapshot_interval_frames, 1U);  // default
  ASSERT_EQ(main.pools.size(), 2U);
  EXPECT_EQ(main.pools[0].name, "render");
  EXPECT_EQ(main.pools[0].options.max_bytes, 512ULL << 20);  // default
  EXPECT_EQ(main.pools[0].workload.scenario, Scenario::kSteady);
  EXPECT_EQ(main.pools[1].name, "physics");
  EXPECT_EQ(main.pools[1].options.max_bytes, 268435456U);
  EXPECT_EQ(main.pools[1].workload.scenario, Scenario::kLeak);
  EXPECT_EQ(main.pools[1].workload.particles, 4096U);  // default
  const LoopConfig& audio = config.loops[1];
  EXPECT_EQ(audio.name, "audio");
  EXPECT_EQ(audio.tick_hz, 200);
  EXPECT_EQ(audio.snapshot_interval_frames, 4U);
  ASSERT_EQ(audio.pools.size(), 1U);
  EXPECT_EQ(audio.pools[0].options.trim_idle_frames, 600U);
  EXPECT_EQ(audio.pools[0].workload.scenario, Scenario::kSpike);
}

TEST(ConfigTest, ScenarioOverrideAppliesToEveryPool) {
  const auto path = std::filesystem::temp_directory_path() / "poolwatch_config_loops.json";
  std::ofstream(path) << kLoops;
  ConfigOverrides overrides;
  overrides.scenario = "bloat";
  const Config config = LoadConfig(path.string(), overrides);
  std::filesystem::remove(path);
  int pools = 0;
  for (const LoopConfig& loop : config.loops) {
    for (const PoolConfig& pool : loop.pools) {
      EXPECT_EQ(pool.workload.scenario, Scenario::kBloat) << pool.name;
      ++pools;
    }
  }
  EXPECT_EQ(pools, 3);
}

struct BadConfig {
  const char* text;
  const char* message;  // must appear in the error
};

class ConfigRejectTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigRejectTest, NamesTheKeyPathAndTheReason) {
  const std::string error = ErrorOf(GetParam().text);
  EXPECT_NE(error.find(GetParam().message), std::string::npos)
      << "config: " << GetParam().text << "\nerror: " << error;
}

INSTANTIATE_TEST_SUITE_P(
    Bad, ConfigRejectTest,
    ::testing::Values(
        BadConfig{"", "test.json: empty"}, BadConfig{"  \n ", "test.json: empty"},
        BadConfig{"{\"http\": {", "test.json: not valid JSON"},
        BadConfig{"[1, 2]", "<root>: must be an object"},
        // Found by tests/fuzz/config_fuzz: nlohmann throws out_of_range, not parse_error.
        BadConfig{"{\"loop\": {\"tick_hz\": 2e308}}", "test.json: not valid JSON"},
        BadConfig{"{\"loop\": {\"ticf_xz\": -2e308}}", "test.json: not valid JSON"},
        BadConfig{"{\"htpp\": {}}", "htpp: unknown key"},
        BadConfig{"{\"pool\": {\"max_byte\": 1}}", "pool.max_byte: unknown key"},
        BadConfig{"{\"pool\": {\"max_bytes\": -1}}", "pool.max_bytes: must be an integer"},
        BadConfig{"{\"pool\": {\"max_bytes\": \"1\"}}", "pool.max_bytes: must be an integer"},
        BadConfig{"{\"pool\": {\"max_bytes\": 1.5}}", "pool.max_bytes: must be an integer"},
        BadConfig{"{\"pool\": {\"name\": \"\"}}", "pool.name: must be a string of 1 to 64"},
        BadConfig{"{\"pool\": {\"name\": \"a\\u0000b\"}}",
                  "pool.name: must be a string of 1 to 64 characters without control characters"},
        BadConfig{"{\"pool\": {\"name\": \"line\\nbreak\"}}", "pool.name: must be a string"},
        BadConfig{
            R"({"pool": {"name": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})",
            "pool.name: must be a string of 1 to 64"},
        BadConfig{R"({"http": {"web_config_file": "\u0000\u0000"}})",
                  "http.web_config_file: must be a file name without control characters"},
        // The loops form.
        BadConfig{R"({"loops": [{"name": "main"}], "pool": {}})",
                  "loops: cannot be combined with pool"},
        BadConfig{R"({"loop": {}, "workload": {}, "loops": [{"name": "main"}]})",
                  "loops: cannot be combined with loop, workload"},
        BadConfig{R"({"loops": []})",
                  "loops: must be an array of 1 to 32 objects, got an empty array"},
        BadConfig{R"({"loops": {"name": "main"}})", "loops: must be an array"},
        BadConfig{R"({"loops": [3]})", "loops[0]: must be an object, got 3"},
        BadConfig{R"({"loops": [{"name": "a", "tick_hz": 0}]})",
                  "loops[0].tick_hz: must be a number"},
        BadConfig{R"({"loops": [{"name": "a", "pool": {}}]})", "loops[0].pool: unknown key"},
        BadConfig{R"({"loops": [{"name": "a", "pools": [{"name": "p", "max_bytes": -1}]}]})",
                  "loops[0].pools[0].max_bytes: must be an integer"},
        BadConfig{
            R"({"loops": [{"name": "a", "pools": [{"name": "p", "workload": {"scenario": "x"}}]}]})",
            "loops[0].pools[0].workload.scenario: must be one of"},
        BadConfig{R"({"loops": [{"name": "a", "pools": [{"name": "p", "tick_hz": 5}]}]})",
                  "loops[0].pools[0].tick_hz: unknown key"},
        BadConfig{R"({"loops": [{"name": ""}]})", "loops[0].name: must be a string of 1 to 64"},
        BadConfig{R"({"loops": [{"name": "a"}, {"name": "a", "pools": [{"name": "q"}]}]})",
                  "loops[1].name: \"a\" names two loops (also loops[0])"},
        BadConfig{R"({"loops": [{"name": "a", "pools": [{"name": "p"}]},
                                {"name": "b", "pools": [{"name": "p"}]}]})",
                  "loops[1].pools[0].name: \"p\" names two pools (also loops[0].pools[0])"},
        BadConfig{R"({"loops": [{"name": "a", "pools": [{"name": "p"}, {"name": "p"}]}]})",
                  "loops[0].pools[1].name: \"p\" names two pools (also loops[0].pools[0])"},
        // nlohmann keeps the last of a key given twice: refused, by its path.
        BadConfig{R"({"loop": {"tick_hz": 60, "tick_hz": 30}})", "loop.tick_hz: given twice"},
        BadConfig{R"({"log": {}, "log": {"level": "debug"}})", "log: given twice"},
        BadConfig{R"({"loops": [{"name": "a"}, {"name": "b", "pools": [{"name": "p"},
                                {"name": "q", "max_bytes": 1, "max_bytes": 2}]}]})",
                  "loops[1].pools[1].max_bytes: given twice"},
        BadConfig{"{\"pool\": 3}", "pool: must be an object, got 3"},
        BadConfig{"{\"loop\": {\"tick_hz\": 0}}", "loop.tick_hz: must be a number from 1"},
        BadConfig{"{\"loop\": {\"tick_hz\": 1e9}}", "loop.tick_hz: must be a number from 1"},
        BadConfig{"{\"log\": {\"level\": \"loud\"}}", "log.level: must be one of trace"},
        BadConfig{"{\"log\": {\"format\": \"xml\"}}", "log.format: must be \"text\" or \"json\""},
        BadConfig{"{\"http\": {\"listen\": \"9720\"}}", "http.listen: must be HOST:PORT"},
        BadConfig{"{\"http\": {\"listen\": \":99999\"}}", "http.listen: must be HOST:PORT"},
        BadConfig{"{\"http\": {\"max_connections\": 0}}", "http.max_connections: must be"},
        BadConfig{"{\"workload\": {\"scenario\": \"melt\"}}",
                  "workload.scenario: must be one of steady, leak, bloat, spike, got \"melt\""},
        BadConfig{"{\"workload\": {\"particles\": 0}}", "workload.particles: must be"},
        BadConfig{R"({"diagnostics": {"peak_window_seconds": 0}})",
                  "diagnostics.peak_window_seconds: must be an integer from 1 to 3600, got 0"},
        BadConfig{R"({"diagnostics": {"peak_window_seconds": 1.5}})",
                  "diagnostics.peak_window_seconds: must be an integer"}));

TEST(ConfigTest, HugeInputIsRefusedBeforeParsing) {
  const std::string huge(kMaxConfigBytes + 10, ' ');
  EXPECT_NE(ErrorOf(huge).find("larger than"), std::string::npos);
}

TEST(ConfigTest, LoopsAndPoolsBeyondTheirLimitsAreRefusedWithTheCountFound) {
  const auto loops = [](int n, int pools) {
    std::string text = R"({"loops": [)";
    for (int loop = 0; loop < n; ++loop) {
      text += loop ? R"(,{"name": "l)" : R"({"name": "l)";
      text += std::to_string(loop);
      text += R"(", "pools": [)";
      for (int pool = 0; pool < pools; ++pool) {
        text += pool ? R"(,{"name": "p)" : R"({"name": "p)";
        text += std::to_string(loop * pools + pool);  // unique across loops
        text += R"("})";
      }
      text += "]}";
    }
    text += "]}";
    return text;
  };
  EXPECT_EQ(ErrorOf(loops(32, 64)), "");
  EXPECT_EQ(ErrorOf(loops(33, 1)),
            "loops: must be an array of 1 to 32 objects, got an array of 33");
  EXPECT_EQ(ErrorOf(loops(1, 65)),
            "loops[0].pools: must be an array of 1 to 64 objects, got an array of 65");
}

TEST(ConfigTest, DeeplyNestedInputIsAnErrorNotACrash) {
  const std::string deep = "{\"http\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(ErrorOf(deep), "");
}

TEST(ConfigTest, MissingFileIsNamed) {
  try {
    LoadConfig("/nonexistent/poolwatchd.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/poolwatchd.json: cannot be opened for reading");
  }
}

TEST(ConfigTest, OverridesWinOverTheFile) {
  const auto path = std::filesystem::temp_directory_path() / "poolwatch_config_test.json";
  std::ofstream(path) << R"({"workload": {"scenario": "leak"}, "log": {"level": "warn"}})";
  ConfigOverrides overrides;
  overrides.listen = "127.0.0.1:0";
  overrides.log_level = "debug";
  overrides.scenario = "spike";
  const Config config = LoadConfig(path.string(), overrides);
  std::filesystem::remove(path);
  EXPECT_EQ(config.http.listen, "127.0.0.1:0");
  EXPECT_EQ(config.log.level, "debug");
  EXPECT_EQ(config.loops[0].pools[0].workload.scenario, Scenario::kSpike);
}

TEST(ConfigTest, ReloadNamesEachKeyThatWaitsForARestartWithBothValues) {
  const Config running = ParseConfig(kLoops);
  EXPECT_TRUE(RestartOnlyChanges(running, running).empty());

  // What a reload applies: no restart named.
  Config applied = running;
  applied.log.level = "debug";
  applied.http.web_config_file = "web.yml";
  applied.loops[0].snapshot_interval_frames = 5;
  applied.loops[0].pools[1].options.max_bytes = 1 << 20;
  applied.loops[1].pools[0].workload.scenario = Scenario::kLeak;
  EXPECT_TRUE(RestartOnlyChanges(running, applied).empty());

  const Config waiting = ParseConfig(R"({
    "http": {"listen": "127.0.0.1:9999", "max_request_bytes": 4096, "header_timeout_seconds": 2.5,
             "idle_timeout_seconds": 30, "max_connections": 8},
    "log": {"format": "json"},
    "loops": [
      {"name": "main", "tick_hz": 30, "pools": [{"name": "render"}, {"name": "physics"}]},
      {"name": "audio", "tick_hz": 200, "pools": [{"name": "audio"}]}],
    "diagnostics": {"history_points": 50, "sample_interval_seconds": 0.5, "peak_window_seconds": 60}
  })");
  EXPECT_EQ(RestartOnlyChanges(running, waiting),
            (std::vector<std::string>{
                R"(http.listen ":9720" -> "127.0.0.1:9999")",
                "http.max_request_bytes 8192 -> 4096",
                "http.header_timeout_seconds 10.0 -> 2.5",
                "http.idle_timeout_seconds 60.0 -> 30.0",
                "http.max_connections 512 -> 8",
                R"(log.format "text" -> "json")",
                "tick_hz of loop main 60.0 -> 30.0",
                "diagnostics.history_points 300 -> 50",
                "diagnostics.sample_interval_seconds 1.0 -> 0.5",
                "diagnostics.peak_window_seconds 15 -> 60",
            }));
}

TEST(ListenAddressTest, ParsesTheUsualForms) {
  EXPECT_EQ(ParseListenAddress(":9720").host, "");
  EXPECT_EQ(ParseListenAddress(":9720").port, 9720);
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0").host, "127.0.0.1");
  EXPECT_EQ(ParseListenAddress("[::1]:80").host, "::1");
  EXPECT_EQ(ParseListenAddress("localhost:65535").port, 65535);
  EXPECT_THROW(ParseListenAddress("::1:80"), ConfigError);
  EXPECT_THROW(ParseListenAddress("host:"), ConfigError);
  EXPECT_THROW(ParseListenAddress("host:x1"), ConfigError);
  EXPECT_THROW(ParseListenAddress("host"), ConfigError);
}

}  // namespace
}  // namespace poolwatch::daemon

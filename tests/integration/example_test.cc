// examples/game_server, run as a user would run it: its three pools on two threads served by
// the exporter component, checked by promtool and loaded in a real browser.
#include <gtest/gtest.h>

#include <csignal>

#include "daemon_process.h"
#include "http_client.h"

namespace poolwatch::testing {
namespace {

using namespace std::chrono_literals;

class GameServerExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{POOLWATCH_EXAMPLE_PATH, "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--leak", "physics"});
    ASSERT_TRUE(server_->WaitForLog("exporter listening on 127.0.0.1:")) << server_->Log();
    ASSERT_TRUE(Eventually([&] { return HttpGet(port_, "/readyz").status == 200; }));
  }

  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

TEST_F(GameServerExampleTest, ServesThreePoolsOnTwoLoopsAsPromtoolWantsThem) {
  const HttpResult first = HttpGet(port_, "/metrics");
  ASSERT_EQ(first.status, 200U) << first.error;
  const RunResult lint = RunCommand("promtool check metrics", first.body);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "");

  const auto before = ParseSamples(first.body);
  for (const char* pool : {"render", "physics", "audio"}) {
    EXPECT_TRUE(
        before.contains("poolwatch_pool_allocations_total{pool=\"" + std::string(pool) + "\"}"))
        << pool;
  }
  EXPECT_EQ(before.at("poolwatch_pool_outstanding_buffers{pool=\"render\"}"), 0);
  EXPECT_EQ(before.at("poolwatch_pool_outstanding_buffers{pool=\"audio\"}"), 0)
      << "the audio mix buffer is released every frame";
  std::this_thread::sleep_for(500ms);
  const auto after = ParseSamples(HttpGet(port_, "/metrics").body);
  EXPECT_GT(after.at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}"),
            before.at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}"))
      << "--leak physics loses a held buffer per frame";
  // Two loops at their own rates: audio (187.5 Hz) runs about three frames per simulation frame.
  const double simulation = after.at("poolwatch_frames_total{loop=\"simulation\"}");
  const double audio = after.at("poolwatch_frames_total{loop=\"audio\"}");
  EXPECT_GT(simulation, 0);
  EXPECT_GT(audio, 2 * simulation);
}

TEST_F(GameServerExampleTest, ARealBrowserLoadsTheDebugPageOfEveryPool) {
  ASSERT_TRUE(Eventually([&] {
    return HttpGet(port_, "/debug/health").body.find("game.forgotten_release") != std::string::npos;
  }));
  TempDir profile;
  const RunResult dom = RunCommand(
      "timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --disable-quic "
      "--user-data-dir='" +
      profile.path().string() + "' --dump-dom http://127.0.0.1:" + std::to_string(port_) +
      "/debug 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  EXPECT_NE(dom.output.find("<title>"), std::string::npos);
  for (const char* pool : {"render", "physics", "audio"}) {
    EXPECT_NE(dom.output.find("data-pool=\"" + std::string(pool) + "\""), std::string::npos)
        << pool;
  }
  EXPECT_NE(dom.output.find("data-site=\"game.forgotten_release\""), std::string::npos);
}

TEST_F(GameServerExampleTest, SigtermStopsItWithExitZero) {
  ASSERT_EQ(HttpGet(port_, "/healthz").status, 200U);
  server_->Signal(SIGTERM);
  const auto code = server_->WaitExit(5s);
  ASSERT_TRUE(code) << "still running after SIGTERM";
  EXPECT_EQ(*code, 0) << server_->Log();
  EXPECT_NE(server_->Log().find("stopped serving"), std::string::npos) << server_->Log();
}

TEST(GameServerExampleFlagsTest, AnUnknownPoolOrFlagExitsTwo) {
  const RunResult unknown_pool =
      RunCommand(std::string(POOLWATCH_EXAMPLE_PATH) + " --leak sound 2>&1");
  EXPECT_EQ(unknown_pool.exit_code, 2);
  EXPECT_NE(unknown_pool.output.find("--leak: no pool named \"sound\""), std::string::npos)
      << unknown_pool.output;
  const RunResult unknown_flag = RunCommand(std::string(POOLWATCH_EXAMPLE_PATH) + " --fast 2>&1");
  EXPECT_EQ(unknown_flag.exit_code, 2);
  EXPECT_NE(unknown_flag.output.find("unknown flag --fast"), std::string::npos);
}

}  // namespace
}  // namespace poolwatch::testing

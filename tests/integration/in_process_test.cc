// The daemon in-process, its server on port 0: scrapes, diagnostics reads and reloads race the
// tick thread at 1 kHz. Under ThreadSanitizer (the tsan preset) this is the data-race test.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "daemon.h"
#include "daemon_process.h"
#include "http_client.h"
#include "logging.h"

namespace poolwatch::daemon {
namespace {

using poolwatch::testing::HttpGet;
using poolwatch::testing::ParseSamples;

// Two loops at 1 kHz on their own threads, three pools; `scenario` for the first pool, the
// others steady and spiking.
Config TestConfig(Scenario scenario) {
  Config config;
  config.http.listen = "127.0.0.1:0";
  config.log.level = "warn";
  config.diagnostics.sample_interval = std::chrono::milliseconds{5};
  const auto pool = [](const char* name, Scenario s) {
    PoolConfig p;
    p.name = name;
    p.workload.scenario = s;
    p.workload.particles = 64;
    return p;
  };
  config.loops = {
      {.name = "main",
       .tick_hz = 1000,
       .snapshot_interval_frames = 1,
       .pools = {pool("physics", scenario), pool("render", Scenario::kSteady)}},
      {.name = "audio",
       .tick_hz = 1000,
       .snapshot_interval_frames = 1,
       .pools = {pool("audio", Scenario::kSpike)}},
  };
  return config;
}

TEST(InProcessTest, ScrapesDiagnosticsAndReloadsRaceTheTickLoopSafely) {
  SetupLogging({"warn", LogFormat::kText});  // as main() does, before any thread starts
  std::atomic<int> reloads{0};
  Daemon daemon(TestConfig(Scenario::kSteady), [&] {
    ++reloads;
    return TestConfig(reloads % 2 == 1 ? Scenario::kLeak : Scenario::kSteady);
  });
  daemon.Start();
  const std::uint16_t port = daemon.exporter().port();
  ASSERT_NE(port, 0);
  ASSERT_TRUE(
      poolwatch::testing::Eventually([&] { return HttpGet(port, "/readyz").status == 200; }));

  std::atomic<bool> done{false};
  std::thread reloader([&] {
    while (!done) {
      daemon.Reload();
      std::this_thread::sleep_for(std::chrono::milliseconds{3});
    }
  });
  double last_frames = 0;
  for (int i = 0; i < 150; ++i) {
    const auto scrape = HttpGet(port, "/metrics");
    ASSERT_EQ(scrape.status, 200U) << scrape.error;
    const auto s = ParseSamples(scrape.body);
    for (const char* name : {"physics", "render", "audio"}) {
      const std::string pool = std::string("{pool=\"") + name + "\"}";
      EXPECT_EQ(s.at("poolwatch_pool_allocations_total" + pool) -
                    s.at("poolwatch_pool_releases_total" + pool),
                s.at("poolwatch_pool_outstanding_buffers" + pool))
          << "scrape " << i << " mixed two frames of pool " << name;
    }
    EXPECT_GE(s.at("poolwatch_frames_total{loop=\"main\"}"), last_frames);
    last_frames = s.at("poolwatch_frames_total{loop=\"main\"}");
    EXPECT_GT(s.at("poolwatch_frames_total{loop=\"audio\"}"), 0);
    EXPECT_EQ(HttpGet(port, "/debug/health").status, 200U);
    if (i % 10 == 0) {
      EXPECT_EQ(HttpGet(port, "/debug").status, 200U);
    }
  }
  done = true;
  reloader.join();
  EXPECT_GT(reloads.load(), 5);
  EXPECT_GT(last_frames, 10);

  daemon.Stop();
}

}  // namespace
}  // namespace poolwatch::daemon

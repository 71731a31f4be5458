// The exporter component as an embedder uses it, through its public header only: loops of the
// test's own, served on port 0 over real HTTP, on the exporter's I/O thread or on the test's
// io_context; and Stop() draining what is under way.
#include "poolwatch/exporter/exporter.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon_process.h"
#include "http_client.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/health_monitor.h"

namespace poolwatch::exporter {
namespace {

using namespace std::chrono_literals;
using poolwatch::testing::Eventually;
using poolwatch::testing::HttpGet;
using poolwatch::testing::HttpRequest;
using poolwatch::testing::ParseSamples;

// A loop of the test's own: `frames` frames of a pool that holds one buffer per frame.
struct TestLoop {
  TestLoop(const std::string& loop, const std::string& pool_name)
      : monitor({.loop = loop, .period = 10ms}) {
    monitor.AddPool(pool_name, pool);
  }
  void Run(int frames) {
    for (int i = 0; i < frames; ++i) {
      pool.Acquire(BufferFormat::kU8, 64, "test.held");
      monitor.EndFrame({});
    }
  }
  BufferPool pool;
  HealthMonitor monitor;
};

// A collectable whose Collect() takes `delay`: a scrape that is slow to make.
class SlowCollectable final : public prometheus::Collectable {
 public:
  explicit SlowCollectable(std::chrono::milliseconds delay) : delay_(delay) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    ++calls;
    std::this_thread::sleep_for(delay_);
    return {};
  }
  mutable std::atomic<int> calls{0};

 private:
  std::chrono::milliseconds delay_;
};

struct LogLines {
  std::string All() const {
    std::scoped_lock lock(mutex);
    return text;
  }
  LogCallback Callback() {
    return [this](LogLevel, std::string_view line) {
      std::scoped_lock lock(mutex);
      text.append(line).append("\n");
    };
  }
  mutable std::mutex mutex;
  std::string text;
};

TEST(ExporterTest, ServesEveryAttachedLoopOnPortZeroFromItsOwnThread) {
  LogLines log;
  Options options;
  options.http.listen = "127.0.0.1:0";
  options.log = log.Callback();
  Exporter exporter(options);
  TestLoop sim("sim", "render");
  TestLoop audio("audio", "audio");
  exporter.Attach(sim.monitor);
  exporter.Attach(audio.monitor);
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("game_matches_total")
      .Help("Matches.")
      .Register(*registry)
      .Add({});
  exporter.RegisterCollectable(registry);
  exporter.Start();
  ASSERT_NE(exporter.port(), 0);
  EXPECT_EQ(exporter.local_address(), "127.0.0.1:" + std::to_string(exporter.port()));
  EXPECT_NE(log.All().find("exporter listening on " + exporter.local_address()), std::string::npos)
      << log.All();

  EXPECT_EQ(HttpGet(exporter.port(), "/readyz").status, 503U) << "no loop has published yet";
  sim.Run(5);
  audio.Run(3);
  EXPECT_EQ(HttpGet(exporter.port(), "/readyz").status, 200U);
  EXPECT_EQ(HttpGet(exporter.port(), "/healthz").status, 200U);
  const auto scrape = HttpGet(exporter.port(), "/metrics");
  ASSERT_EQ(scrape.status, 200U) << scrape.error;
  EXPECT_EQ(scrape.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto samples = ParseSamples(scrape.body);
  EXPECT_EQ(samples.at("poolwatch_pool_outstanding_buffers{pool=\"render\"}"), 5);
  EXPECT_EQ(samples.at("poolwatch_pool_outstanding_buffers{pool=\"audio\"}"), 3);
  EXPECT_EQ(samples.at("poolwatch_frames_total{loop=\"sim\"}"), 5);
  EXPECT_EQ(samples.at("game_matches_total"), 0);
  EXPECT_TRUE(samples.contains("process_resident_memory_bytes"));
  EXPECT_EQ(HttpGet(exporter.port(), "/debug/health").status, 200U);
  EXPECT_EQ(exporter.Diagnostics().size(), 2U);

  exporter.Stop();
  EXPECT_NE(log.All().find("stopped serving"), std::string::npos);
  EXPECT_NE(HttpGet(exporter.port(), "/healthz").status, 200U) << "the listener is closed";
}

// Liveness() is the verdict /healthz answers with, for a watchdog of the embedder's (systemd's
// in poolwatchd): a loop that stops publishing fails both, with the same detail; a probe set
// replaces the default in both.
TEST(ExporterTest, LivenessIsWhatHealthzAnswers) {
  Options options;
  options.http.listen = "127.0.0.1:0";
  Exporter exporter(options);
  TestLoop loop("sim", "render");
  exporter.Attach(loop.monitor);
  EXPECT_FALSE(exporter.Liveness().ok) << "not started";
  exporter.Start();
  loop.Run(2);
  EXPECT_TRUE(exporter.Liveness().ok) << exporter.Liveness().detail;
  EXPECT_EQ(HttpGet(exporter.port(), "/healthz").status, 200U);
  // No frame for over a second: ten snapshot intervals of 10 ms, at least 1 s.
  Probe stalled;
  ASSERT_TRUE(Eventually([&] { return !(stalled = exporter.Liveness()).ok; }, 5s));
  EXPECT_TRUE(stalled.detail.starts_with("loop sim stalled: no snapshot for ")) << stalled.detail;
  const auto healthz = HttpGet(exporter.port(), "/healthz");
  EXPECT_EQ(healthz.status, 503U);
  EXPECT_TRUE(healthz.body.starts_with("loop sim stalled: ")) << healthz.body;
  loop.Run(1);
  EXPECT_TRUE(exporter.Liveness().ok) << exporter.Liveness().detail;
  exporter.Stop();

  Exporter probed(options);
  probed.SetLivenessProbe([] { return Probe{false, "the engine says no"}; });
  probed.Start();
  EXPECT_EQ(probed.Liveness().detail, "the engine says no");
  EXPECT_EQ(HttpGet(probed.port(), "/healthz").body, "the engine says no\n");
  probed.Stop();
}

TEST(ExporterTest, ServesOnTheEmbeddersIoContext) {
  boost::asio::io_context io;
  Options options;
  options.http.listen = "127.0.0.1:0";
  Exporter exporter(options);
  TestLoop loop("main", "pool");
  exporter.Attach(loop.monitor);
  exporter.Start(io);
  std::thread io_thread([&] { io.run(); });
  loop.Run(2);
  const auto scrape = HttpGet(exporter.port(), "/metrics");
  EXPECT_EQ(scrape.status, 200U) << scrape.error;
  EXPECT_EQ(ParseSamples(scrape.body).at("poolwatch_frames_total{loop=\"main\"}"), 2);
  exporter.Stop();
  io.stop();
  io_thread.join();
}

TEST(ExporterTest, RefusesBadOptionsNamingThem) {
  const auto error_of = [](Options options) -> std::string {
    try {
      Exporter exporter(std::move(options));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  Options bad_listen;
  bad_listen.http.listen = "9720";
  EXPECT_NE(error_of(bad_listen).find("http.listen: must be HOST:PORT"), std::string::npos);
  Options bad_name;
  bad_name.server_name = "a b";
  EXPECT_NE(error_of(bad_name).find("server_name:"), std::string::npos);
  Options missing_web;
  missing_web.http.web_config_file = "/nonexistent/web.yml";
  EXPECT_NE(error_of(missing_web).find("http.web_config_file: /nonexistent/web.yml"),
            std::string::npos);

  Options taken;
  taken.http.listen = "127.0.0.1:0";
  Exporter first(taken);
  first.Start();
  taken.http.listen = first.local_address();
  Exporter second(taken);
  try {
    second.Start();
    ADD_FAILURE() << "bound a port in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + first.local_address()),
              std::string::npos)
        << e.what();
  }
}

TEST(ExporterTest, ADuplicateLoopOrPoolNameIsRefusedAtAttach) {
  Exporter exporter(Options{});
  TestLoop a("main", "render");
  TestLoop b("main", "physics");
  TestLoop c("other", "render");
  exporter.Attach(a.monitor);
  EXPECT_THROW(exporter.Attach(b.monitor), std::invalid_argument);
  EXPECT_THROW(exporter.Attach(c.monitor), std::invalid_argument);
}

// Stop() while a scrape is being made: the listener closes at once, an idle kept-alive
// connection is closed, and the scrape under way still gets its whole answer.
TEST(ExporterTest, StopDrainsTheAnswersUnderWay) {
  LogLines log;
  Options options;
  options.http.listen = "127.0.0.1:0";
  options.log = log.Callback();
  Exporter exporter(options);
  TestLoop loop("main", "pool");
  exporter.Attach(loop.monitor);
  auto slow = std::make_shared<SlowCollectable>(600ms);
  exporter.RegisterCollectable(slow);
  exporter.Start();
  loop.Run(1);
  const std::uint16_t port = exporter.port();

  poolwatch::testing::HttpResult under_way;
  std::thread scraper([&] { under_way = HttpRequest(port, "GET", "/metrics", {}, 5s); });
  ASSERT_TRUE(Eventually([&] { return slow->calls > 0; }, 5s));
  const auto start = std::chrono::steady_clock::now();
  exporter.Stop();
  const auto took = std::chrono::steady_clock::now() - start;
  scraper.join();

  ASSERT_EQ(under_way.status, 200U)
      << under_way.error << " took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << log.All();
  EXPECT_NE(under_way.body.find("poolwatch_frames_total{loop=\"main\"} 1"), std::string::npos);
  EXPECT_EQ(under_way.headers.at("connection"), "close") << "no keep-alive while draining";
  EXPECT_GT(took, 300ms) << "Stop() returned before the answer under way was written";
  EXPECT_LT(took, 3s);
  EXPECT_EQ(log.All().find("still open after the drain timeout"), std::string::npos);
}

// Stop() under a flood of scrapes: every answer the flood gets is whole; a request either gets
// one or finds the connection refused or closed before its answer began, never a cut-off body.
TEST(ExporterTest, StopUnderAScrapeFloodCutsNoAnswer) {
  Options options;
  options.http.listen = "127.0.0.1:0";
  Exporter exporter(options);
  TestLoop loop("main", "pool");
  exporter.Attach(loop.monitor);
  exporter.Start();
  loop.Run(1);
  const std::uint16_t port = exporter.port();

  std::atomic<bool> stop{false};
  std::atomic<int> whole{0};
  std::mutex mutex;
  std::vector<std::string> cut;
  std::vector<std::thread> flood;
  flood.reserve(6);
  for (int t = 0; t < 6; ++t) {
    flood.emplace_back([&, t] {
      while (!stop) {
        const auto result = HttpRequest(port, "GET", t % 3 == 2 ? "/debug" : "/metrics", {}, 2s);
        if (result.status == 200U) {
          if (result.body.find("</html>") != std::string::npos ||
              result.body.find("process_threads") != std::string::npos) {
            ++whole;
          } else {
            std::scoped_lock lock(mutex);
            cut.emplace_back("200 without its end");
          }
        } else if (result.error.find("partial message") != std::string::npos) {
          std::scoped_lock lock(mutex);
          cut.push_back(result.error);
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return whole > 100; }, 10s));
  const auto start = std::chrono::steady_clock::now();
  exporter.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  const int answered_at_stop = whole;
  std::this_thread::sleep_for(100ms);
  stop = true;
  for (auto& thread : flood) thread.join();
  EXPECT_TRUE(cut.empty()) << cut.size() << " cut off, e.g. " << cut.front();
  EXPECT_LE(whole - answered_at_stop, 6) << "answers after Stop() returned";
}

// An answer that takes longer than drain_timeout does not hold the stop up: its connection is
// closed, and the log says so.
TEST(ExporterTest, TheDrainIsBoundedByItsTimeout) {
  LogLines log;
  Options options;
  options.http.listen = "127.0.0.1:0";
  options.drain_timeout = 200ms;
  options.log = log.Callback();
  Exporter exporter(options);
  TestLoop loop("main", "pool");
  exporter.Attach(loop.monitor);
  auto slow = std::make_shared<SlowCollectable>(2s);
  exporter.RegisterCollectable(slow);
  exporter.Start();
  loop.Run(1);

  std::thread scraper([&] { HttpRequest(exporter.port(), "GET", "/metrics", {}, 5s); });
  ASSERT_TRUE(Eventually([&] { return slow->calls > 0; }, 5s));
  const auto start = std::chrono::steady_clock::now();
  exporter.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  scraper.join();
  EXPECT_NE(log.All().find("1 connection(s) still open after the drain timeout of 200 ms"),
            std::string::npos)
      << log.All();
}

// Two known functions that hold buffers from different call stacks (noipa: not inlined, cloned
// or folded together).
[[gnu::noipa]] BufferId HoldForTheRenderer(BufferPool& pool) {
  const BufferId id = pool.Acquire(BufferFormat::kF32, 16).id();
  asm volatile("# renderer" ::: "memory");
  return id;
}
[[gnu::noipa]] BufferId HoldForTheMixer(BufferPool& pool) {
  const BufferId id = pool.Acquire(BufferFormat::kF32, 4).id();
  asm volatile("# mixer" ::: "memory");
  return id;
}

// The tick thread acquires and releases held buffers from two call stacks while other threads
// scrape /metrics, /debug and /debug/health and make marks: every answer is one whole frame
// (its stacks, ages and outstanding count agree), and at the end the attribution is exactly what
// the loop holds. Run under TSan too (the tsan preset), where a race between the tick thread's
// attribution and the pages' symbolization would fail it.
TEST(ExporterTest, AttributionHoldsUnderScrapesAndMarks) {
  Options options;
  options.http.listen = "127.0.0.1:0";
  Exporter exporter(options);
  BufferPool pool({.stack_sampling = 1});
  HealthMonitor monitor({.loop = "main", .period = 1ms});
  monitor.AddPool("render", pool);
  exporter.Attach(monitor);
  exporter.Start();

  std::atomic<bool> done{false};
  std::atomic<int> consistent{0};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> scrapers;
  for (const char* path : {"/debug/health", "/debug", "/metrics"}) {
    scrapers.emplace_back([&, path = std::string(path)] {
      while (!done) {
        const auto answer = HttpGet(exporter.port(), path);
        if (answer.status != 200) {
          ++inconsistent;
          continue;
        }
        if (path != "/debug/health") continue;
        const auto health = nlohmann::json::parse(answer.body)["pools"][0];
        if (health["latest"].is_null()) continue;
        std::uint64_t stacks = health["call_stacks"]["unsampled"]["count"];
        stacks += health["call_stacks"]["other"]["count"].get<std::uint64_t>();
        for (const auto& top : health["call_stacks"]["top"])
          stacks += top["count"].get<std::uint64_t>();
        std::uint64_t aged = 0;
        for (const auto& bucket : health["ages"]) aged += bucket["count"].get<std::uint64_t>();
        const std::uint64_t held = health["latest"]["memory"]["outstanding_buffers"];
        ++(stacks == held && aged == held ? consistent : inconsistent);
      }
    });
  }
  constexpr int kFrames = 600;
  std::atomic<int> frames{0};
  scrapers.emplace_back([&] {  // marks while the loop runs, so the newest are all counted
    for (int i = 0; frames < kFrames - 100; ++i) {
      HttpRequest(exporter.port(), "POST", "/debug/mark?name=m" + std::to_string(i));
      std::this_thread::sleep_for(20ms);
    }
  });

  // The loop: each frame holds one renderer buffer and one mixer buffer, and returns the mixer
  // buffer of four frames ago; the renderer's all stay.
  std::deque<BufferId> mixer;
  std::thread tick([&] {
    for (int frame = 0; frame < kFrames; ++frame) {
      HoldForTheRenderer(pool);
      mixer.push_back(HoldForTheMixer(pool));
      if (mixer.size() > 4) {
        EXPECT_TRUE(pool.Release(mixer.front()));
        mixer.pop_front();
      }
      monitor.EndFrame({});
      ++frames;
      std::this_thread::sleep_for(1ms);
    }
  });
  tick.join();
  ASSERT_TRUE(Eventually([&] { return consistent >= 5; }));
  done = true;
  for (std::thread& scraper : scrapers) scraper.join();
  EXPECT_EQ(inconsistent, 0);

  const auto health =
      nlohmann::json::parse(HttpGet(exporter.port(), "/debug/health").body)["pools"][0];
  const auto& top = health["call_stacks"]["top"];
  ASSERT_EQ(top.size(), 2U) << health["call_stacks"].dump(2);
  EXPECT_NE(top[0]["function"].get<std::string>().find("HoldForTheRenderer"), std::string::npos);
  EXPECT_EQ(top[0]["count"], kFrames);
  EXPECT_EQ(top[0]["bytes"], kFrames * 64);
  EXPECT_NE(top[1]["function"].get<std::string>().find("HoldForTheMixer"), std::string::npos);
  EXPECT_EQ(top[1]["count"], 4);
  EXPECT_EQ(health["latest"]["memory"]["outstanding_buffers"], kFrames + 4);
  // The newest mark's count is what the loop held since its first frame.
  const auto& marks = health["marks"];
  ASSERT_FALSE(marks.empty());
  for (const auto& mark : marks) {
    const std::uint64_t since = mark["frame"];
    const std::uint64_t renderer = since < kFrames ? kFrames - since : 0;
    const std::uint64_t mixed = std::min<std::uint64_t>(4, renderer);
    EXPECT_EQ(mark["count"], renderer + mixed) << mark.dump();
  }
  exporter.Stop();
}

}  // namespace
}  // namespace poolwatch::exporter

// The real poolwatchd binary, started as a child process and talked to over real HTTP.
#include <gtest/gtest.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "daemon_process.h"
#include "gunzip.h"
#include "http_client.h"
#include "notify_socket.h"

namespace poolwatch::testing {
namespace {

using namespace std::chrono_literals;

// Every metric of the contract table in design.md, and the peaks docs/metrics.md adds.
const std::vector<std::string> kContractMetrics = {
    "poolwatch_pool_frame_allocations",
    "poolwatch_pool_frame_releases",
    "poolwatch_pool_frame_imbalance",
    "poolwatch_pool_allocations_total",
    "poolwatch_pool_releases_total",
    "poolwatch_pool_misses_total",
    "poolwatch_pool_outstanding_buffers",
    "poolwatch_pool_pooled_bytes",
    "poolwatch_pool_in_use_bytes",
    "poolwatch_pool_keys",
    "poolwatch_pool_allocation_failures_total",
    "poolwatch_pool_trimmed_bytes_total",
    "poolwatch_frames_total",
    "poolwatch_frame_overruns_total",
    "poolwatch_frame_duration_seconds",
    "poolwatch_tick_lateness_seconds",
    "poolwatch_health_snapshots_total",
    "poolwatch_pool_frame_peak_in_use_bytes",
    "poolwatch_pool_frame_max_in_use_bytes",
    "poolwatch_pool_frame_peak_allocations",
    "poolwatch_pool_frame_max_allocations",
    "poolwatch_frame_peak_duration_seconds",
    "poolwatch_config_last_reload_successful",
    "poolwatch_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
};

std::string ConfigJson(const std::string& scenario, const std::string& extra_pool = "") {
  return R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
             "workload": {"scenario": ")" +
         scenario + R"(", "particles": 512}, "pool": {"name": "it")" + extra_pool + "}}";
}

std::string Pool(const std::string& metric) { return metric + "{pool=\"it\"}"; }

class DaemonTest : public ::testing::Test {
 protected:
  // Starts poolwatchd on `config` and waits until it is ready.
  void Start(const std::string& config, std::vector<std::string> extra_args = {}) {
    config_path_ = dir_.Write("poolwatchd.json", config);
    std::vector<std::string> args{"--config", config_path_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    daemon_ = std::make_unique<DaemonProcess>(args);
    port_ = daemon_->Port();
    ASSERT_NE(port_, 0) << daemon_->Log();
    ASSERT_TRUE(Eventually([&] { return HttpGet(port_, "/readyz").status == 200; }))
        << daemon_->Log();
  }

  std::map<std::string, double> Scrape() {
    const HttpResult result = HttpGet(port_, "/metrics");
    EXPECT_EQ(result.status, 200U) << result.error;
    return ParseSamples(result.body);
  }

  TempDir dir_;
  std::string config_path_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::uint16_t port_ = 0;
};

TEST_F(DaemonTest, ServesEveryContractMetricWithHelpAndType) {
  Start(ConfigJson("steady"));
  const HttpResult result = HttpGet(port_, "/metrics");
  ASSERT_EQ(result.status, 200U);
  EXPECT_EQ(result.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const std::string& name : kContractMetrics) {
    EXPECT_NE(result.body.find("# HELP " + name + " "), std::string::npos) << name;
    EXPECT_NE(result.body.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  const auto samples = ParseSamples(result.body);
  for (const std::string& name : kContractMetrics) {
    if (name.starts_with("poolwatch_pool_")) {
      EXPECT_TRUE(samples.contains(Pool(name))) << name << " without its pool label";
    }
  }
  EXPECT_EQ(samples.at("poolwatch_config_last_reload_successful"), 1);
  EXPECT_GT(samples.at("process_resident_memory_bytes"), 1 << 20);
}

// Each thread says what it does (top -H, perf, gdb): the tick threads by their loop's name,
// cut to the 15 bytes a thread's name may have.
TEST_F(DaemonTest, ThreadsAreNamedByTheirWork) {
  Start(R"({"http": {"listen": "127.0.0.1:0"}, "loops": [
             {"name": "main", "pools": [{"name": "a"}]},
             {"name": "audio-and-voice-chat", "tick_hz": 100, "pools": [{"name": "b"}]}]})");
  const std::filesystem::path tasks = "/proc/" + std::to_string(daemon_->pid()) + "/task";
  // poolwatchd's own threads, those named "pw-..." (a sanitizer's runtime may add its own).
  const auto named = [&] {
    std::multiset<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      std::string name = ReadFile(task.path() / "comm");
      if (!name.empty() && name.back() == '\n') name.pop_back();
      if (name.starts_with("pw-")) names.insert(name);
    }
    return names;
  };
  const std::multiset<std::string> expected{"pw-http",       "pw-bcrypt",    "pw-exposition",
                                            "pw-debug-page", "pw-tick-main", "pw-tick-audio-a"};
  // The pools' threads name themselves with their first task, soon after the start.
  EXPECT_TRUE(Eventually([&] { return named() == expected; }));
  EXPECT_EQ(named(), expected);
}

TEST_F(DaemonTest, PromtoolCheckMetricsFindsNothingToSay) {
  Start(ConfigJson("leak"));
  const HttpResult result = HttpGet(port_, "/metrics");
  ASSERT_EQ(result.status, 200U);
  const RunResult lint = RunCommand("promtool check metrics", result.body);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "");
}

TEST_F(DaemonTest, SteadyFramesBalanceInEveryScrape) {
  Start(ConfigJson("steady"));
  for (int i = 0; i < 10; ++i) {
    const auto s = Scrape();
    EXPECT_EQ(s.at(Pool("poolwatch_pool_frame_imbalance")), 0);
    EXPECT_EQ(s.at(Pool("poolwatch_pool_outstanding_buffers")), 0);
    EXPECT_EQ(s.at(Pool("poolwatch_pool_allocations_total")),
              s.at(Pool("poolwatch_pool_releases_total")));
    EXPECT_GT(s.at(Pool("poolwatch_pool_frame_allocations")), 0);
    std::this_thread::sleep_for(15ms);
  }
}

// A scrape sees one frame in many; the peaks see them all. Steady frames give a flat peak; in
// the spike scenario (a burst of 8x the buffers every 120 frames), every scrape at 1 Hz shows
// the burst's bytes, and two scrapes back to back agree: nothing resets on reading.
TEST_F(DaemonTest, PeaksShowEveryBurstToEveryScrapeAndStayFlatWhenSteady) {
  Start(ConfigJson("steady"));
  double steady = 0;
  double steady_allocations = 0;
  for (int i = 0; i < 3; ++i) {
    const auto s = Scrape();
    const double peak = s.at(Pool("poolwatch_pool_frame_peak_in_use_bytes"));
    EXPECT_GT(peak, 0);
    EXPECT_EQ(peak, s.at(Pool("poolwatch_pool_frame_max_in_use_bytes")));
    if (i > 0) {
      EXPECT_EQ(peak, steady) << "scrape " << i;
    }
    steady = peak;
    steady_allocations = s.at(Pool("poolwatch_pool_frame_allocations"));
    EXPECT_EQ(s.at(Pool("poolwatch_pool_frame_peak_allocations")), steady_allocations);
    EXPECT_GT(s.at("poolwatch_frame_peak_duration_seconds{loop=\"main\"}"), 0);
    std::this_thread::sleep_for(300ms);
  }

  daemon_.reset();
  Start(ConfigJson("spike"));
  ASSERT_TRUE(Eventually(
      [&] {
        return Scrape().at(Pool("poolwatch_pool_frame_max_allocations")) > 4 * steady_allocations;
      },
      10s))
      << "no burst";
  double burst = 0;
  for (int i = 0; i < 5; ++i) {
    const auto first = Scrape();
    const auto second = Scrape();
    const double peak = first.at(Pool("poolwatch_pool_frame_peak_in_use_bytes"));
    EXPECT_EQ(peak, second.at(Pool("poolwatch_pool_frame_peak_in_use_bytes"))) << "scrape " << i;
    EXPECT_EQ(first.at(Pool("poolwatch_pool_frame_peak_allocations")),
              second.at(Pool("poolwatch_pool_frame_peak_allocations")));
    EXPECT_GT(peak, 4 * steady) << "scrape " << i << " misses the burst";
    if (i > 0) {
      EXPECT_EQ(peak, burst) << "scrape " << i;
    }
    burst = peak;
    // The frame a scrape happens to see is most often not a burst's.
    EXPECT_LE(first.at(Pool("poolwatch_pool_frame_allocations")),
              first.at(Pool("poolwatch_pool_frame_peak_allocations")));
    std::this_thread::sleep_for(1s);
  }
}

TEST_F(DaemonTest, LeakShowsAndEveryScrapeIsOneConsistentFrame) {
  Start(ConfigJson("leak"));
  double previous_outstanding = -1;
  for (int i = 0; i < 30; ++i) {
    const auto s = Scrape();
    const double outstanding = s.at(Pool("poolwatch_pool_outstanding_buffers"));
    EXPECT_EQ(s.at(Pool("poolwatch_pool_allocations_total")) -
                  s.at(Pool("poolwatch_pool_releases_total")),
              outstanding)
        << "scrape " << i;
    EXPECT_EQ(s.at(Pool("poolwatch_pool_frame_imbalance")), 1);
    // The leak scenario loses one buffer per frame, so outstanding = frames.
    EXPECT_EQ(outstanding, s.at("poolwatch_frames_total{loop=\"main\"}"));
    EXPECT_GE(outstanding, previous_outstanding);
    previous_outstanding = outstanding;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GT(previous_outstanding, 10);
}

TEST_F(DaemonTest, GzipWhenAskedDecompressesToTheExposition) {
  Start(ConfigJson("steady"));
  const HttpResult zipped = HttpGet(port_, "/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(zipped.status, 200U);
  EXPECT_EQ(zipped.headers.at("content-encoding"), "gzip");
  EXPECT_EQ(zipped.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto text = Gunzip(zipped.body);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("# TYPE poolwatch_pool_pooled_bytes gauge"), std::string::npos);
  const HttpResult plain = HttpGet(port_, "/metrics");
  EXPECT_FALSE(plain.headers.contains("content-encoding"));
}

TEST_F(DaemonTest, EndpointsStatusesAndMethods) {
  Start(ConfigJson("steady"));
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200U);
  EXPECT_EQ(HttpGet(port_, "/readyz").status, 200U);
  const HttpResult landing = HttpGet(port_, "/");
  EXPECT_EQ(landing.status, 200U);
  EXPECT_NE(landing.body.find("/metrics"), std::string::npos);
  EXPECT_EQ(HttpGet(port_, "/missing").status, 404U);
  const HttpResult post = HttpRequest(port_, "POST", "/metrics");
  EXPECT_EQ(post.status, 405U);
  EXPECT_EQ(post.headers.at("allow"), "GET, HEAD");
  const HttpResult head = HttpRequest(port_, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200U);
  EXPECT_EQ(head.body, "");
  EXPECT_GT(std::stoul(head.headers.at("content-length")), 1000U);
}

TEST_F(DaemonTest, OversizedAndMalformedRequestsGet4xxAndTheLoopKeepsTicking) {
  Start(ConfigJson("steady"));
  const double frames_before = Scrape().at("poolwatch_frames_total{loop=\"main\"}");
  const HttpResult big = HttpGet(port_, "/metrics", {{"X-Filler", std::string(20000, 'a')}});
  EXPECT_EQ(big.status, 431U) << big.error;
  const std::string garbage = RawExchange(port_, "\x01\x02 NOT HTTP\r\n\r\n");
  EXPECT_TRUE(garbage.starts_with("HTTP/1.1 400")) << garbage;
  const std::string huge_body =
      RawExchange(port_, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_TRUE(huge_body.starts_with("HTTP/1.1 413")) << huge_body;
  EXPECT_TRUE(Eventually(
      [&] { return Scrape().at("poolwatch_frames_total{loop=\"main\"}") > frames_before; }));
}

TEST_F(DaemonTest, HealthcheckFlagProbesTheRunningDaemon) {
  Start(ConfigJson("steady"));
  const RunResult healthy = RunPoolwatchd({"--config", config_path_, "--listen",
                                           "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_EQ(healthy.output, "healthy\n");
  const RunResult nobody =
      RunPoolwatchd({"--config", config_path_, "--listen",
                     "127.0.0.1:" + std::to_string(FreePort()), "--healthcheck"});
  EXPECT_EQ(nobody.exit_code, 1) << nobody.output;
  EXPECT_NE(nobody.output.find("unhealthy: GET http://127.0.0.1:"), std::string::npos)
      << nobody.output;
}

TEST_F(DaemonTest, SigtermExitsZeroWithinASecond) {
  Start(ConfigJson("steady"));
  const auto start = std::chrono::steady_clock::now();
  daemon_->Signal(SIGTERM);
  const auto code = daemon_->WaitExit(1s);
  ASSERT_TRUE(code) << "still running a second after SIGTERM";
  EXPECT_EQ(*code, 0) << daemon_->Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_NE(daemon_->Log().find("stopped"), std::string::npos);
}

TEST_F(DaemonTest, SigintStopsToo) {
  Start(ConfigJson("steady"));
  daemon_->Signal(SIGINT);
  EXPECT_EQ(daemon_->WaitExit(2s), 0);
}

// A log reader that goes away (a log shipper restarting, `poolwatchd | head`) must not take the
// daemon with it: its writes into the closed pipe fail (EPIPE) instead of killing it with
// SIGPIPE, and it goes on ticking and serving, and stops cleanly.
TEST(DaemonLogTest, ALogReaderThatGoesAwayDoesNotStopTheDaemon) {
  const std::uint16_t port = FreePort();
  // bash execs poolwatchd with both streams into a pipe whose reader leaves after one byte.
  ChildProcess daemon({"/bin/bash", "-c",
                       std::string("exec '") + POOLWATCHD_PATH + "' --listen 127.0.0.1:" +
                           std::to_string(port) + " > >(head -c 1 > /dev/null) 2>&1"});
  const auto exited = [&] {
    const auto code = daemon.WaitExit(0ms);
    return code ? "exited with " + std::to_string(*code) : std::string("running");
  };
  ASSERT_TRUE(Eventually([&] { return HttpGet(port, "/readyz").status == 200; })) << exited();
  const auto frames = [&] {
    return ParseSamples(HttpGet(port, "/metrics").body)["poolwatch_frames_total{loop=\"main\"}"];
  };
  const double before = frames();
  daemon.Signal(SIGHUP);  // two more log lines, into the closed pipe
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(HttpGet(port, "/healthz").status, 200U) << exited();
  EXPECT_GT(frames(), before);
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.WaitExit(5s), 0);
}

// The id of the daemon's thread named `name`, or 0.
pid_t ThreadNamed(pid_t pid, const std::string& name) {
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    if (ReadFile(task.path() / "comm") == name + "\n") {
      return static_cast<pid_t>(std::stol(task.path().filename().string()));
    }
  }
  return 0;
}

// With Type=notify, systemd learns from poolwatchd when it serves, reloads and stops; with
// WatchdogSec=, it gets a ping at half the interval while the loops tick, and none once a loop
// hangs (its tick thread stopped by ptrace, the rest of the daemon running), so that systemd
// would restart it.
TEST_F(DaemonTest, SystemdIsToldItsStatesAndItsWatchdogIsFedOnlyWhileTheLoopsTick) {
  const NotifySocket systemd(dir_.path() / "notify");
  ASSERT_TRUE(systemd.bound()) << std::strerror(errno);
  {
    const ScopedEnvironment environment{{"NOTIFY_SOCKET", (dir_.path() / "notify").string()},
                                        {"WATCHDOG_USEC", "400000"}};
    Start(ConfigJson("steady"));
  }
  const std::string serving =
      "serving on 127.0.0.1:" + std::to_string(port_) + ", 1 loop(s), 1 pool(s)";
  EXPECT_EQ(systemd.ReceiveState(), "READY=1\nSTATUS=" + serving);
  EXPECT_TRUE(daemon_->WaitForLog("feeding systemd's watchdog every 200 ms")) << daemon_->Log();
  int pings = 0;
  while (pings < 3 && systemd.Receive(2s) == "WATCHDOG=1") ++pings;
  EXPECT_EQ(pings, 3);

  // A reload: RELOADING=1 with the monotonic time, then READY=1; a refused one says so.
  timespec before{};
  clock_gettime(CLOCK_MONOTONIC, &before);
  daemon_->Signal(SIGHUP);
  const std::string reloading = systemd.ReceiveState();
  ASSERT_TRUE(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC=")) << reloading;
  const long long usec = std::stoll(reloading.substr(reloading.find('=', 12) + 1));
  EXPECT_GE(usec, before.tv_sec * 1'000'000LL + before.tv_nsec / 1000) << reloading;
  EXPECT_EQ(systemd.ReceiveState(), "READY=1\nSTATUS=" + serving);
  dir_.Write("poolwatchd.json", "{");
  daemon_->Signal(SIGHUP);
  EXPECT_TRUE(systemd.ReceiveState().starts_with("RELOADING=1\n"));
  EXPECT_EQ(systemd.ReceiveState(),
            "READY=1\nSTATUS=" + serving + "; the last reload was refused, see the log");

  // The loop hangs: its thread stopped, the rest of the daemon runs on.
  const pid_t tick = ThreadNamed(daemon_->pid(), "pw-tick-main");
  ASSERT_NE(tick, 0);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, tick, nullptr, nullptr), 0) << std::strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, tick, nullptr, nullptr), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(tick, &status, __WALL), tick);
  const std::string starving = systemd.ReceiveState();
  EXPECT_TRUE(starving.starts_with("STATUS=not alive: loop main stalled: no snapshot for "))
      << starving;
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 503U);
  EXPECT_EQ(systemd.Receive(1s), "") << "no ping while the loop hangs";
  EXPECT_TRUE(daemon_->WaitForLog("systemd's watchdog is no longer fed")) << daemon_->Log();
  ASSERT_EQ(ptrace(PTRACE_DETACH, tick, nullptr, nullptr), 0) << std::strerror(errno);
  EXPECT_EQ(systemd.Receive(),
            "WATCHDOG=1\nSTATUS=" + serving + "; the last reload was refused, see the log");
  EXPECT_EQ(systemd.Receive(), "WATCHDOG=1");

  daemon_->Signal(SIGTERM);
  EXPECT_EQ(systemd.ReceiveState(), "STOPPING=1");
  EXPECT_EQ(daemon_->WaitExit(), 0);
}

TEST_F(DaemonTest, SighupWithABrokenFileKeepsTheOldConfigThenAGoodOneApplies) {
  Start(ConfigJson("steady"));
  dir_.Write("poolwatchd.json", R"({"workload": {"scenario": "leak", "particlez": 1}})");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("workload.particlez: unknown key")) << daemon_->Log();
  ASSERT_TRUE(
      Eventually([&] { return Scrape().at("poolwatch_config_last_reload_successful") == 0; }));
  // Still running, still steady.
  const auto before = Scrape();
  EXPECT_EQ(before.at(Pool("poolwatch_pool_outstanding_buffers")), 0);
  EXPECT_TRUE(Eventually([&] {
    return Scrape().at("poolwatch_frames_total{loop=\"main\"}") >
           before.at("poolwatch_frames_total{loop=\"main\"}");
  }));

  dir_.Write("poolwatchd.json", ConfigJson("leak"));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(
      Eventually([&] { return Scrape().at("poolwatch_config_last_reload_successful") == 1; }));
  EXPECT_TRUE(Eventually([&] {
    return Scrape().at(Pool("poolwatch_pool_outstanding_buffers")) > 5;
  })) << "the reloaded leak scenario did not take effect";
}

TEST_F(DaemonTest, SighupWithAMissingFileIsRefused) {
  Start(ConfigJson("steady"));
  std::filesystem::remove(config_path_);
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("cannot be opened for reading"));
  EXPECT_EQ(Scrape().at("poolwatch_config_last_reload_successful"), 0);
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200U);
}

TEST_F(DaemonTest, SighupWithAnUnreadableConfigIsRefused) {
  Start(ConfigJson("steady"));
  // Root reads any file whatever its mode: a directory in its place is what cannot be read.
  std::filesystem::remove(config_path_);
  std::filesystem::create_directory(config_path_);
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog(": not a regular file")) << daemon_->Log();
  EXPECT_TRUE(
      Eventually([&] { return Scrape().at("poolwatch_config_last_reload_successful") == 0; }));
  const double frames = Scrape().at("poolwatch_frames_total{loop=\"main\"}");
  EXPECT_TRUE(
      Eventually([&] { return Scrape().at("poolwatch_frames_total{loop=\"main\"}") > frames; }));
  std::filesystem::remove(config_path_);
}

TEST_F(DaemonTest, ByteCapRefusesAllocationsWithoutACrash) {
  Start(R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
            "pool": {"name": "it", "max_bytes": 8388608},
            "workload": {"scenario": "bloat", "particles": 256, "bloat_every_frames": 1}})");
  ASSERT_TRUE(Eventually(
      [&] { return Scrape().at(Pool("poolwatch_pool_allocation_failures_total")) > 20; }));
  const auto s = Scrape();
  EXPECT_LE(s.at(Pool("poolwatch_pool_pooled_bytes")), 8388608);
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200U);
  const double frames = s.at("poolwatch_frames_total{loop=\"main\"}");
  EXPECT_TRUE(Eventually(
      [&] { return Scrape().at("poolwatch_frames_total{loop=\"main\"}") > frames + 10; }));
}

// Trimming turned on by a reload frees what the bloat scenario's old domains left behind, and
// from then on keeps only the keys used within trim_idle_frames.
TEST_F(DaemonTest, SighupTurningTrimmingOnFreesTheKeysLeftIdleBefore) {
  const auto config = [](int trim_idle_frames) {
    return R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
               "pool": {"name": "it", "trim_idle_frames": )" +
           std::to_string(trim_idle_frames) + R"(},
               "workload": {"scenario": "bloat", "particles": 64, "bloat_every_frames": 10}})";
  };
  Start(config(0));
  // Each domain change (10 a second) brings two keys, and nothing frees them.
  ASSERT_TRUE(Eventually([&] { return Scrape().at(Pool("poolwatch_pool_keys")) >= 11; }))
      << daemon_->Log();
  EXPECT_EQ(Scrape().at(Pool("poolwatch_pool_trimmed_bytes_total")), 0);

  dir_.Write("poolwatchd.json", config(5));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("config reloaded")) << daemon_->Log();
  EXPECT_TRUE(Eventually([&] {
    return Scrape().at(Pool("poolwatch_pool_trimmed_bytes_total")) > 0;
  })) << "trimming did not take effect";
  // Left: the particles' three keys and the domain in use (two), plus the one before it for
  // five frames after a change; every domain before the reload is gone.
  EXPECT_TRUE(Eventually([&] { return Scrape().at(Pool("poolwatch_pool_keys")) <= 7; }));
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200U);
}

TEST_F(DaemonTest, FlagsOverrideTheFile) {
  Start(ConfigJson("steady"), {"--scenario", "leak", "--log-level", "debug"});
  EXPECT_TRUE(
      Eventually([&] { return Scrape().at(Pool("poolwatch_pool_outstanding_buffers")) > 0; }));
  EXPECT_TRUE(daemon_->WaitForLog("debug loop main frame"));
}

TEST_F(DaemonTest, JsonLogsAreOneObjectPerLine) {
  Start(R"({"http": {"listen": "127.0.0.1:0"}, "log": {"format": "json"}})");
  const std::string log = daemon_->Log();
  EXPECT_TRUE(log.starts_with("{\"")) << log;
  EXPECT_NE(log.find("\"level\":\"info\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"poolwatchd "), std::string::npos) << log;
}

TEST_F(DaemonTest, PortInUseExitsOneNamingTheAddress) {
  Start(ConfigJson("steady"));
  const RunResult second =
      RunPoolwatchd({"--config", config_path_, "--listen", "127.0.0.1:" + std::to_string(port_)});
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("cannot listen on 127.0.0.1:" + std::to_string(port_)),
            std::string::npos)
      << second.output;
}

struct BadFile {
  std::string name;  // of the test case
  std::string content;
  std::string reason;  // must appear in the output
};

class BadConfigTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadConfigTest, IsRefusedWithExitTwoAndTheReason) {
  TempDir dir;
  const std::string path = dir.Write("bad.json", GetParam().content);
  for (const bool check_only : {false, true}) {
    std::vector<std::string> args{"--config", path};
    if (check_only) args.emplace_back("--check-config");
    const RunResult run = RunPoolwatchd(args);
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_NE(run.output.find(GetParam().reason), std::string::npos) << run.output;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadConfigTest,
    ::testing::Values(
        BadFile{"Empty", "", "empty"}, BadFile{"NotJson", "not json", "not valid JSON"},
        BadFile{"Truncated", R"({"http": {"listen": ":97)", "not valid JSON"},
        BadFile{"WrongType", R"({"pool": {"max_bytes": "lots"}})", "pool.max_bytes: must be"},
        BadFile{"UnknownKey", R"({"loop": {"tick": 60}})", "loop.tick: unknown key"},
        BadFile{"Huge", std::string(2 << 20, ' '), "larger than"},
        BadFile{"LoopsWithThePoolForm", R"({"loops": [{"name": "main"}], "workload": {}})",
                "loops: cannot be combined with workload"},
        BadFile{"DuplicatePool",
                R"({"loops": [{"name": "a", "pools": [{"name": "p"}]},
                                            {"name": "b", "pools": [{"name": "p"}]}]})",
                "loops[1].pools[0].name: \"p\" names two pools"},
        BadFile{"NulInPoolName", R"({"pool": {"name": "a\u0000b"}})",
                "pool.name: must be a string of 1 to 64 characters"}),
    [](const ::testing::TestParamInfo<BadFile>& param_info) { return param_info.param.name; });

// The issue's example: three pools on two loops, physics leaking.
std::string ManyPoolsJson(const std::string& render_scenario, const std::string& physics_scenario,
                          const std::string& extra_pool = "") {
  return R"({"http": {"listen": "127.0.0.1:0"},
    "loops": [
      {"name": "main", "tick_hz": 100, "pools": [
        {"name": "render", "workload": {"scenario": ")" +
         render_scenario + R"(", "particles": 256}},
        {"name": "physics", "max_bytes": 268435456, "workload": {"scenario": ")" +
         physics_scenario + R"(", "particles": 256}})" + extra_pool + R"(]},
      {"name": "audio", "tick_hz": 200, "pools": [
        {"name": "audio", "trim_idle_frames": 600,
         "workload": {"scenario": "spike", "particles": 64}}]}]})";
}

// The OpenMetrics exposition as Prometheus asks for it, read by the strictest parser at hand:
// python3-prometheus-client's (Debian's, so under /usr/bin/python3). It refuses a missing # EOF,
// a counter family named with _total, a UNIT its name does not end in, an exemplar on a gauge
// or over 128 characters, a bucket out of order. It then prints what it read.
TEST_F(DaemonTest, OpenMetricsPassesTheStrictParserOfPythonsClient) {
  Start(ManyPoolsJson("steady", "leak"));
  const HttpResult result =
      HttpGet(port_, "/metrics",
              {{"Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}});
  ASSERT_EQ(result.status, 200U);
  EXPECT_EQ(result.headers.at("content-type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const RunResult parsed = RunCommand(R"(/usr/bin/python3 -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        if sample.exemplar:
            print("exemplar", sample.name, sample.labels["pool"], sample.exemplar.labels["site"],
                  sample.exemplar.labels["frame"].isdigit(), sample.exemplar.value)
    print("family", family.name, family.type, family.unit)
')",
                                      result.body);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.output;
  for (const char* line :
       {"family poolwatch_pool_allocations counter \n",
        "family poolwatch_pool_pooled_bytes gauge bytes\n",
        "family poolwatch_frame_duration_seconds histogram seconds\n",
        "family poolwatch_pool_allocations_per_frame histogram \n",
        "family process_cpu_seconds counter seconds\n",
        "exemplar poolwatch_pool_allocations_total physics reference_workload.leak True 1\n"}) {
    EXPECT_NE(parsed.output.find(line), std::string::npos) << line << "\n" << parsed.output;
  }
  EXPECT_EQ(parsed.output.find("exemplar poolwatch_pool_allocations_total render"),
            std::string::npos)
      << "a steady pool holds nothing: no exemplar";
}

TEST_F(DaemonTest, ManyPoolsGiveOneFamilyEachAndASeriesPerPoolAndLoop) {
  Start(ManyPoolsJson("steady", "leak"));
  const HttpResult result = HttpGet(port_, "/metrics");
  ASSERT_EQ(result.status, 200U);
  const RunResult lint = RunCommand("promtool check metrics", result.body);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "");
  for (const std::string& name : kContractMetrics) {
    const std::string help = "# HELP " + name + " ";
    const auto first = result.body.find(help);
    EXPECT_NE(first, std::string::npos) << name;
    EXPECT_EQ(result.body.find(help, first + 1), std::string::npos) << name << " twice";
  }
  for (int i = 0; i < 20; ++i) {
    const auto s = Scrape();
    for (const char* pool : {"render", "physics", "audio"}) {
      const std::string label = std::string("{pool=\"") + pool + "\"}";
      EXPECT_EQ(s.at("poolwatch_pool_allocations_total" + label) -
                    s.at("poolwatch_pool_releases_total" + label),
                s.at("poolwatch_pool_outstanding_buffers" + label))
          << pool << " in scrape " << i;
    }
    // Only physics leaks, one held buffer per frame of its loop.
    EXPECT_EQ(s.at("poolwatch_pool_outstanding_buffers{pool=\"render\"}"), 0);
    EXPECT_EQ(s.at("poolwatch_pool_outstanding_buffers{pool=\"audio\"}"), 0);
    EXPECT_EQ(s.at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}"),
              s.at("poolwatch_frames_total{loop=\"main\"}"));
    EXPECT_GT(s.at("poolwatch_frames_total{loop=\"audio\"}"), 0);
    EXPECT_TRUE(s.contains("poolwatch_frame_duration_seconds_count{loop=\"audio\"}"));
    std::this_thread::sleep_for(10ms);
  }
}

// docs/metrics.md: samples per scrape = 12 + H + 34 × pools + 45 × loops at 60 Hz (Prometheus
// adds 5 more series per target), H the server's (handler, code) pairs answered so far; a loop 2
// fewer per fine bucket its shorter period drops: 43 at 100 Hz (no 500 µs), 41 at 200 Hz (nor
// 250 µs); and 2 per site holding buffers in a pool, at most 6 sites (5 and "other"). A new
// family or bucket changes the formula, and this says so.
TEST_F(DaemonTest, SeriesPerInstanceFollowTheFormula) {
  // Those of the server's own requests apart: one per (handler, code) answered so far, which
  // here depends on how often the start was awaited (/readyz 503, then 200).
  const auto samples = [&] {
    const HttpResult result = HttpGet(port_, "/metrics");
    EXPECT_EQ(result.status, 200U);
    const auto parsed = ParseSamples(result.body);
    const auto requests = std::ranges::count_if(parsed, [](const auto& sample) {
      return sample.first.starts_with("poolwatch_http_requests_total{");
    });
    EXPECT_TRUE(parsed.contains(R"(poolwatch_http_requests_total{code="200",handler="/metrics"})"));
    EXPECT_LE(requests, 39);
    return parsed.size() - static_cast<std::size_t>(requests);
  };
  Start(ConfigJson("steady"));
  EXPECT_EQ(samples(), 12U + 34 * 1 + 43);  // one pool on a 100 Hz loop
  daemon_.reset();
  Start(ManyPoolsJson("steady", "leak"));
  // Loops at 100 and 200 Hz; physics leaks from one site: its buffers and bytes.
  EXPECT_EQ(samples(), 12U + 34 * 3 + 43 + 41 + 2);
}

TEST_F(DaemonTest, SighupAppliesPerPoolWorkloadsAndRefusesANewPool) {
  Start(ManyPoolsJson("steady", "steady"));
  dir_.Write("poolwatchd.json", ManyPoolsJson("steady", "leak"));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("pool physics: scenario changed: steady -> leak"))
      << daemon_->Log();
  ASSERT_TRUE(Eventually(
      [&] { return Scrape().at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}") > 5; }));
  EXPECT_EQ(Scrape().at("poolwatch_pool_outstanding_buffers{pool=\"render\"}"), 0);

  // A pool more needs a restart: refused, and the running pools go on as they were.
  dir_.Write("poolwatchd.json", ManyPoolsJson("leak", "steady", R"(, {"name": "particles"})"));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("needs a restart")) << daemon_->Log();
  ASSERT_TRUE(
      Eventually([&] { return Scrape().at("poolwatch_config_last_reload_successful") == 0; }));
  const auto s = Scrape();
  EXPECT_FALSE(s.contains("poolwatch_pool_keys{pool=\"particles\"}"));
  EXPECT_EQ(s.at("poolwatch_pool_outstanding_buffers{pool=\"render\"}"), 0);
  const double physics = s.at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}");
  EXPECT_TRUE(Eventually([&] {
    return Scrape().at("poolwatch_pool_outstanding_buffers{pool=\"physics\"}") > physics;
  })) << "physics stopped leaking: the refused config was applied";
}

// PostgreSQL's way: a reload applies what it can and names, with both values, each key that
// waits for a restart; before, the warning named categories only, and diagnostics.* not at all,
// though a reload ignored them.
TEST_F(DaemonTest, SighupAppliesWhatItCanAndNamesEachKeyThatWaitsForARestart) {
  Start(ConfigJson("steady"));
  dir_.Write("poolwatchd.json", R"({
    "http": {"listen": "127.0.0.1:1", "max_connections": 8}, "loop": {"tick_hz": 100},
    "workload": {"scenario": "leak", "particles": 512}, "pool": {"name": "it"},
    "diagnostics": {"history_points": 30}})");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog(
      "config reload: these take effect only after a restart, the rest is applied: http.listen "
      R"("127.0.0.1:0" -> "127.0.0.1:1", http.max_connections 512 -> 8, )"
      "diagnostics.history_points 300 -> 30\n"))
      << daemon_->Log();
  ASSERT_TRUE(daemon_->WaitForLog("pool it: scenario changed: steady -> leak")) << daemon_->Log();
  // Still on the port it bound, and the new workload runs.
  ASSERT_TRUE(
      Eventually([&] { return Scrape().at(Pool("poolwatch_pool_outstanding_buffers")) > 5; }));
  EXPECT_EQ(Scrape().at("poolwatch_config_last_reload_successful"), 1);
}

TEST(DaemonCliTest, CheckConfigAcceptsTheShippedConfigs) {
  for (const char* config : {"config/poolwatchd.json", "config/examples/game-server.json"}) {
    const RunResult run = RunPoolwatchd(
        {"--check-config", "--config", std::string(POOLWATCH_SOURCE_DIR "/") + config});
    EXPECT_EQ(run.exit_code, 0) << config << ": " << run.output;
    EXPECT_NE(run.output.find(": OK"), std::string::npos) << config;
  }
}

TEST(DaemonCliTest, BadFlagsExitTwoAndHelpAndVersionExitZero) {
  EXPECT_EQ(RunPoolwatchd({"--bogus"}).exit_code, 2);
  EXPECT_EQ(RunPoolwatchd({"--scenario", "melt"}).exit_code, 2);
  const RunResult twice =
      RunPoolwatchd({"--check-config", "--scenario=leak", "--scenario", "spike"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.output.find("poolwatchd: --scenario: given twice"), std::string::npos)
      << twice.output;
  const RunResult help = RunPoolwatchd({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--check-config"), std::string::npos);
  const RunResult version = RunPoolwatchd({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(version.output.starts_with("poolwatchd ")) << version.output;
}

// Without --config, from a directory with no config/ below it: the built-in defaults.
TEST(DaemonCliTest, WithoutAConfigFileItRunsOnTheBuiltInDefaults) {
  const RunResult check = RunPoolwatchd({"--check-config"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "built-in defaults: OK\n");

  DaemonProcess daemon({"--listen", "127.0.0.1:0"});
  const std::uint16_t port = daemon.Port();
  ASSERT_NE(port, 0) << daemon.Log();
  ASSERT_TRUE(Eventually([&] { return HttpGet(port, "/readyz").status == 200; })) << daemon.Log();
  const auto samples = ParseSamples(HttpGet(port, "/metrics").body);
  EXPECT_TRUE(samples.contains("poolwatch_pool_keys{pool=\"reference\"}"));
  EXPECT_TRUE(samples.contains("poolwatch_frames_total{loop=\"main\"}"));
}

TEST(DaemonCliTest, MissingConfigFileExitsTwo) {
  const RunResult run = RunPoolwatchd({"--config", "/nonexistent.json"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("/nonexistent.json: cannot be opened"), std::string::npos);
}

}  // namespace
}  // namespace poolwatch::testing

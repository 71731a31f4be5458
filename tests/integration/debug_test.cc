// /debug/health and /debug on the real poolwatchd, the page rendered by a real browser.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon_process.h"
#include "http_client.h"

namespace poolwatch::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class DebugEndpointsTest : public ::testing::Test {
 protected:
  void Start(const std::string& scenario) {
    StartWith(R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
            "diagnostics": {"sample_interval_seconds": 0.1},
            "workload": {"scenario": ")" +
              scenario + R"(", "particles": 256}})");
  }

  void StartWith(const std::string& config_text) {
    const std::string config = dir_.Write("poolwatchd.json", config_text);
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", config});
    port_ = daemon_->Port();
    ASSERT_NE(port_, 0) << daemon_->Log();
    ASSERT_TRUE(Eventually([&] { return HttpGet(port_, "/readyz").status == 200; }));
  }

  json AllPools() {
    const HttpResult result = HttpGet(port_, "/debug/health");
    EXPECT_EQ(result.status, 200U) << result.error;
    EXPECT_EQ(result.headers.at("content-type"), "application/json");
    return json::parse(result.body)["pools"];
  }

  // The single-pool form's one pool.
  json Health() {
    const json pools = AllPools();
    EXPECT_EQ(pools.size(), 1U);
    return pools.empty() ? json::object() : pools[0];
  }

  static json Find(const json& rows, const std::string& key, const std::string& value) {
    for (const json& row : rows) {
      if (row[key] == value) return row;
    }
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::uint16_t port_ = 0;
};

TEST_F(DebugEndpointsTest, LeakNamesTheLeakingSiteAndItsCountGrows) {
  Start("leak");
  ASSERT_TRUE(Eventually([&] { return Health()["history"].size() >= 3; }));
  const json first = Health();
  const json row = Find(first["attribution"], "site", "reference_workload.leak");
  ASSERT_FALSE(row.is_null()) << first.dump(2);
  EXPECT_EQ(row["format"], "f32");
  EXPECT_EQ(row["bytes"], row["count"].get<std::uint64_t>() * 256 * 4);
  EXPECT_EQ(first["latest"]["memory"]["outstanding_buffers"], row["count"]);
  EXPECT_EQ(first["latest"]["memory"]["imbalance"], 1);
  const auto count = row["count"].get<std::uint64_t>();
  const auto age = row["oldest_age_frames"].get<std::uint64_t>();
  std::this_thread::sleep_for(100ms);
  const json later = Find(Health()["attribution"], "site", "reference_workload.leak");
  EXPECT_GT(later["count"].get<std::uint64_t>(), count);
  EXPECT_GT(later["oldest_age_frames"].get<std::uint64_t>(), age);
  // The imbalance is seen (pending: `for` is five minutes, as in the shipped rules).
  const json imbalance = Find(first["verdicts"], "alert", "PoolwatchPoolImbalance");
  EXPECT_GT(imbalance["value"].get<double>(), 0);
  EXPECT_EQ(imbalance["pending"], "critical");
}

TEST_F(DebugEndpointsTest, SteadyHasNoVerdictAboveOkAndNothingOutstanding) {
  Start("steady");
  ASSERT_TRUE(Eventually([&] { return Health()["history"].size() >= 3; }));
  const json health = Health();
  ASSERT_EQ(health["verdicts"].size(), 4U);
  for (const json& verdict : health["verdicts"]) {
    EXPECT_EQ(verdict["severity"], "ok") << verdict.dump();
    EXPECT_TRUE(verdict["pending"].is_null()) << verdict.dump();
  }
  EXPECT_TRUE(health["attribution"].empty());
  EXPECT_EQ(health["latest"]["memory"]["imbalance"], 0);
  EXPECT_GT(health["latest"]["memory"]["pool_allocs"], 0);
}

// An untagged leak (leak_site "") has no site to name; its call stacks name the function that
// leaks, in poolwatchd's own build, symbolized off the tick thread. The ages add up to what is
// held, and move up as the leak gets older.
TEST_F(DebugEndpointsTest, AnUntaggedLeakIsNamedByItsCallStack) {
  StartWith(R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
    "diagnostics": {"sample_interval_seconds": 0.1},
    "pool": {"name": "reference", "stack_sampling": 1},
    "workload": {"scenario": "leak", "leak_site": "", "particles": 256}})");
  // Over a second: the oldest buffers are in the second age bucket.
  ASSERT_TRUE(Eventually([&] { return Health()["ages"][1]["count"] > 0; }, 10s));
  const json health = Health();
  ASSERT_FALSE(Find(health["attribution"], "site", "(untagged)").is_null()) << health.dump(2);
  const json& stacks = health["call_stacks"];
  EXPECT_EQ(stacks["sampling"], 1);
  ASSERT_EQ(stacks["top"].size(), 1U) << stacks.dump(2);
  const json& top = stacks["top"][0];
  EXPECT_NE(top["function"].get<std::string>().find("ReferenceWorkload::LeakHeldBuffers"),
            std::string::npos)
      << top.dump(2);
  EXPECT_NE(top["location"].get<std::string>().find("reference_workload.cc:"), std::string::npos)
      << top.dump(2);
  EXPECT_TRUE(top["site"].is_null());
  EXPECT_GE(top["oldest_age_seconds"].get<double>(), 1.0);
  EXPECT_EQ(top["bytes"], top["count"].get<std::uint64_t>() * 256 * 4);
  EXPECT_EQ(stacks["unsampled"]["count"], 0);
  // Outward from the leak: the loop's frame, then the tick thread's.
  bool tick = false;
  for (const json& frame : top["frames"]) {
    tick = tick ||
           frame["function"].get<std::string>().find("SimulationLoop::Tick") != std::string::npos;
  }
  EXPECT_TRUE(tick) << top["frames"].dump(2);

  std::uint64_t aged = 0;
  for (const json& bucket : health["ages"]) aged += bucket["count"].get<std::uint64_t>();
  EXPECT_EQ(aged, health["latest"]["memory"]["outstanding_buffers"]);
  EXPECT_EQ(health["ages"][0]["age"], "under_1s");
  EXPECT_EQ(health["ages"][4]["age"], "over_1h");
}

// POST /debug/mark records a moment; from it on each pool counts what is acquired and still
// held, by site and stack. Bad names get a 400 naming the problem, other methods a 405, and the
// loop keeps ticking.
TEST_F(DebugEndpointsTest, AMarkShowsWhatWasAcquiredSinceAndIsStillHeld) {
  Start("leak");
  ASSERT_TRUE(Eventually([&] { return Health()["history"].size() >= 3; }));
  const HttpResult made = HttpRequest(port_, "POST", "/debug/mark?name=before+level+2");
  ASSERT_EQ(made.status, 201U) << made.body;
  const json mark = json::parse(made.body);
  EXPECT_EQ(mark["name"], "before level 2");
  EXPECT_EQ(mark["id"], 1);

  ASSERT_TRUE(Eventually([&] {
    const json marks = Health()["marks"];
    return marks.size() == 1 && marks[0]["count"].get<std::uint64_t>() >= 20;
  }));
  const json health = Health();
  const json& since = health["marks"][0];
  EXPECT_EQ(since["name"], "before level 2");
  const std::uint64_t held = health["latest"]["memory"]["outstanding_buffers"];
  // The leak holds one buffer from each frame since frame 0; the mark counts those from its
  // first frame on: exactly the rest.
  EXPECT_EQ(held, health["latest"]["timing"]["frames_total"]);
  EXPECT_GT(since["frame"].get<std::uint64_t>(), 0U);
  EXPECT_EQ(since["count"].get<std::uint64_t>() + since["frame"].get<std::uint64_t>(), held);
  ASSERT_EQ(since["sites"].size(), 1U);
  EXPECT_EQ(since["sites"][0]["site"], "reference_workload.leak");
  EXPECT_EQ(since["sites"][0]["count"], since["count"]);
  EXPECT_EQ(health["call_stacks"]["sampling"], 64);  // the default
  EXPECT_EQ(Health()["latest"]["memory"]["imbalance"], 1);

  for (const char* bad : {"/debug/mark", "/debug/mark?name=", "/debug/mark?name=%zz",
                          "/debug/mark?name=%0A", "/debug/mark?other=1"}) {
    const HttpResult refused = HttpRequest(port_, "POST", bad);
    EXPECT_EQ(refused.status, 400U) << bad;
    EXPECT_NE(refused.body.find("bad mark: "), std::string::npos) << refused.body;
  }
  const HttpResult get = HttpGet(port_, "/debug/mark?name=x");
  EXPECT_EQ(get.status, 405U);
  EXPECT_EQ(get.headers.at("allow"), "POST");
  // Bounded: the ninth mark drops the first.
  for (int i = 2; i <= 9; ++i) {
    ASSERT_EQ(HttpRequest(port_, "POST", "/debug/mark?name=m" + std::to_string(i)).status, 201U);
  }
  ASSERT_TRUE(Eventually([&] { return Health()["marks"].size() == 8; }));
  const json body = json::parse(HttpGet(port_, "/debug/health").body);
  EXPECT_EQ(body["marks"].size(), 8U);
  EXPECT_EQ(body["marks"][0]["name"], "m2");
  const std::uint64_t frames = Health()["latest"]["timing"]["frames_total"];
  ASSERT_TRUE(Eventually(
      [&] { return Health()["latest"]["timing"]["frames_total"].get<std::uint64_t>() > frames; }));
}

// Debian's chromium, headless, loads /debug from the running daemon: the rendered DOM has the
// charts and the attribution row of the leaking site; a screenshot is kept as an artifact.
TEST_F(DebugEndpointsTest, ARealBrowserRendersTheChartsAndTheLeakingSite) {
  StartWith(R"({"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 100},
    "diagnostics": {"sample_interval_seconds": 0.1},
    "pool": {"name": "reference", "stack_sampling": 4},
    "workload": {"scenario": "leak", "particles": 256}})");
  ASSERT_EQ(HttpRequest(port_, "POST", "/debug/mark?name=before+the+screenshot").status, 201U);
  ASSERT_TRUE(Eventually([&] { return Health()["history"].size() >= 5; }));
  ASSERT_TRUE(Eventually([&] { return !Health()["call_stacks"]["top"].empty(); }));
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --disable-quic "
      "--hide-scrollbars --user-data-dir='" +
      (dir_.path() / "chromium").string() + "'";
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/debug";
  const RunResult dom =
      RunCommand("timeout 60 chromium " + flags + " --dump-dom " + url + " 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  for (const char* chart :
       {"chart-bytes-0", "chart-allocs-0", "chart-keys-0", "chart-frame-time-0"}) {
    EXPECT_NE(dom.output.find("<svg id=\"" + std::string(chart) + "\""), std::string::npos)
        << chart;
  }
  EXPECT_NE(dom.output.find("<polyline class=\"series\" data-series=\"pooled\""),
            std::string::npos);
  EXPECT_NE(dom.output.find("<tr class=\"site\" data-site=\"reference_workload.leak\">"),
            std::string::npos)
      << dom.output;
  // The call stacks of the leak, by function, its stack folded under it; the ages; the marks.
  EXPECT_NE(dom.output.find("<table class=\"stacks\" id=\"stacks-0\">"), std::string::npos);
  EXPECT_NE(dom.output.find("<tr class=\"stack\" data-function=\"poolwatch::daemon::"
                            "ReferenceWorkload::LeakHeldBuffers("),
            std::string::npos)
      << dom.output;
  EXPECT_NE(dom.output.find("SimulationLoop::Tick"), std::string::npos);
  EXPECT_NE(dom.output.find("<table class=\"ages\" id=\"ages-0\">"), std::string::npos);
  EXPECT_NE(dom.output.find("Acquired since mark before the screenshot"), std::string::npos);

  const std::filesystem::path artifacts = POOLWATCH_ARTIFACT_DIR;
  std::filesystem::create_directories(artifacts);
  const std::filesystem::path screenshot = artifacts / "debug-page.png";
  std::filesystem::remove(screenshot);
  const RunResult shot =
      RunCommand("timeout 60 chromium " + flags + " --window-size=1300,900 --screenshot='" +
                 screenshot.string() + "' " + url + " 2>&1");
  EXPECT_EQ(shot.exit_code, 0) << shot.output;
  ASSERT_TRUE(std::filesystem::exists(screenshot)) << shot.output;
  EXPECT_GT(std::filesystem::file_size(screenshot), 20000U);
  std::cout << "[ artifact ] " << screenshot.string() << "\n";
}

// Several loops and pools: one entry per pool, each judged on its own numbers, and the page
// shows every pool.
TEST_F(DebugEndpointsTest, EveryPoolHasItsOwnDiagnosisAndSection) {
  StartWith(R"({"http": {"listen": "127.0.0.1:0"},
    "diagnostics": {"sample_interval_seconds": 0.1},
    "loops": [
      {"name": "main", "tick_hz": 100, "pools": [
        {"name": "render", "workload": {"scenario": "steady", "particles": 256}},
        {"name": "physics", "workload": {"scenario": "leak", "particles": 256}}]},
      {"name": "audio", "tick_hz": 200, "pools": [
        {"name": "audio", "workload": {"scenario": "spike", "particles": 64}}]}]})");
  ASSERT_TRUE(Eventually([&] {
    for (const json& pool : AllPools()) {
      if (pool["history"].size() < 3) return false;
    }
    return true;
  }));
  const json pools = AllPools();
  ASSERT_EQ(pools.size(), 3U);
  const json render = Find(pools, "pool", "render");
  const json physics = Find(pools, "pool", "physics");
  const json audio = Find(pools, "pool", "audio");
  ASSERT_FALSE(render.is_null() || physics.is_null() || audio.is_null()) << pools.dump(2);
  EXPECT_EQ(render["loop"], "main");
  EXPECT_EQ(physics["loop"], "main");
  EXPECT_EQ(audio["loop"], "audio");
  EXPECT_EQ(audio["tick_hz"], 200);
  EXPECT_TRUE(render["attribution"].empty());
  EXPECT_TRUE(audio["attribution"].empty());
  EXPECT_FALSE(Find(physics["attribution"], "site", "reference_workload.leak").is_null());
  EXPECT_EQ(Find(physics["verdicts"], "alert", "PoolwatchPoolImbalance")["pending"], "critical");
  EXPECT_TRUE(Find(render["verdicts"], "alert", "PoolwatchPoolImbalance")["pending"].is_null());
  EXPECT_GT(render["latest"]["timing"]["frames_total"].get<std::uint64_t>(), 0U);

  const HttpResult page = HttpGet(port_, "/debug");
  ASSERT_EQ(page.status, 200U);
  for (const char* pool : {"render", "physics", "audio"}) {
    EXPECT_NE(page.body.find("class=\"pool\" id=\"pool-"), std::string::npos);
    EXPECT_NE(page.body.find("data-pool=\"" + std::string(pool) + "\">"), std::string::npos)
        << pool;
  }
  EXPECT_NE(page.body.find("<svg id=\"chart-bytes-2\""), std::string::npos);
  // The overview row of the leaking pool says what is coming (`for` is 5 minutes).
  const auto row = page.body.find("<tr class=\"ok\" data-pool=\"physics\">");
  ASSERT_NE(row, std::string::npos) << page.body;
  const std::string physics_row = page.body.substr(row, page.body.find("</tr>", row) - row);
  EXPECT_NE(physics_row.find("<td>ok, critical pending</td>"), std::string::npos) << physics_row;
}

}  // namespace
}  // namespace poolwatch::testing

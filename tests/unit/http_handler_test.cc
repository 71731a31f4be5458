#include "http_handler.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "gunzip.h"
#include "gzip.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"

namespace poolwatch::exporter {
namespace {

std::string Header(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

class HttpHandlerTest : public ::testing::Test {
 protected:
  // 121 frames at 60 Hz of two pools: "unit" allocates in its first 39 frames and holds three
  // buffers from frame 60 on (60 frames, 1 s old at the end); "idle" does nothing.
  HttpHandlerTest() {
    monitor_.AddPool("unit", pool_);
    monitor_.AddPool("idle", idle_pool_);
    monitor_.Subscribe([this](const HealthSnapshot& s) { store_.Receive(s); });
    monitor_.Subscribe([this](const HealthSnapshot& s) { idle_store_.Receive(s); });
    publisher_.Attach(monitor_);
    for (std::uint64_t frame = 0; frame <= 120; ++frame) {
      if (frame < 39) pool_.Alloc(BufferFormat::kF32, 4);
      if (frame == 60) {
        for (int i = 0; i < 3; ++i) pool_.Acquire(BufferFormat::kF32, 4, "unit.site<&>");
      }
      monitor_.EndFrame({});
    }
  }

  HttpResponse Get(const std::string& target, const std::string& accept_encoding = "",
                   const std::string& accept = "") {
    return handler_.Handle({"GET", target, accept_encoding, accept});
  }

  BufferPool pool_;
  BufferPool idle_pool_;
  HealthMonitor monitor_{{.loop = "main",
                          .period = std::chrono::nanoseconds{1'000'000'000 / 60},
                          .snapshot_interval_frames = 1}};
  MetricsPublisher publisher_;
  DiagnosticsStore store_{"unit"};
  DiagnosticsStore idle_store_{"idle"};
  bool live_ = true;
  std::uint64_t generation_ = 1;
  HttpHandler handler_{HandlerSources{&publisher_,
                                      {},
                                      [this] {
                                        return Probe{live_, live_ ? "ok" : "stalled"};
                                      },
                                      [] {
                                        return Probe{false, "not yet"};
                                      },
                                      [this] {
                                        return std::vector{store_.Report(), idle_store_.Report()};
                                      },
                                      [this] { return generation_; }}};
};

TEST_F(HttpHandlerTest, MetricsUseTheTextFormatContentType) {
  const HttpResponse response = Get("/metrics");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response.text().find("poolwatch_pool_allocations_total{pool=\"unit\"} 42"),
            std::string::npos);
  EXPECT_EQ(Header(response, "Content-Encoding"), "");
  EXPECT_EQ(Header(response, "Vary"), "Accept, Accept-Encoding");
}

TEST_F(HttpHandlerTest, MetricsAreGzippedWhenAskedAndDecompressToTheSameText) {
  const HttpResponse plain = Get("/metrics");
  const HttpResponse zipped = Get("/metrics?x=1", "deflate, gzip;q=0.8");
  EXPECT_EQ(Header(zipped, "Content-Encoding"), "gzip");
  const auto text = poolwatch::testing::Gunzip(std::string(zipped.text()));
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, plain.text());
}

TEST_F(HttpHandlerTest, OneExpositionIsServedPerGenerationAndANewOneAfterIt) {
  const std::string first(Get("/metrics").text());
  pool_.Alloc(BufferFormat::kF32, 4);
  monitor_.EndFrame({});                     // allocations_total 43
  EXPECT_EQ(Get("/metrics").text(), first);  // same generation: the same exposition
  EXPECT_EQ(poolwatch::testing::Gunzip(std::string(Get("/metrics", "gzip").text())), first);
  ++generation_;
  const std::string second(Get("/metrics").text());
  EXPECT_NE(second.find("poolwatch_pool_allocations_total{pool=\"unit\"} 43"), std::string::npos);
  EXPECT_EQ(poolwatch::testing::Gunzip(std::string(Get("/metrics", "gzip").text())), second);
}

// What the I/O thread may answer itself, and how: a made exposition is shared by every response
// of its generation, never copied; /debug and a new exposition are left to the server's other
// threads.
TEST_F(HttpHandlerTest, TheIoThreadAnswersOnlyWhatIsReadyAndSharesTheExposition) {
  EXPECT_FALSE(handler_.HandleQuickly({"GET", "/metrics", "", ""})) << "nothing serialized yet";
  const HttpResponse made = Get("/metrics", "gzip");
  const auto plain = handler_.HandleQuickly({"GET", "/metrics", "", ""});
  const auto zipped = handler_.HandleQuickly({"GET", "/metrics?x=1", "gzip", ""});
  ASSERT_TRUE(plain && zipped);
  EXPECT_EQ(zipped->body.get(), made.body.get()) << "the same buffer, not a copy";
  EXPECT_EQ(Get("/metrics").body.get(), plain->body.get());
  EXPECT_EQ(poolwatch::testing::Gunzip(std::string(zipped->text())), plain->text());
  ++generation_;
  EXPECT_FALSE(handler_.HandleQuickly({"GET", "/metrics", "", ""})) << "a new snapshot came";
  EXPECT_FALSE(handler_.HandleQuickly({"GET", "/debug", "", ""}));
  EXPECT_FALSE(handler_.HandleQuickly({"GET", "/debug/health", "", ""}));
  for (const char* quick : {"/healthz", "/readyz", "/", "/nope"}) {
    const auto response = handler_.HandleQuickly({"GET", quick, "", ""});
    ASSERT_TRUE(response) << quick;
    EXPECT_EQ(response->status, Get(quick).status) << quick;
  }
}

TEST_F(HttpHandlerTest, ProbesReportTheirVerdicts) {
  EXPECT_EQ(Get("/healthz").status, 200U);
  EXPECT_EQ(Get("/healthz").text(), "ok\n");
  live_ = false;
  EXPECT_EQ(Get("/healthz").status, 503U);
  EXPECT_EQ(Get("/readyz").status, 503U);
  EXPECT_EQ(Get("/readyz").text(), "not yet\n");
}

TEST_F(HttpHandlerTest, LandingPageLinksTheEndpoints) {
  const HttpResponse response = Get("/");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  EXPECT_NE(response.text().find("href=\"metrics\""), std::string::npos);
}

TEST_F(HttpHandlerTest, DebugHealthIsJsonWithVerdictsAndAttribution) {
  const HttpResponse response = Get("/debug/health");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "application/json");
  const auto all = nlohmann::json::parse(response.text());
  ASSERT_EQ(all["pools"].size(), 2U);
  EXPECT_EQ(all["pools"][1]["pool"], "idle");
  EXPECT_TRUE(all["pools"][1]["attribution"].empty());
  const auto& json = all["pools"][0];
  EXPECT_EQ(json["pool"], "unit");
  EXPECT_EQ(json["loop"], "main");
  EXPECT_NEAR(json["tick_hz"].get<double>(), 60, 1e-6);
  EXPECT_EQ(json["latest"]["frame"], 120);
  EXPECT_EQ(json["latest"]["memory"]["outstanding_buffers"], 3);
  EXPECT_EQ(json["latest"]["memory"]["allocations_total"], 42);
  ASSERT_EQ(json["verdicts"].size(), 4U);
  EXPECT_EQ(json["verdicts"][0]["alert"], "PoolwatchPoolImbalance");
  EXPECT_EQ(json["verdicts"][0]["severity"], "ok");
  ASSERT_EQ(json["attribution"].size(), 1U);
  EXPECT_EQ(json["attribution"][0]["site"], "unit.site<&>");
  EXPECT_EQ(json["attribution"][0]["format"], "f32");
  EXPECT_EQ(json["attribution"][0]["count"], 3);
  EXPECT_EQ(json["attribution"][0]["oldest_age_frames"], 60);
  EXPECT_NEAR(json["attribution"][0]["oldest_age_seconds"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(json["history"].size(), 1U);
}

TEST_F(HttpHandlerTest, DebugPageIsSelfContainedHtmlWithChartsAndEscapedSites) {
  const HttpResponse response = Get("/debug");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  const std::string_view html = response.text();
  // A section and a set of charts per pool, told apart by position.
  for (const char* id : {"chart-bytes", "chart-allocs", "chart-keys", "chart-frame-time"}) {
    for (const char* n : {"-0", "-1"}) {
      EXPECT_NE(html.find("<svg id=\"" + std::string(id) + n + "\""), std::string::npos) << id << n;
    }
  }
  EXPECT_NE(html.find("<section class=\"pool\" id=\"pool-0\" data-pool=\"unit\">"),
            std::string::npos);
  EXPECT_NE(html.find("<section class=\"pool\" id=\"pool-1\" data-pool=\"idle\">"),
            std::string::npos);
  EXPECT_NE(html.find("<table id=\"pools\">"), std::string::npos);
  EXPECT_NE(html.find("unit.site&lt;&amp;&gt;"), std::string::npos);
  EXPECT_EQ(html.find("unit.site<&>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);  // no external assets
  EXPECT_NE(html.find("http-equiv=\"refresh\""), std::string::npos);
}

TEST_F(HttpHandlerTest, UnknownPathsAre404AndOtherMethods405) {
  EXPECT_EQ(Get("/nope").status, 404U);
  EXPECT_EQ(Get("/../etc/passwd").status, 404U);
  EXPECT_EQ(Get("/metrics/").status, 404U);
  const HttpResponse post = handler_.Handle({"POST", "/metrics", "", ""});
  EXPECT_EQ(post.status, 405U);
  EXPECT_EQ(Header(post, "Allow"), "GET, HEAD");
  EXPECT_EQ(handler_.Handle({"HEAD", "/metrics", "", ""}).status, 200U);
}

// What Prometheus 2.42 sends by default, and with --enable-feature=native-histograms.
constexpr const char* kPrometheusAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(NegotiateFormatTest, FollowsPreferenceAsGoExpfmtDoes) {
  const auto format = [](const char* accept) { return NegotiateFormat(accept).format; };
  const auto type = [](const char* accept) { return NegotiateFormat(accept).content_type; };
  EXPECT_EQ(format(""), MetricsFormat::kText);
  EXPECT_EQ(format("*/*"), MetricsFormat::kText);
  EXPECT_EQ(format("text/plain"), MetricsFormat::kText);
  EXPECT_EQ(type(kPrometheusAccept), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(type("application/openmetrics-text;version=0.0.1"),
            "application/openmetrics-text; version=0.0.1; charset=utf-8");
  EXPECT_EQ(format("application/openmetrics-text"), MetricsFormat::kOpenMetrics);
  EXPECT_EQ(format("APPLICATION/OpenMetrics-Text; Version=\"1.0.0\""), MetricsFormat::kOpenMetrics);
  // q orders the ranges, not their place in the header; q=0 refuses one.
  EXPECT_EQ(format("application/openmetrics-text;q=0.3, text/plain;q=0.9"), MetricsFormat::kText);
  EXPECT_EQ(format("text/plain;q=0.2, application/openmetrics-text;q=0.3"),
            MetricsFormat::kOpenMetrics);
  EXPECT_EQ(format("application/openmetrics-text;q=0, text/plain;q=0.1"), MetricsFormat::kText);
  // A version poolwatch does not speak is skipped, not guessed.
  EXPECT_EQ(format("application/openmetrics-text;version=2.0.0, text/plain"), MetricsFormat::kText);
  EXPECT_EQ(format("text/plain;version=0.0.5, application/openmetrics-text;q=0.1"),
            MetricsFormat::kOpenMetrics);
  // Malformed ranges and q values are skipped; the rest still counts.
  for (const char* bad :
       {";;;", "/", "text/", "application/openmetrics-text;q=2",
        "application/openmetrics-text;q=abc", ",,,", "application/openmetrics-text;q=0.5000001"}) {
    EXPECT_EQ(format(bad), MetricsFormat::kText) << bad;
  }
}

TEST_F(HttpHandlerTest, OpenMetricsIsServedWhenAskedWithUnitsExemplarsAndEof) {
  const HttpResponse text = Get("/metrics");
  const HttpResponse om = Get("/metrics", "", kPrometheusAccept);
  EXPECT_EQ(om.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const std::string body(om.text());
  EXPECT_TRUE(body.ends_with("\n# EOF\n"));
  // A counter family is named without _total; its sample keeps it.
  EXPECT_NE(body.find("# TYPE poolwatch_pool_allocations counter\n"), std::string::npos);
  EXPECT_EQ(body.find("# TYPE poolwatch_pool_allocations_total"), std::string::npos);
  EXPECT_NE(body.find("# TYPE poolwatch_pool_pooled_bytes gauge\n"
                      "# UNIT poolwatch_pool_pooled_bytes bytes\n"),
            std::string::npos);
  EXPECT_NE(body.find("# UNIT poolwatch_frame_duration_seconds seconds\n"), std::string::npos);
  // The exemplar: the latest held buffer's site (escaped as a label value) and frame, the value
  // 1, that frame's time; only on the unit pool, the idle one holds nothing.
  const std::size_t line = body.find("poolwatch_pool_allocations_total{pool=\"unit\"} 42 # ");
  ASSERT_NE(line, std::string::npos) << body;
  EXPECT_EQ(body.substr(line, body.find('\n', line) - line)
                .find("# {site=\"unit.site<&>\",frame=\"60\"} 1 "),
            std::string("poolwatch_pool_allocations_total{pool=\"unit\"} 42 ").size());
  EXPECT_NE(body.find("poolwatch_pool_allocations_total{pool=\"idle\"} 0\n"), std::string::npos);
  // Every bucket bound reads as in the text format: switching formats keeps the series.
  std::set<std::string> text_le;
  std::set<std::string> om_le;
  for (const auto& [source, les] :
       {std::pair{std::string(text.text()), &text_le}, std::pair{body, &om_le}}) {
    for (std::size_t at = source.find("le=\""); at != std::string::npos;
         at = source.find("le=\"", at + 1)) {
      les->insert(source.substr(at, source.find('"', at + 4) - at));
    }
  }
  EXPECT_GT(text_le.size(), 20U);
  EXPECT_EQ(om_le, text_le);
  // Each format is made once per generation, and gzip works for it too.
  EXPECT_EQ(Get("/metrics", "", kPrometheusAccept).body.get(), om.body.get());
  EXPECT_EQ(
      poolwatch::testing::Gunzip(std::string(Get("/metrics", "gzip", kPrometheusAccept).text())),
      body);
  EXPECT_EQ(Get("/metrics").body.get(), text.body.get());
}

TEST(AcceptsGzipTest, FollowsTheHeaderGrammar) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("br, gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_TRUE(AcceptsGzip(" x-gzip ; q=1"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0, *"));  // the explicit refusal wins over the wildcard
  EXPECT_FALSE(AcceptsGzip("gzipped"));
}

}  // namespace
}  // namespace poolwatch::exporter

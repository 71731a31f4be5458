#include "http_handler.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gunzip.h"
#include "gzip.h"
#include "poolwatch/metrics_publisher.h"

namespace poolwatch::daemon {
namespace {

std::string Header(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

class HttpHandlerTest : public ::testing::Test {
 protected:
  HttpHandlerTest() {
    HealthSnapshot snapshot;
    snapshot.time = std::chrono::system_clock::now();
    snapshot.pool.allocations_total = 42;
    snapshot.pool.last_frame.frame = 120;
    snapshot.outstanding = {{"unit.site<&>", BufferFormat::kF32, 3, 48, 60}};
    publisher_.Publish(snapshot);
    store_.Receive(snapshot);
  }

  HttpResponse Get(const std::string& target, const std::string& accept_encoding = "") {
    return handler_.Handle({"GET", target, accept_encoding});
  }

  MetricsPublisher publisher_{"unit"};
  DiagnosticsStore store_;
  bool live_ = true;
  std::uint64_t generation_ = 1;
  HttpHandler handler_{HandlerSources{{&publisher_},
                                      [this] {
                                        return Probe{live_, live_ ? "ok" : "stalled"};
                                      },
                                      [] {
                                        return Probe{false, "not yet"};
                                      },
                                      [this] { return store_.Report(); },
                                      {"unit", 60},
                                      [this] { return generation_; }}};
};

TEST_F(HttpHandlerTest, MetricsUseTheTextFormatContentType) {
  const HttpResponse response = Get("/metrics");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response.body.find("poolwatch_pool_allocations_total{pool=\"unit\"} 42"),
            std::string::npos);
  EXPECT_EQ(Header(response, "Content-Encoding"), "");
  EXPECT_EQ(Header(response, "Vary"), "Accept-Encoding");
}

TEST_F(HttpHandlerTest, MetricsAreGzippedWhenAskedAndDecompressToTheSameText) {
  const HttpResponse plain = Get("/metrics");
  const HttpResponse zipped = Get("/metrics?x=1", "deflate, gzip;q=0.8");
  EXPECT_EQ(Header(zipped, "Content-Encoding"), "gzip");
  const auto text = poolwatch::testing::Gunzip(zipped.body);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, plain.body);
}

TEST_F(HttpHandlerTest, OneExpositionIsServedPerGenerationAndANewOneAfterIt) {
  const std::string first = Get("/metrics").body;
  HealthSnapshot next;
  next.pool.allocations_total = 43;
  publisher_.Publish(next);
  EXPECT_EQ(Get("/metrics").body, first);  // same generation: the same exposition
  EXPECT_EQ(poolwatch::testing::Gunzip(Get("/metrics", "gzip").body), first);
  ++generation_;
  const std::string second = Get("/metrics").body;
  EXPECT_NE(second.find("poolwatch_pool_allocations_total{pool=\"unit\"} 43"), std::string::npos);
  EXPECT_EQ(poolwatch::testing::Gunzip(Get("/metrics", "gzip").body), second);
}

TEST_F(HttpHandlerTest, ProbesReportTheirVerdicts) {
  EXPECT_EQ(Get("/healthz").status, 200U);
  EXPECT_EQ(Get("/healthz").body, "ok\n");
  live_ = false;
  EXPECT_EQ(Get("/healthz").status, 503U);
  EXPECT_EQ(Get("/readyz").status, 503U);
  EXPECT_EQ(Get("/readyz").body, "not yet\n");
}

TEST_F(HttpHandlerTest, LandingPageLinksTheEndpoints) {
  const HttpResponse response = Get("/");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  EXPECT_NE(response.body.find("href=\"metrics\""), std::string::npos);
}

TEST_F(HttpHandlerTest, DebugHealthIsJsonWithVerdictsAndAttribution) {
  const HttpResponse response = Get("/debug/health");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "application/json");
  const auto json = nlohmann::json::parse(response.body);
  EXPECT_EQ(json["pool"], "unit");
  EXPECT_EQ(json["latest"]["frame"], 120);
  EXPECT_EQ(json["latest"]["memory"]["allocations_total"], 42);
  ASSERT_EQ(json["verdicts"].size(), 4U);
  EXPECT_EQ(json["verdicts"][0]["alert"], "PoolwatchPoolImbalance");
  EXPECT_EQ(json["verdicts"][0]["severity"], "ok");
  ASSERT_EQ(json["attribution"].size(), 1U);
  EXPECT_EQ(json["attribution"][0]["site"], "unit.site<&>");
  EXPECT_EQ(json["attribution"][0]["format"], "f32");
  EXPECT_EQ(json["attribution"][0]["count"], 3);
  EXPECT_EQ(json["attribution"][0]["oldest_age_frames"], 60);
  EXPECT_DOUBLE_EQ(json["attribution"][0]["oldest_age_seconds"].get<double>(), 1.0);
  EXPECT_EQ(json["history"].size(), 1U);
}

TEST_F(HttpHandlerTest, DebugPageIsSelfContainedHtmlWithChartsAndEscapedSites) {
  const HttpResponse response = Get("/debug");
  EXPECT_EQ(response.status, 200U);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  const std::string& html = response.body;
  for (const char* id : {"chart-bytes", "chart-allocs", "chart-keys", "chart-frame-time"}) {
    EXPECT_NE(html.find("<svg id=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
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
  const HttpResponse post = handler_.Handle({"POST", "/metrics", ""});
  EXPECT_EQ(post.status, 405U);
  EXPECT_EQ(Header(post, "Allow"), "GET, HEAD");
  EXPECT_EQ(handler_.Handle({"HEAD", "/metrics", ""}).status, 200U);
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
}  // namespace poolwatch::daemon

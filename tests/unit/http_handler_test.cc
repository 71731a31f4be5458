#include "http_handler.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <utility>

#include "endpoints.h"
#include "gunzip.h"
#include "gzip.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"
#include "proto/metrics.pb.h"

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

TEST_F(HttpHandlerTest, EveryEndpointOfTheTableIsRouted) {
  for (const EndpointRoute& route : kEndpointRoutes) {
    const HttpResponse response = Get(std::string(route.path));
    EXPECT_NE(response.status, 404U) << route.path << ": " << response.text();
  }
  // A path not served gets a 404 that names every endpoint of the table.
  const HttpResponse not_found = Get("/metric");
  EXPECT_EQ(not_found.status, 404U);
  EXPECT_EQ(
      not_found.text(),
      "not found: try /metrics, /healthz, /readyz, /debug, /debug/health, /debug/mark or /\n");
  // This handler keeps no marks: POST /debug/mark is routed, and says so.
  const HttpResponse mark = handler_.Handle({"POST", "/debug/mark?name=x", "", ""});
  EXPECT_EQ(mark.status, 404U);
  EXPECT_EQ(mark.text(), "marks are not kept here\n");
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
  EXPECT_EQ(format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                   "encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4"),
            MetricsFormat::kProtobuf);
  // Only the delimited encoding of MetricFamily; the text encodings of protobuf are not spoken.
  EXPECT_EQ(format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                   "encoding=text"),
            MetricsFormat::kText);
  EXPECT_EQ(format("application/vnd.google.protobuf;encoding=delimited"), MetricsFormat::kText);
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

// Delimited MetricFamily messages, read as Prometheus reads them: a varint size, a message.
std::vector<io::prometheus::client::MetricFamily> DecodeDelimited(std::string_view body) {
  google::protobuf::io::ArrayInputStream raw(body.data(), static_cast<int>(body.size()));
  google::protobuf::io::CodedInputStream in(&raw);
  std::vector<io::prometheus::client::MetricFamily> families;
  std::uint32_t size = 0;
  while (in.ReadVarint32(&size)) {
    const auto limit = in.PushLimit(static_cast<int>(size));
    EXPECT_TRUE(families.emplace_back().ParseFromCodedStream(&in));
    EXPECT_TRUE(in.ConsumedEntireMessage());
    in.PopLimit(limit);
  }
  EXPECT_EQ(in.CurrentPosition(), static_cast<int>(body.size())) << "trailing bytes";
  return families;
}

TEST_F(HttpHandlerTest, ProtobufCarriesEveryFamilyTheExemplarAndNativeHistograms) {
  constexpr const char* kNativeAccept =
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
      "encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,"
      "text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
  const HttpResponse response = Get("/metrics", "", kNativeAccept);
  EXPECT_EQ(response.content_type,
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited");
  const auto families = DecodeDelimited(response.text());

  // The same families as the text format, in the same order.
  const std::string text(Get("/metrics").text());
  std::vector<std::string> text_names;
  for (std::size_t at = text.find("# TYPE "); at != std::string::npos;
       at = text.find("# TYPE ", at + 1)) {
    text_names.push_back(text.substr(at + 7, text.find(' ', at + 7) - at - 7));
  }
  std::vector<std::string> names(families.size());
  std::ranges::transform(families, names.begin(), [](const auto& f) { return f.name(); });
  EXPECT_EQ(names, text_names);

  const auto find = [&](const std::string& name) -> const io::prometheus::client::MetricFamily& {
    static const io::prometheus::client::MetricFamily kNone;
    for (const auto& family : families) {
      if (family.name() == name) return family;
    }
    ADD_FAILURE() << name;
    return kNone;
  };
  // The counter's exemplar: the latest held buffer, at frame 60 of a 60 Hz loop.
  const auto& allocations = find("poolwatch_pool_allocations_total");
  ASSERT_EQ(allocations.metric_size(), 2);
  const auto& unit = allocations.metric(0).counter();
  EXPECT_EQ(unit.value(), 42);
  ASSERT_TRUE(unit.has_exemplar());
  ASSERT_EQ(unit.exemplar().label_size(), 2);
  EXPECT_EQ(unit.exemplar().label(0).name(), "site");
  EXPECT_EQ(unit.exemplar().label(0).value(), "unit.site<&>");
  EXPECT_EQ(unit.exemplar().label(1).value(), "60");
  EXPECT_GT(unit.exemplar().timestamp().seconds(), 1'700'000'000);
  EXPECT_FALSE(allocations.metric(1).counter().has_exemplar()) << "the idle pool holds nothing";

  // Frame duration: 121 frames of 0 s, all in the zero bucket, beside the classic buckets.
  const auto& duration = find("poolwatch_frame_duration_seconds");
  EXPECT_EQ(duration.type(), io::prometheus::client::HISTOGRAM);
  const auto& h = duration.metric(0).histogram();
  EXPECT_EQ(h.sample_count(), 121U);
  EXPECT_EQ(h.schema(), 3);
  EXPECT_GT(h.zero_threshold(), 0);
  EXPECT_EQ(h.zero_count(), 121U);
  EXPECT_EQ(h.bucket_size(), 17);  // the finite classic buckets; +Inf is sample_count
  // Allocations per frame stays classic only.
  EXPECT_FALSE(find("poolwatch_pool_allocations_per_frame").metric(0).histogram().has_schema());
  EXPECT_EQ(poolwatch::testing::Gunzip(std::string(Get("/metrics", "gzip", kNativeAccept).text())),
            std::string(response.text()));
}

TEST(SerializeProtobufTest, NativeDeltasAndSpanDecodeToTheObservations) {
  Exposition exposition;
  prometheus::MetricFamily family{"h_seconds", "help", prometheus::MetricType::Histogram, {}};
  family.metric.emplace_back().histogram = {6, 3.5, {{6, 1.0}, {6, 0}}};
  exposition.families.push_back(family);
  NativeBuckets native;
  for (double v : {0.0, 0.5, 0.5, 1.0, 2.0, 2.0}) native.Observe(v);
  exposition.extras.push_back({0, 0, std::nullopt, native});
  const auto families = DecodeDelimited(SerializeProtobuf(exposition));
  ASSERT_EQ(families.size(), 1U);
  const auto& h = families[0].metric(0).histogram();
  ASSERT_EQ(h.positive_span_size(), 1);
  EXPECT_EQ(h.positive_span(0).offset(), -8);
  EXPECT_EQ(h.positive_span(0).length(), 17U);
  std::vector<std::int64_t> counts;
  std::int64_t count = 0;
  for (std::int64_t delta : h.positive_delta()) counts.push_back(count += delta);
  EXPECT_EQ(counts.front(), 2);
  EXPECT_EQ(counts[8], 1);
  EXPECT_EQ(counts.back(), 2);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}), 5);
  EXPECT_EQ(h.zero_count(), 1U);
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

#include "http_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "endpoints.h"

namespace poolwatch::exporter {
namespace {

// The families as {"name{labels}" -> value}, labels as Collect() orders them.
std::map<std::string, double> Samples(const HttpMetrics& metrics) {
  std::map<std::string, double> samples;
  for (const auto& family : metrics.Collect()) {
    EXPECT_EQ(family.type, prometheus::MetricType::Counter) << family.name;
    EXPECT_FALSE(family.help.empty()) << family.name;
    for (const auto& metric : family.metric) {
      std::string labels;
      for (const auto& label : metric.label) {
        labels += (labels.empty() ? "" : ",") + label.name + "=\"" + label.value + "\"";
      }
      samples[family.name + (labels.empty() ? "" : "{" + labels + "}")] = metric.counter.value;
    }
  }
  return samples;
}

TEST(EndpointsTest, NameTheEndpointOrOtherSoThatTheLabelStaysBounded) {
  EXPECT_EQ(HandlerLabelOf("/metrics"), "/metrics");
  EXPECT_EQ(HandlerLabelOf("/metrics?name[]=x"), "/metrics");
  EXPECT_EQ(HandlerLabelOf("/"), "/");
  EXPECT_EQ(HandlerLabelOf("/debug/health"), "/debug/health");
  EXPECT_EQ(HandlerLabelOf("/debug/mark?name=deploy"), "/debug/mark");
  EXPECT_EQ(EndpointOf("/debug/mark?name=deploy"), Endpoint::kDebugMark);
  EXPECT_EQ(EndpointOf("/?x"), Endpoint::kLanding);
  for (const char* target :
       {"", "/metrics/", "/Metrics", "/debug/", "/healthzz", "/../etc/passwd", "*", "?/metrics"}) {
    EXPECT_EQ(HandlerLabelOf(target), "other") << target;
    EXPECT_EQ(EndpointOf(target), Endpoint::kOther) << target;
    EXPECT_FALSE(IsUnauthenticated(target)) << target;
  }
}

TEST(EndpointsTest, OnlyTheProbesAnswerWithoutCredentials) {
  std::vector<std::string_view> unauthenticated;
  for (const EndpointRoute& route : kEndpointRoutes) {
    if (IsUnauthenticated(route.path)) unauthenticated.push_back(route.path);
    EXPECT_EQ(EndpointOf(route.path), route.endpoint) << route.path;
  }
  EXPECT_EQ(unauthenticated, (std::vector<std::string_view>{"/healthz", "/readyz"}));
  EXPECT_TRUE(IsUnauthenticated("/healthz?verbose=1"));
  EXPECT_FALSE(IsUnauthenticated("/healthz/"));
  EXPECT_FALSE(IsUnauthenticated("/metrics?/healthz"));
}

TEST(HttpMetricsTest, CountsAnswersByHandlerAndCodeFailedHandshakesAndRefusedConnections) {
  HttpMetrics metrics;
  // Before any request: /metrics' 200 at 0 (so that the first scrape's increase is seen), and
  // the handshake and connection counters.
  EXPECT_EQ(Samples(metrics),
            (std::map<std::string, double>{
                {R"(poolwatch_http_requests_total{code="200",handler="/metrics"})", 0},
                {"poolwatch_http_connections_refused_total", 0},
                {"poolwatch_http_tls_handshake_failures_total", 0}}));
  metrics.CountResponse("/metrics", 200);
  metrics.CountResponse("/metrics?x=1", 200);
  metrics.CountResponse("/metrics", 401);
  metrics.CountResponse("/wp-login.php", 404);
  metrics.CountResponse("/.env", 404);
  metrics.CountResponse("", 431);
  metrics.CountResponse("/readyz", 503);
  metrics.CountFailedHandshake();
  metrics.CountFailedHandshake();
  metrics.CountRefusedConnection();
  EXPECT_EQ(Samples(metrics),
            (std::map<std::string, double>{
                {R"(poolwatch_http_requests_total{code="200",handler="/metrics"})", 2},
                {R"(poolwatch_http_requests_total{code="401",handler="/metrics"})", 1},
                {R"(poolwatch_http_requests_total{code="404",handler="other"})", 2},
                {R"(poolwatch_http_requests_total{code="431",handler="other"})", 1},
                {R"(poolwatch_http_requests_total{code="503",handler="/readyz"})", 1},
                {"poolwatch_http_connections_refused_total", 1},
                {"poolwatch_http_tls_handshake_failures_total", 2}}));
}

}  // namespace
}  // namespace poolwatch::exporter

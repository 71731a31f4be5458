#include "http_metrics.h"

#include <prometheus/client_metric.h>

#include <string>

#include "endpoints.h"

namespace poolwatch::exporter {

HttpMetrics::HttpMetrics() { responses_[{HandlerLabelOf("/metrics"), 200}] = 0; }

void HttpMetrics::CountResponse(std::string_view target, unsigned status) {
  const std::string_view handler = HandlerLabelOf(target);
  std::scoped_lock lock(mutex_);
  ++responses_[{handler, status}];
}

void HttpMetrics::CountFailedHandshake() {
  std::scoped_lock lock(mutex_);
  ++failed_handshakes_;
}

void HttpMetrics::CountRefusedConnection() {
  std::scoped_lock lock(mutex_);
  ++refused_connections_;
}

std::vector<prometheus::MetricFamily> HttpMetrics::Collect() const {
  prometheus::MetricFamily requests{
      "poolwatch_http_requests_total",
      "HTTP requests answered, by endpoint (handler, \"other\" for any other path or a request "
      "refused before its path was read) and status code.",
      prometheus::MetricType::Counter,
      {}};
  prometheus::ClientMetric handshakes;
  prometheus::ClientMetric refused;
  {
    std::scoped_lock lock(mutex_);
    for (const auto& [key, count] : responses_) {
      prometheus::ClientMetric metric;
      metric.label = {{"code", std::to_string(key.second)}, {"handler", std::string(key.first)}};
      metric.counter.value = static_cast<double>(count);
      requests.metric.push_back(std::move(metric));
    }
    handshakes.counter.value = static_cast<double>(failed_handshakes_);
    refused.counter.value = static_cast<double>(refused_connections_);
  }
  return {std::move(requests),
          {"poolwatch_http_tls_handshake_failures_total",
           "TLS handshakes that failed: a client certificate refused, no cipher suite or curve in "
           "common, a client that gave up or timed out.",
           prometheus::MetricType::Counter,
           {std::move(handshakes)}},
          {"poolwatch_http_connections_refused_total",
           "Connections closed as they were accepted because http.max_connections were open: over "
           "plain HTTP after a 503 (counted in poolwatch_http_requests_total too), over TLS "
           "unanswered.",
           prometheus::MetricType::Counter,
           {std::move(refused)}}};
}

}  // namespace poolwatch::exporter

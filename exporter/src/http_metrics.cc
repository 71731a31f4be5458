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

std::vector<prometheus::MetricFamily> HttpMetrics::Collect() const {
  prometheus::MetricFamily requests{
      "poolwatch_http_requests_total",
      "HTTP requests answered, by endpoint (handler, \"other\" for any other path or a request "
      "refused before its path was read) and status code.",
      prometheus::MetricType::Counter,
      {}};
  prometheus::ClientMetric handshakes;
  {
    std::scoped_lock lock(mutex_);
    for (const auto& [key, count] : responses_) {
      prometheus::ClientMetric metric;
      metric.label = {{"code", std::to_string(key.second)}, {"handler", std::string(key.first)}};
      metric.counter.value = static_cast<double>(count);
      requests.metric.push_back(std::move(metric));
    }
    handshakes.counter.value = static_cast<double>(failed_handshakes_);
  }
  return {std::move(requests),
          {"poolwatch_http_tls_handshake_failures_total",
           "TLS handshakes that failed: a client certificate refused, no cipher suite or curve in "
           "common, a client that gave up or timed out.",
           prometheus::MetricType::Counter,
           {std::move(handshakes)}}};
}

}  // namespace poolwatch::exporter

#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace poolwatch::exporter {

// What the HTTP server answered, as Prometheus's own servers count it
// (prometheus_http_requests_total): poolwatch_http_requests_total{handler, code}, the TLS
// handshakes that failed, poolwatch_http_tls_handshake_failures_total, and the connections
// refused over the limit, poolwatch_http_connections_refused_total. So that a refused scrape
// (401, 429, too many connections), a prober at the wrong path or an mTLS client turned away
// shows on the next scrape that succeeds, with no log line per request.
//
// `handler` is the endpoint's path ("/metrics", "/healthz", ...) from endpoints.h's table, or
// "other" (a path not served, or a request refused before its path was read); the codes are the few
// the server answers with. The series are bounded, and none is made before it is counted but
// /metrics' 200.
//
// Thread-safety: thread-safe.
class HttpMetrics final : public prometheus::Collectable {
 public:
  HttpMetrics();

  // One answer to `target` (origin form, query included; "" when it was not read), labelled by
  // HandlerLabelOf() (endpoints.h).
  void CountResponse(std::string_view target, unsigned status);
  void CountFailedHandshake();
  // A connection closed as it was accepted, because http.max_connections were open.
  void CountRefusedConnection();

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  // By (handler, code); the handler views a static label (HandlerLabelOf's).
  std::map<std::pair<std::string_view, unsigned>, std::uint64_t> responses_;
  std::uint64_t failed_handshakes_ = 0;
  std::uint64_t refused_connections_ = 0;
};

}  // namespace poolwatch::exporter

#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "debug_views.h"
#include "poolwatch/diagnostics_store.h"

namespace poolwatch::daemon {

// The parts of an HTTP request that poolwatchd answers to; no socket types, so that handling is
// a plain function, testable and fuzzable without a server.
struct HttpRequest {
  std::string method;
  std::string target;
  std::string accept_encoding;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// The verdict of a liveness or readiness probe.
struct Probe {
  bool ok = false;
  std::string detail;
};

struct HandlerSources {
  std::vector<const prometheus::Collectable*> collectables;  // scraped in this order
  std::function<Probe()> liveness;                           // /healthz
  std::function<Probe()> readiness;                          // /readyz
  std::function<DiagnosticsReport()> diagnostics;            // /debug, /debug/health
  DebugContext debug;
};

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Answers poolwatchd's endpoints: /metrics, /healthz, /readyz, /debug, /debug/health and the
// landing page /.
// GET and HEAD only. Thread-safe as far as its sources are (all of poolwatchd's are).
class HttpHandler {
 public:
  explicit HttpHandler(HandlerSources sources) : sources_(std::move(sources)) {}

  HttpResponse Handle(const HttpRequest& request) const;

  // The /metrics body, uncompressed.
  std::string Scrape() const;

 private:
  HandlerSources sources_;
};

}  // namespace poolwatch::daemon

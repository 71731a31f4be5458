#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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
  std::vector<const prometheus::Collectable*> collectables;     // scraped in this order
  std::function<Probe()> liveness;                              // /healthz
  std::function<Probe()> readiness;                             // /readyz
  std::function<std::vector<DiagnosticsReport>()> diagnostics;  // /debug, /debug/health
  // Changes whenever the pool series may have (a new snapshot). Set: /metrics reuses one
  // serialized exposition per generation, for at most kMaxExpositionAge. Empty: never reuse.
  std::function<std::uint64_t()> generation;
};

// How long a serialized exposition may be served again: bounds how stale the process_* figures
// can be when no new snapshot comes (a stalled loop).
inline constexpr std::chrono::milliseconds kMaxExpositionAge{100};

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Answers poolwatchd's endpoints: /metrics, /healthz, /readyz, /debug, /debug/health and the
// landing page /.
// GET and HEAD only. Thread-safe as far as its sources are (all of poolwatchd's are).
class HttpHandler {
 public:
  explicit HttpHandler(HandlerSources sources) : sources_(std::move(sources)) {}

  HttpResponse Handle(const HttpRequest& request) const;

  // The /metrics body, uncompressed, freshly collected.
  std::string Scrape() const;

 private:
  struct Exposition {
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point built;
    std::string text;
    std::string gzip;  // filled on the first request that asks for it
  };
  // The exposition to serve now: reused within a generation, else collected again.
  std::shared_ptr<Exposition> CurrentExposition(bool want_gzip) const;

  HandlerSources sources_;
  mutable std::mutex cache_mutex_;
  mutable std::shared_ptr<Exposition> cache_;
};

}  // namespace poolwatch::daemon

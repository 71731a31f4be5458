#pragma once

#include <prometheus/collectable.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/exporter/exporter.h"
#include "poolwatch/mark_board.h"
#include "poolwatch/metrics_publisher.h"

namespace poolwatch::exporter {

// The parts of an HTTP request that the exporter answers to; no socket types, so that handling
// is a plain function, testable and fuzzable without a server.
struct HttpRequest {
  std::string method;
  std::string target;
  std::string accept_encoding;
  std::string accept;  // chooses the /metrics format (formats.h)
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  // Immutable and shared: an exposition is served to every scrape of it without a copy.
  std::shared_ptr<const std::string> body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  std::string_view text() const { return body ? std::string_view(*body) : std::string_view(); }
};

struct HandlerSources {
  // Scraped first, with the extras (exemplars) that formats beyond text carry.
  const MetricsPublisher* publisher = nullptr;
  std::vector<const prometheus::Collectable*> collectables;     // scraped next, in this order
  std::function<Probe()> liveness;                              // /healthz
  std::function<Probe()> readiness;                             // /readyz
  std::function<std::vector<DiagnosticsReport>()> diagnostics;  // /debug, /debug/health
  // Changes whenever the pool series may have (a new snapshot). Set: /metrics reuses one
  // serialized exposition per generation, for at most kMaxExpositionAge. Empty: never reuse.
  std::function<std::uint64_t()> generation;
  MarkBoard* marks = nullptr;       // POST /debug/mark; null: no marks
  std::string title = "poolwatch";  // of the landing page
};

// How long a serialized exposition may be served again: bounds how stale the process_* figures
// can be when no new snapshot comes (a stalled loop).
inline constexpr std::chrono::milliseconds kMaxExpositionAge{100};

// Answers the exporter's endpoints: /metrics, /healthz, /readyz, /debug, /debug/health and the
// landing page / (GET and HEAD), and POST /debug/mark.
//
// Thread-safety: thread-safe as far as its sources are (all of the exporter's are).
class HttpHandler {
 public:
  explicit HttpHandler(HandlerSources sources);

  // The answer, whatever it takes to make it: /debug is rendered, a new exposition collected,
  // serialized and gzipped. For a thread other than the I/O thread.
  HttpResponse Handle(const HttpRequest& request) const;
  // The answer if it is ready at once (probes, the landing page, errors, /metrics of a
  // generation serialized already), else nothing: then Handle() it elsewhere. For the I/O
  // thread.
  std::optional<HttpResponse> HandleQuickly(const HttpRequest& request) const;

  // Whether it asks for /metrics (made on a thread of its own when not ready).
  static bool IsMetrics(const HttpRequest& request);

  // Every source's series, freshly collected, with the publisher's extras.
  Exposition Collect() const;

 private:
  // One serialized exposition in one format, immutable once made: its body and gzip form.
  struct Rendered {
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point built;
    std::string body;
    std::string gzip;
  };

  // The exposition in `format` of the current generation if one was made within
  // kMaxExpositionAge.
  std::shared_ptr<const Rendered> FreshExposition(MetricsFormat format) const;
  // FreshExposition(), else a new one.
  std::shared_ptr<const Rendered> CurrentExposition(MetricsFormat format) const;
  static HttpResponse Metrics(const std::shared_ptr<const Rendered>& rendered,
                              const Negotiated& negotiated, const HttpRequest& request);
  HttpResponse MakeMark(const HttpRequest& request) const;

  HandlerSources sources_;
  std::shared_ptr<const std::string> landing_page_;
  mutable std::mutex cache_mutex_;
  // Per format, made when a scraper first asks for it in a generation.
  mutable std::array<std::shared_ptr<const Rendered>, kFormats> cache_;
};

}  // namespace poolwatch::exporter

#include "http_handler.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "gzip.h"
#include "poolwatch/version.h"

namespace poolwatch::daemon {

namespace {

constexpr const char* kLandingPage = R"(<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>poolwatchd</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;color:#222}
code{background:#f3f3f3;padding:0 .2em}</style></head>
<body>
<h1>poolwatchd</h1>
<p>Buffer-pool memory observability for frame-based runtimes. Version <code>@VERSION@</code>.</p>
<ul>
<li><a href="metrics">/metrics</a> &mdash; Prometheus metrics</li>
<li><a href="healthz">/healthz</a> &mdash; liveness: the tick loop is running</li>
<li><a href="readyz">/readyz</a> &mdash; readiness: the first frame has been published</li>
<li><a href="debug">/debug</a> &mdash; verdicts, charts and leak attribution</li>
<li><a href="debug/health">/debug/health</a> &mdash; the same as JSON</li>
</ul>
</body>
</html>
)";

HttpResponse Text(unsigned status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse ProbeResponse(const std::function<Probe()>& probe) {
  const Probe verdict = probe ? probe() : Probe{false, "no probe"};
  return Text(verdict.ok ? 200 : 503, verdict.detail + "\n");
}

std::string LandingPage() {
  std::string page = kLandingPage;
  page.replace(page.find("@VERSION@"), 9, kVersion);
  return page;
}

}  // namespace

std::string HttpHandler::Scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const prometheus::Collectable* collectable : sources_.collectables) {
    auto collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

std::shared_ptr<HttpHandler::Exposition> HttpHandler::CurrentExposition(bool want_gzip) const {
  const auto now = std::chrono::steady_clock::now();
  const std::uint64_t generation = sources_.generation ? sources_.generation() : 0;
  std::shared_ptr<Exposition> cached;
  {
    std::scoped_lock lock(cache_mutex_);
    cached = cache_;
  }
  if (!sources_.generation || !cached || cached->generation != generation ||
      now - cached->built >= kMaxExpositionAge) {
    // Collected outside the lock: concurrent scrapes may both build, none waits on another.
    cached = std::make_shared<Exposition>(Exposition{generation, now, Scrape(), {}});
    if (want_gzip) cached->gzip = GzipCompress(cached->text);
    std::scoped_lock lock(cache_mutex_);
    cache_ = cached;
    return cached;
  }
  if (want_gzip) {
    std::scoped_lock lock(cache_mutex_);
    if (cached->gzip.empty()) cached->gzip = GzipCompress(cached->text);
  }
  return cached;
}

HttpResponse HttpHandler::Handle(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = Text(405, "method not allowed: use GET or HEAD\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  const std::string path = request.target.substr(0, request.target.find('?'));

  if (path == "/metrics") {
    HttpResponse response;
    response.content_type = kMetricsContentType;
    response.headers.emplace_back("Vary", "Accept-Encoding");
    const bool gzip = AcceptsGzip(request.accept_encoding);
    const std::shared_ptr<Exposition> exposition = CurrentExposition(gzip);
    if (gzip) {
      std::scoped_lock lock(cache_mutex_);  // gzip is filled in under it
      response.body = exposition->gzip;
      response.headers.emplace_back("Content-Encoding", "gzip");
    } else {
      response.body = exposition->text;
    }
    return response;
  }
  if (path == "/healthz") return ProbeResponse(sources_.liveness);
  if (path == "/readyz") return ProbeResponse(sources_.readiness);
  if ((path == "/debug" || path == "/debug/health") && sources_.diagnostics) {
    HttpResponse response;
    const std::vector<DiagnosticsReport> reports = sources_.diagnostics();
    if (path == "/debug") {
      response.content_type = "text/html; charset=utf-8";
      response.body = DebugPageHtml(reports);
    } else {
      response.content_type = "application/json";
      response.body = DebugHealthJson(reports);
    }
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
  }
  if (path == "/") {
    HttpResponse response;
    response.content_type = "text/html; charset=utf-8";
    response.body = LandingPage();
    return response;
  }
  return Text(404, "not found: try /metrics, /healthz, /readyz, /debug or /\n");
}

}  // namespace poolwatch::daemon

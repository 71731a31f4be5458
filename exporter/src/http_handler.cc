#include "http_handler.h"

#include <prometheus/metric_family.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "debug_views.h"
#include "endpoints.h"
#include "gzip.h"
#include "poolwatch/exporter/rfc3339.h"
#include "poolwatch/version.h"

namespace poolwatch::exporter {

namespace {

constexpr const char* kLandingPage = R"(<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>@TITLE@</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;color:#222}
code{background:#f3f3f3;padding:0 .2em}</style></head>
<body>
<h1>@TITLE@</h1>
<p>Buffer-pool memory observability for frame-based runtimes. Version <code>@VERSION@</code>.</p>
<ul>
<li><a href="metrics">/metrics</a> &mdash; Prometheus metrics</li>
<li><a href="healthz">/healthz</a> &mdash; liveness: every loop is ticking</li>
<li><a href="readyz">/readyz</a> &mdash; readiness: every loop has published a frame</li>
<li><a href="debug">/debug</a> &mdash; verdicts, charts and leak attribution</li>
<li><a href="debug/health">/debug/health</a> &mdash; the same as JSON</li>
<li><code>POST /debug/mark?name=NAME</code> &mdash; a mark: /debug then shows what was acquired
since and is still held</li>
</ul>
</body>
</html>
)";

std::shared_ptr<const std::string> Share(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

HttpResponse Text(unsigned status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = Share(std::move(body));
  return response;
}

HttpResponse ProbeResponse(const std::function<Probe()>& probe) {
  const Probe verdict = probe ? probe() : Probe{false, "no probe"};
  return Text(verdict.ok ? 200 : 503, verdict.detail + "\n");
}

// One parameter of a query string (application/x-www-form-urlencoded: `+` is a space, %XX a
// byte): nothing when absent; std::invalid_argument for a broken escape.
std::optional<std::string> QueryValue(std::string_view target, std::string_view key) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  query = query.substr(0, query.find('#'));
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto equals = pair.find('=');
    if (pair.substr(0, equals) != key) continue;
    const std::string_view raw =
        equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
    std::string value;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        value += ' ';
      } else if (raw[i] != '%') {
        value += raw[i];
      } else {
        const int high = i + 2 < raw.size() ? hex(raw[i + 1]) : -1;
        const int low = i + 2 < raw.size() ? hex(raw[i + 2]) : -1;
        if (high < 0 || low < 0) {
          throw std::invalid_argument("a broken %-escape in the query's " + std::string(key));
        }
        value += static_cast<char>(high * 16 + low);
        i += 2;
      }
    }
    return value;
  }
  return std::nullopt;
}

// What a 404 answers: every endpoint of the table, the landing page last.
const std::string& NotFoundText() {
  static const std::string text = [] {
    std::string list = "not found: try";
    const char* separator = " ";
    for (const EndpointRoute& route : kEndpointRoutes) {
      if (route.endpoint == Endpoint::kLanding) continue;
      list.append(separator).append(route.path);
      separator = ", ";
    }
    return list + " or /\n";
  }();
  return text;
}

void Replace(std::string& text, std::string_view placeholder, std::string_view value) {
  for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder)) {
    text.replace(at, placeholder.size(), value);
  }
}

}  // namespace

HttpHandler::HttpHandler(HandlerSources sources) : sources_(std::move(sources)) {
  std::string page = kLandingPage;
  Replace(page, "@TITLE@", sources_.title);
  Replace(page, "@VERSION@", kVersion);
  landing_page_ = Share(std::move(page));
}

Exposition HttpHandler::Collect() const {
  Exposition exposition;
  if (sources_.publisher != nullptr) exposition = sources_.publisher->CollectExposition();
  for (const prometheus::Collectable* collectable : sources_.collectables) {
    auto collected = collectable->Collect();
    exposition.families.insert(exposition.families.end(),
                               std::make_move_iterator(collected.begin()),
                               std::make_move_iterator(collected.end()));
  }
  return exposition;
}

std::shared_ptr<const HttpHandler::Rendered> HttpHandler::FreshExposition(
    MetricsFormat format) const {
  if (!sources_.generation) return nullptr;
  std::shared_ptr<const Rendered> cached;
  {
    std::scoped_lock lock(cache_mutex_);
    cached = cache_[static_cast<std::size_t>(format)];
  }
  if (!cached || cached->generation != sources_.generation() ||
      std::chrono::steady_clock::now() - cached->built >= kMaxExpositionAge) {
    return nullptr;
  }
  return cached;
}

std::shared_ptr<const HttpHandler::Rendered> HttpHandler::CurrentExposition(
    MetricsFormat format) const {
  if (auto fresh = FreshExposition(format)) return fresh;
  // Read before collecting: a snapshot that lands meanwhile makes the next scrape build again.
  const std::uint64_t generation = sources_.generation ? sources_.generation() : 0;
  auto rendered = std::make_shared<Rendered>();
  rendered->generation = generation;
  rendered->built = std::chrono::steady_clock::now();
  const Exposition exposition = Collect();
  switch (format) {
    case MetricsFormat::kText:
      rendered->body = SerializeText(exposition);
      break;
    case MetricsFormat::kOpenMetrics:
      rendered->body = SerializeOpenMetrics(exposition);
      break;
    case MetricsFormat::kProtobuf:
      rendered->body = SerializeProtobuf(exposition);
      break;
  }
  // Made with the body, once: Prometheus asks for gzip on every scrape.
  rendered->gzip = GzipCompress(rendered->body);
  std::scoped_lock lock(cache_mutex_);
  cache_[static_cast<std::size_t>(format)] = rendered;
  return rendered;
}

HttpResponse HttpHandler::Metrics(const std::shared_ptr<const Rendered>& rendered,
                                  const Negotiated& negotiated, const HttpRequest& request) {
  HttpResponse response;
  response.content_type = std::string(negotiated.content_type);
  response.headers.emplace_back("Vary", "Accept, Accept-Encoding");
  // Aliasing pointers: the body shares the exposition's ownership, nothing is copied.
  if (AcceptsGzip(request.accept_encoding)) {
    response.body = std::shared_ptr<const std::string>(rendered, &rendered->gzip);
    response.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    response.body = std::shared_ptr<const std::string>(rendered, &rendered->body);
  }
  return response;
}

bool HttpHandler::IsMetrics(const HttpRequest& request) {
  return EndpointOf(request.target) == Endpoint::kMetrics;
}

// POST /debug/mark?name=NAME: 201 with the mark as JSON; for a browser's form (it accepts
// HTML), 303 back to the page, which then shows the mark.
HttpResponse HttpHandler::MakeMark(const HttpRequest& request) const {
  if (request.method != "POST") {
    HttpResponse response = Text(405, "method not allowed: POST /debug/mark?name=NAME\n");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  if (sources_.marks == nullptr) return Text(404, "marks are not kept here\n");
  std::optional<std::string> name;
  try {
    name = QueryValue(request.target, "name");
  } catch (const std::invalid_argument& error) {
    return Text(400, "bad mark: " + std::string(error.what()) + "\n");
  }
  if (!name) return Text(400, "bad mark: POST /debug/mark?name=NAME needs a name\n");
  if (std::string error = MarkBoard::CheckName(*name); !error.empty()) {
    return Text(400, "bad mark: " + error + "\n");
  }
  const Mark mark = sources_.marks->Add(std::move(*name));
  if (request.accept.find("text/html") != std::string::npos) {
    HttpResponse response = Text(303, "marked; see /debug\n");
    response.headers.emplace_back("Location", "../debug#marks");
    return response;
  }
  HttpResponse response;
  response.status = 201;
  response.content_type = "application/json";
  response.body = Share(nlohmann::json{{"id", mark.id},
                                       {"name", mark.name},
                                       {"time", Rfc3339Utc(mark.time)},
                                       {"kept", sources_.marks->capacity()}}
                            .dump() +
                        "\n");
  return response;
}

std::optional<HttpResponse> HttpHandler::HandleQuickly(const HttpRequest& request) const {
  const Endpoint endpoint = EndpointOf(request.target);
  if (endpoint == Endpoint::kDebugMark) return MakeMark(request);
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = Text(405, "method not allowed: use GET or HEAD\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  switch (endpoint) {
    case Endpoint::kMetrics: {
      const Negotiated negotiated = NegotiateFormat(request.accept);
      if (auto fresh = FreshExposition(negotiated.format)) {
        return Metrics(fresh, negotiated, request);
      }
      return std::nullopt;
    }
    case Endpoint::kHealthz:
      return ProbeResponse(sources_.liveness);
    case Endpoint::kReadyz:
      return ProbeResponse(sources_.readiness);
    case Endpoint::kDebug:
    case Endpoint::kDebugHealth:
      if (sources_.diagnostics) return std::nullopt;
      break;
    case Endpoint::kLanding: {
      HttpResponse response;
      response.content_type = "text/html; charset=utf-8";
      response.body = landing_page_;
      return response;
    }
    case Endpoint::kDebugMark:
    case Endpoint::kOther:
      break;
  }
  return Text(404, NotFoundText());
}

HttpResponse HttpHandler::Handle(const HttpRequest& request) const {
  if (auto quick = HandleQuickly(request)) return std::move(*quick);
  const Endpoint endpoint = EndpointOf(request.target);
  if (endpoint == Endpoint::kMetrics) {
    const Negotiated negotiated = NegotiateFormat(request.accept);
    return Metrics(CurrentExposition(negotiated.format), negotiated, request);
  }
  // /debug or /debug/health.
  HttpResponse response;
  const std::vector<DiagnosticsReport> reports = sources_.diagnostics();
  const std::vector<Mark> marks =
      sources_.marks != nullptr ? sources_.marks->List() : std::vector<Mark>{};
  if (endpoint == Endpoint::kDebug) {
    response.content_type = "text/html; charset=utf-8";
    response.body = Share(DebugPageHtml(reports, marks));
  } else {
    response.content_type = "application/json";
    response.body = Share(DebugHealthJson(reports, marks));
  }
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace poolwatch::exporter

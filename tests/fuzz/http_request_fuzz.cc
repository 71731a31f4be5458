// libFuzzer target: any bytes as an HTTP request to poolwatchd, parsed by Beast with the
// server's limits and, when they parse, answered by the real HttpHandler over a real publisher
// and diagnostics store.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "http_handler.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/metrics_publisher.h"
#include "poolwatch/process_collector.h"

namespace {

namespace http = boost::beast::http;
using namespace poolwatch;
using namespace poolwatch::exporter;

struct Fixture {
  BufferPool pool;
  HealthMonitor monitor;
  MetricsPublisher publisher;
  DiagnosticsStore diagnostics{"fuzz"};
  ProcessCollector process;
  HttpHandler handler{HandlerSources{&publisher,
                                     {&process},
                                     [] {
                                       return Probe{true, "ok"};
                                     },
                                     [] {
                                       return Probe{true, "ready"};
                                     },
                                     [this] { return std::vector{diagnostics.Report()}; },
                                     nullptr}};
  HttpOptions limits;

  Fixture() {
    monitor.AddPool("fuzz", pool);
    monitor.Subscribe([this](const HealthSnapshot& s) { diagnostics.Receive(s); });
    publisher.Attach(monitor);
    pool.Acquire(BufferFormat::kF32, 16, "fuzz.site");
    pool.Acquire(BufferFormat::kF32, 16, "fuzz.site");
    monitor.EndFrame({});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(fixture.limits.max_request_bytes));
  parser.body_limit(fixture.limits.max_request_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  const HttpRequest request{std::string(req.method_string()), std::string(req.target()),
                            std::string(req[http::field::accept_encoding]),
                            std::string(req[http::field::accept])};
  const HttpResponse response = fixture.handler.Handle(request);
  if (response.status < 200 || response.status > 599) __builtin_trap();
  // The I/O thread's answer, when it has one, is the same answer.
  if (const auto quick = fixture.handler.HandleQuickly(request);
      quick && quick->status != response.status) {
    __builtin_trap();
  }
  return 0;
}

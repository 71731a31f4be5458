#include "poolwatch/exporter/exporter.h"

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "http_handler.h"
#include "http_metrics.h"
#include "http_server.h"
#include "poolwatch/process_collector.h"
#include "poolwatch/version.h"
#include "web_config.h"

namespace poolwatch::exporter {

namespace {

using Clock = std::chrono::steady_clock;

// The collectables registered by the embedder, held weakly as prometheus-cpp's Exposer holds
// them. Fixed once serving starts.
class Registered final : public prometheus::Collectable {
 public:
  void Add(std::weak_ptr<prometheus::Collectable> collectable) {
    collectables_.push_back(std::move(collectable));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    for (const auto& weak : collectables_) {
      if (const auto collectable = weak.lock()) {
        auto collected = collectable->Collect();
        families.insert(families.end(), std::make_move_iterator(collected.begin()),
                        std::make_move_iterator(collected.end()));
      }
    }
    return families;
  }

 private:
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
};

// A loop's latest snapshot, for the default liveness probe. Written by the loop's thread.
struct Heartbeat {
  std::string loop;
  std::atomic<Clock::rep> last{0};  // steady-clock ticks of the latest snapshot; 0: none yet
  std::atomic<Clock::rep> allowed{0};
  std::uint64_t frames = 0;  // the loop's thread only
};

// A Server header token and basic-auth realm: letters, digits, '.', '_' and '-'.
bool IsServerName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string Number(double value) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return ec == std::errc{} ? std::string(text, end) : "?";
}

}  // namespace

struct Exporter::Impl {
  explicit Impl(Options o)
      : options(std::move(o)),
        address(ParseListenAddress(options.http.listen, "http.listen")),
        publisher(options.publisher),
        handler(HandlerSources{
            .publisher = &publisher,
            .collectables = {&process, &build_info, &http_metrics, &registered},
            .liveness = [this] { return Liveness(); },
            .readiness = [this] { return readiness ? readiness() : DefaultReadiness(); },
            .diagnostics = [this] { return Diagnostics(); },
            .generation = [this] { return publisher.Generation(); },
            .marks = marks.get(),
            .title = options.server_name}) {
    prometheus::BuildGauge()
        .Name("poolwatch_build_info")
        .Help("A metric with a constant '1' value labeled by version, revision and compiler.")
        .Register(build_info)
        .Add({{"version", kVersion}, {"revision", kRevision}, {"compiler", kCompiler}})
        .Set(1);
  }

  void Log(LogLevel level, std::string_view message) const {
    if (options.log) options.log(level, message);
  }

  // Logged once per transition, never per frame.
  void LogVerdictChange(const VerdictChange& change) const {
    const LogLevel level = change.to == Severity::kCritical  ? LogLevel::kError
                           : change.to == Severity::kWarning ? LogLevel::kWarning
                                                             : LogLevel::kInfo;
    Log(level, "pool " + change.pool + " (loop " + change.loop + "): " + change.alert + ": " +
                   std::string(SeverityName(change.from)) + " -> " +
                   std::string(SeverityName(change.to)) + " (value " + Number(change.value) + ")");
  }

  std::vector<DiagnosticsReport> Diagnostics() const {
    std::vector<DiagnosticsReport> reports;
    reports.reserve(diagnostics.size());
    for (const auto& store : diagnostics) reports.push_back(store->Report());
    return reports;
  }

  Probe Liveness() const { return liveness ? liveness() : DefaultLiveness(); }

  Probe DefaultLiveness() const {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    if (!server) return {false, "not started"};
    const Clock::rep now = Clock::now().time_since_epoch().count();
    for (const auto& heartbeat : heartbeats) {
      const Clock::rep last = heartbeat->last.load(std::memory_order_acquire);
      const Clock::rep age = now - (last == 0 ? started_at : last);
      if (age > heartbeat->allowed.load(std::memory_order_relaxed)) {
        return {false,
                "loop " + heartbeat->loop + " stalled: no snapshot for " +
                    std::to_string(duration_cast<milliseconds>(Clock::duration(age)).count()) +
                    " ms"};
      }
    }
    return {true, "ok"};
  }

  Probe DefaultReadiness() const {
    if (stopping) return {false, "shutting down"};
    if (!publisher.AllPublished()) return {false, "not every loop has published a frame yet"};
    return {true, "ready"};
  }

  Options options;
  const ListenAddress address;
  MetricsPublisher publisher;
  ProcessCollector process;
  prometheus::Registry build_info;
  HttpMetrics http_metrics;  // the server's, counted while it serves
  Registered registered;
  std::vector<std::unique_ptr<DiagnosticsStore>> diagnostics;  // fixed once serving starts
  std::vector<std::unique_ptr<Heartbeat>> heartbeats;          // likewise
  std::function<Probe()> liveness;
  std::function<Probe()> readiness;
  std::shared_ptr<MarkBoard> marks = std::make_shared<MarkBoard>();  // every attached loop's
  HttpHandler handler;

  std::atomic<bool> stopping{false};
  Clock::rep started_at = 0;
  std::unique_ptr<boost::asio::io_context> own_io;  // before the server: outlives it
  boost::asio::io_context* io = nullptr;
  std::unique_ptr<HttpServer> server;
  std::thread io_thread;
};

Exporter::Exporter(Options options) {
  if (!IsServerName(options.server_name)) {
    throw ConfigError("server_name: must be 1 to 64 letters, digits, '.', '_' or '-', got \"" +
                      options.server_name + "\"");
  }
  const HttpOptions& http = options.http;
  if (http.max_request_bytes < 256) throw ConfigError("http.max_request_bytes: must be >= 256");
  if (http.max_connections == 0) throw ConfigError("http.max_connections: must be >= 1");
  if (http.header_timeout.count() <= 0 || http.idle_timeout.count() <= 0) {
    throw ConfigError("http.header_timeout, http.idle_timeout: must be positive");
  }
  if (options.drain_timeout.count() < 0) throw ConfigError("drain_timeout: must not be negative");
  if (!options.web && !http.web_config_file.empty()) {
    try {
      options.web = LoadWebSecurity(http.web_config_file);
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("http.web_config_file: ") + e.what());
    }
  }
  impl_ = std::make_unique<Impl>(std::move(options));
}

Exporter::~Exporter() { Stop(); }

void Exporter::Attach(HealthMonitor& monitor) {
  if (impl_->server) throw std::logic_error("Exporter::Attach: call it before Start()");
  impl_->publisher.Attach(monitor);  // throws for a name attached already
  monitor.UseMarks(impl_->marks);
  for (const std::string& pool : monitor.PoolNames()) {
    auto& store = impl_->diagnostics.emplace_back(std::make_unique<DiagnosticsStore>(
        pool, impl_->options.diagnostics,
        [impl = impl_.get()](const VerdictChange& change) { impl->LogVerdictChange(change); }));
    monitor.Subscribe([&store = *store](const HealthSnapshot& s) { store.Receive(s); });
  }
  auto& heartbeat = impl_->heartbeats.emplace_back(std::make_unique<Heartbeat>());
  heartbeat->loop = monitor.loop();
  const auto period = std::chrono::duration_cast<Clock::duration>(monitor.period());
  // Stalled: no snapshot for ten snapshot intervals, and at least a second (timer noise is not
  // a stall).
  const auto allowed = [period](std::uint64_t frames_per_snapshot) {
    return std::max<Clock::duration>(period * 10 * static_cast<Clock::rep>(frames_per_snapshot),
                                     std::chrono::seconds{1})
        .count();
  };
  heartbeat->allowed = allowed(1);
  monitor.Subscribe([&beat = *heartbeat, allowed](const HealthSnapshot& s) {
    const std::uint64_t frames = s.timing.frames;
    beat.allowed.store(allowed(std::max<std::uint64_t>(frames - beat.frames, 1)),
                       std::memory_order_relaxed);
    beat.frames = frames;
    beat.last.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
  });
}

void Exporter::RegisterCollectable(const std::weak_ptr<prometheus::Collectable>& collectable) {
  if (impl_->server) throw std::logic_error("Exporter::RegisterCollectable: before Start()");
  impl_->registered.Add(collectable);
}

void Exporter::SetLivenessProbe(std::function<Probe()> probe) {
  impl_->liveness = std::move(probe);
}

void Exporter::SetReadinessProbe(std::function<Probe()> probe) {
  impl_->readiness = std::move(probe);
}

void Exporter::Start() {
  impl_->own_io = std::make_unique<boost::asio::io_context>(1);
  Start(*impl_->own_io);
  impl_->io_thread = std::thread([io = impl_->io] {
    pthread_setname_np(pthread_self(), "pw-http");  // for top -H, perf and gdb
    io->run();
  });
}

void Exporter::Start(boost::asio::io_context& io) {
  if (impl_->server) throw std::logic_error("Exporter::Start: started already");
  impl_->started_at = Clock::now().time_since_epoch().count();
  impl_->io = &io;
  impl_->server = std::make_unique<HttpServer>(
      io, impl_->address, impl_->options.http, impl_->handler, impl_->http_metrics,
      impl_->options.web, impl_->options.server_name, impl_->options.log);
  impl_->server->Start();
  impl_->Log(LogLevel::kInfo, "exporter listening on " + impl_->server->local_address() + " (" +
                                  Describe(impl_->options.web.get()) + ")");
}

void Exporter::Stop() {
  if (!impl_ || !impl_->server || impl_->stopping.exchange(true)) return;
  HttpServer& server = *impl_->server;
  server.Stop();
  // Waited for as Go's http.Server.Shutdown waits: by polling, a few milliseconds apart. From
  // the I/O thread itself there is nothing to wait on: the drain goes on as it runs.
  if (!impl_->io->get_executor().running_in_this_thread()) {
    const auto deadline = Clock::now() + impl_->options.drain_timeout;
    while (server.connections() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
    if (const std::size_t open = server.connections(); open > 0) {
      impl_->Log(LogLevel::kWarning,
                 std::to_string(open) + " connection(s) still open after the drain timeout of " +
                     std::to_string(impl_->options.drain_timeout.count()) + " ms: closed");
      server.Abort();
    }
  }
  if (impl_->own_io) {
    impl_->own_io->stop();
    impl_->io_thread.join();
  }
  impl_->Log(LogLevel::kInfo, "stopped serving");
}

std::uint16_t Exporter::port() const { return impl_->server ? impl_->server->port() : 0; }

std::string Exporter::local_address() const {
  return impl_->server ? impl_->server->local_address() : "";
}

void Exporter::SetWebSecurity(std::shared_ptr<const WebSecurity> web) {
  impl_->Log(LogLevel::kInfo, "web config: " + Describe(web.get()));
  if (impl_->server) {
    impl_->server->SetWebSecurity(std::move(web));
  } else {
    impl_->options.web = std::move(web);
  }
}

const MetricsPublisher& Exporter::publisher() const { return impl_->publisher; }

Probe Exporter::Liveness() const { return impl_->Liveness(); }

std::vector<DiagnosticsReport> Exporter::Diagnostics() const { return impl_->Diagnostics(); }

}  // namespace poolwatch::exporter

#pragma once

#include <prometheus/collectable.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "poolwatch/diagnostics_store.h"
#include "poolwatch/exporter/options.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace poolwatch::exporter {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };

// Where the exporter's log lines go: one call per line, from any of its threads.
using LogCallback = std::function<void(LogLevel level, std::string_view message)>;

// A loaded exporter-toolkit web config (TLS certificate and key, basic-auth users, response
// headers, rate limit).
class WebSecurity;

// Reads, checks and loads a web config file. Throws ConfigError naming the file, the key and
// the reason.
std::shared_ptr<const WebSecurity> LoadWebSecurity(const std::filesystem::path& path);
// One line for a log: "plain HTTP" for null, else e.g. "TLS (TLS12..TLS13, client
// certificates: NoClientCert), basic auth for 2 users".
std::string Describe(const WebSecurity* web);
// Whether it makes the server speak TLS (false for null).
bool ServesTls(const WebSecurity* web);

// GET /healthz from a server listening at `address` (an all-interfaces address is asked on
// loopback), as a container's health check does, the way the server's web config `web` says
// (null: plain HTTP): over TLS if it serves TLS, without checking the server's certificate (it
// asks itself); and when it requires client certificates, presenting the server's own
// certificate and key, which a client_ca_file that signed it verifies. Returns an empty string
// if it answered 200, else what went wrong.
std::string ProbeHealth(const ListenAddress& address, std::chrono::milliseconds timeout,
                        const WebSecurity* web = nullptr);

// The verdict of a liveness or readiness probe.
struct Probe {
  bool ok = false;
  std::string detail{};
};

// Every member has an initializer (as in every options struct of poolwatch's), so that a
// designated initializer may name any few of them without a warning (g++ -Wextra).
struct Options {
  HttpOptions http{};
  // Loaded already (LoadWebSecurity); overrides http.web_config_file when set.
  std::shared_ptr<const WebSecurity> web{};
  DiagnosticsOptions diagnostics{};  // of every attached pool
  MetricsPublisherOptions publisher{};
  // On Stop(): how long responses already begun may take to complete.
  std::chrono::milliseconds drain_timeout{5'000};
  std::string server_name = "poolwatch";  // the Server header and the landing page's title
  LogCallback log{};                      // null: nothing is logged
};

// Everything poolwatchd serves, for the loops and pools of any process: /metrics (Prometheus
// text 0.0.4, gzip), /healthz, /readyz, /debug and /debug/health, over HTTP/1.1 or TLS with
// basic auth from an exporter-toolkit web config, within limits on size, time and connections.
//
//   poolwatch::exporter::Exporter exporter({.http = {.listen = "127.0.0.1:0"}});
//   exporter.Attach(monitor);   // every monitor, before its loop runs
//   exporter.Start();           // binds; serves on a thread of its own
//   ... exporter.port() ...
//   exporter.Stop();            // drains: answers begun are completed
//
// One exposition is serialized (and gzipped) per snapshot, off the I/O thread, and served to
// every scrape of it without a copy; /debug is rendered off the I/O thread too, on a thread of
// its own.
//
// Thread-safety: construct, Attach, RegisterCollectable, Set*Probe, Start and Stop from one
// thread, which is not the exporter's own I/O thread. With the embedder's io_context, Stop()
// from a thread that runs it starts the drain and returns without waiting. The rest is
// thread-safe.
class Exporter {
 public:
  // Checks the options (listen address, limits) and loads the web config file if one is named.
  // Throws ConfigError naming what is wrong.
  explicit Exporter(Options options);
  ~Exporter();  // Stop()
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Before the monitor's loop runs and before Start(): publishes the loop and its pools, and
  // diagnoses each pool. The exporter must outlive the loop's running. Throws
  // std::invalid_argument for a loop or pool name attached already.
  void Attach(HealthMonitor& monitor);
  // Before Start(): more series on /metrics, after poolwatch's own (as prometheus-cpp's
  // Exposer takes them). Expired ones are skipped.
  void RegisterCollectable(const std::weak_ptr<prometheus::Collectable>& collectable);
  // Before Start(): replace the default probes. Default liveness: every attached loop has
  // published within ten of its snapshot intervals (at least 1 s). Default readiness: every
  // attached loop has published once, and the exporter is not stopping.
  void SetLivenessProbe(std::function<Probe()> probe);
  void SetReadinessProbe(std::function<Probe()> probe);

  // Binds and listens, then serves on a thread of its own. Throws std::runtime_error naming the
  // address when it cannot bind.
  void Start();
  // Binds and listens, then serves on `io`, which the embedder runs (and keeps alive until the
  // exporter is destroyed). Throws like Start().
  void Start(boost::asio::io_context& io);
  // Closes the listener and drains: idle connections close, responses already begun complete
  // within drain_timeout; then the I/O thread (if its own) is joined. Idempotent.
  void Stop();

  // The bound address, once started: the real port when asked for port 0.
  std::uint16_t port() const;
  std::string local_address() const;  // e.g. "127.0.0.1:9720", "[::]:9720"

  // A reloaded web config (null: plain HTTP): new connections get its transport, every request
  // from now on its users, headers and rate limit (the same limit keeps its bucket). Renewed TLS
  // files need no call: the exporter loads its certificate, key and client CA again when they
  // change on disk (looked at before a new connection, at most once a second), as the
  // exporter-toolkit does; files that do not load are logged once and the running ones stay.
  void SetWebSecurity(std::shared_ptr<const WebSecurity> web);

  // The verdict /healthz answers with now (the probe set, or the default one), for a watchdog
  // of the embedder's own, such as systemd's.
  Probe Liveness() const;

  const MetricsPublisher& publisher() const;
  // Every attached pool's diagnosis, in the order attached.
  std::vector<DiagnosticsReport> Diagnostics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolwatch::exporter

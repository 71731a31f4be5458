#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "config.h"
#include "http_handler.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"
#include "poolwatch/process_collector.h"
#include "poolwatch/reference_workload.h"
#include "poolwatch/simulation_loop.h"

namespace poolwatch::daemon {

// poolwatchd without its sockets: each configured loop on its own tick thread, running the
// reference workload on each of its pools; the publishers their snapshots feed; the HTTP
// handler over them; and config reloads.
//
// Thread-safety: Start/Stop from the owning thread; Reload() and handler() from any thread
// other than the tick threads. A reloaded config reaches each tick thread between two frames.
class Daemon {
 public:
  // Produces a fresh, validated config for a reload, or throws ConfigError.
  using ConfigSource = std::function<Config()>;

  // Throws std::invalid_argument if the config's loops or pools cannot be built (a duplicate
  // name that ParseConfig would have refused).
  Daemon(Config config, ConfigSource reload_source);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void Start();  // starts the tick threads
  void Stop();   // each loop finishes the frame under way; then its thread is joined

  // Reads the config again. A bad one is refused (logged, the old one keeps running) and
  // poolwatch_config_last_reload_successful goes to 0; so is one that adds or removes loops or
  // pools, which needs a restart. A good one sets it to 1.
  bool Reload();
  // Called by every successful Reload(), on its thread, with the new config.
  void OnReload(std::function<void(const Config&)> listener) { on_reload_ = std::move(listener); }

  const HttpHandler& handler() const { return handler_; }
  const Config& initial_config() const { return config_; }
  const MetricsPublisher& publisher() const { return publisher_; }
  // Every pool's diagnosis, in config order.
  std::vector<DiagnosticsReport> Diagnostics() const;

  Probe Liveness() const;
  Probe Readiness() const;

 private:
  struct PoolRuntime;
  struct LoopRuntime;

  const Config config_;  // as started; the tick threads' current options live in their objects
  ConfigSource reload_source_;
  std::function<void(const Config&)> on_reload_;

  MetricsPublisher publisher_;
  std::vector<std::unique_ptr<LoopRuntime>> loops_;
  ProcessCollector process_collector_;
  prometheus::Registry registry_;  // daemon-level gauges: build info, reload state
  prometheus::Gauge& reload_successful_;
  prometheus::Gauge& reload_timestamp_;
  HttpHandler handler_;

  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point started_at_{};
};

}  // namespace poolwatch::daemon

#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

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

// poolwatchd without its sockets: the reference workload on a SimulationLoop in its own thread,
// the publishers its snapshots feed, the HTTP handler over them, and config reloads.
//
// Thread-safety: Start/Stop from the owning thread; Reload() and handler() from any thread
// other than the tick thread. A reloaded config reaches the tick thread between two frames.
class Daemon {
 public:
  // Produces a fresh, validated config for a reload, or throws ConfigError.
  using ConfigSource = std::function<Config()>;

  Daemon(Config config, ConfigSource reload_source);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void Start();  // starts the tick thread
  void Stop();   // finishes the frame under way, then joins the tick thread

  // Reads the config again. A bad one is refused (logged, the old one keeps running) and
  // poolwatch_config_last_reload_successful goes to 0; a good one sets it to 1.
  bool Reload();
  // Called by every successful Reload(), on its thread, with the new config.
  void OnReload(std::function<void(const Config&)> listener) { on_reload_ = std::move(listener); }

  const HttpHandler& handler() const { return handler_; }
  const Config& initial_config() const { return config_; }
  const MetricsPublisher& publisher() const { return publisher_; }
  const DiagnosticsStore& diagnostics() const { return diagnostics_; }

  Probe Liveness() const;
  Probe Readiness() const;

 private:
  void RunFrame(BufferPool& pool, std::uint64_t frame);
  void ApplyPendingConfig();

  const Config config_;  // as started; the tick thread's current options live in its objects
  ConfigSource reload_source_;
  std::function<void(const Config&)> on_reload_;

  BufferPool pool_;
  HealthMonitor monitor_;
  ReferenceWorkload workload_;
  SteadyClock clock_;
  SimulationLoop loop_;
  MetricsPublisher publisher_;
  DiagnosticsStore diagnostics_;
  ProcessCollector process_collector_;
  prometheus::Registry registry_;  // daemon-level gauges: build info, reload state
  prometheus::Gauge& reload_successful_;
  prometheus::Gauge& reload_timestamp_;
  HttpHandler handler_;

  std::mutex pending_mutex_;
  std::optional<Config> pending_;
  std::atomic<bool> has_pending_{false};
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point started_at_{};
  std::jthread tick_thread_;
};

}  // namespace poolwatch::daemon

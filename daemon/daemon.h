#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "config.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/exporter/exporter.h"
#include "poolwatch/metrics_publisher.h"

namespace poolwatch::daemon {

// poolwatchd: each configured loop on its own tick thread, running the reference workload on
// each of its pools, served by the exporter component; and config reloads.
//
// Thread-safety: construct, Start and Stop from the owning thread; Reload() from any thread
// other than the tick threads. A reloaded config reaches each tick thread between two frames.
class Daemon {
 public:
  // Produces a fresh, validated config for a reload, or throws ConfigError.
  using ConfigSource = std::function<Config()>;

  // Throws ConfigError for exporter settings it refuses, std::invalid_argument if the config's
  // loops or pools cannot be built (a duplicate name that ParseConfig would have refused).
  Daemon(Config config, ConfigSource reload_source);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Binds (throws std::runtime_error naming the address when it cannot), then starts the tick
  // threads.
  void Start();
  // Drains the exporter (the listener closes, responses begun complete), then each loop
  // finishes the frame under way and its thread is joined.
  void Stop();

  // Reads the config again. A bad one is refused (logged, the old one keeps running) and
  // poolwatch_config_last_reload_successful goes to 0; so is one that adds or removes loops or
  // pools, which needs a restart. A good one sets it to 1.
  bool Reload();

  const Config& initial_config() const { return config_; }
  exporter::Exporter& exporter() { return exporter_; }
  const exporter::Exporter& exporter() const { return exporter_; }

 private:
  struct PoolRuntime;
  struct LoopRuntime;

  const Config config_;  // as started; the tick threads' current options live in their objects
  ConfigSource reload_source_;

  std::shared_ptr<prometheus::Registry> registry_;  // reload state
  prometheus::Gauge& reload_successful_;
  prometheus::Gauge& reload_timestamp_;
  // Before the loops: it outlives their running.
  exporter::Exporter exporter_;
  std::vector<std::unique_ptr<LoopRuntime>> loops_;
};

}  // namespace poolwatch::daemon

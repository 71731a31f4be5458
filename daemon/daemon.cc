#include "daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "logging.h"
#include "poolwatch/version.h"

namespace poolwatch::daemon {

namespace {

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Logged once per transition, never per frame.
void LogVerdictChange(const VerdictChange& change) {
  const auto level = change.to == Severity::kCritical  ? spdlog::level::err
                     : change.to == Severity::kWarning ? spdlog::level::warn
                                                       : spdlog::level::info;
  spdlog::log(level, "pool {} (loop {}): {}: {} -> {} (value {})", change.pool, change.loop,
              change.alert, SeverityName(change.from), SeverityName(change.to), change.value);
}

// "main[render, physics], audio[audio]": what a reload may not change.
std::string Shape(const std::vector<LoopConfig>& loops) {
  std::string text;
  for (const LoopConfig& loop : loops) {
    text += (text.empty() ? "" : ", ") + loop.name + "[";
    for (std::size_t i = 0; i < loop.pools.size(); ++i) {
      text += (i == 0 ? "" : ", ") + loop.pools[i].name;
    }
    text += "]";
  }
  return text;
}

std::set<std::pair<std::string, std::string>> Members(const std::vector<LoopConfig>& loops) {
  std::set<std::pair<std::string, std::string>> members;
  for (const LoopConfig& loop : loops) {
    members.emplace(loop.name, "");
    for (const PoolConfig& pool : loop.pools) members.emplace(loop.name, pool.name);
  }
  return members;
}

const LoopConfig* FindLoop(const std::vector<LoopConfig>& loops, const std::string& name) {
  const auto it = std::ranges::find(loops, name, &LoopConfig::name);
  return it == loops.end() ? nullptr : &*it;
}

}  // namespace

struct Daemon::PoolRuntime {
  PoolRuntime(const PoolConfig& config, const DiagnosticsOptions& diagnostics_options)
      : name(config.name),
        pool(config.options),
        workload(config.workload),
        diagnostics(config.name, diagnostics_options, LogVerdictChange) {}

  const std::string name;
  BufferPool pool;
  ReferenceWorkload workload;
  DiagnosticsStore diagnostics;
};

// A loop and its pools, owned by its tick thread once started.
struct Daemon::LoopRuntime {
  LoopRuntime(const LoopConfig& loop_config, const DiagnosticsOptions& diagnostics_options)
      : config(loop_config),
        monitor({.loop = loop_config.name,
                 .period = loop_config.TickPeriod(),
                 .snapshot_interval_frames = loop_config.snapshot_interval_frames}),
        loop(clock, monitor, [this](std::uint64_t frame) { RunFrame(frame); }) {
    for (const PoolConfig& pool_config : loop_config.pools) {
      auto& pool =
          pools.emplace_back(std::make_unique<PoolRuntime>(pool_config, diagnostics_options));
      monitor.AddPool(pool->name, pool->pool);
      monitor.Subscribe(
          [&store = pool->diagnostics](const HealthSnapshot& s) { store.Receive(s); });
    }
    monitor.Subscribe([](const HealthSnapshot& s) {
      if (!spdlog::should_log(spdlog::level::debug)) return;
      for (const PoolSnapshot& p : s.pools) {
        spdlog::debug(
            "loop {} frame {}: pool {} allocs={} releases={} pooled_bytes={} keys={} "
            "outstanding={}",
            s.loop, s.timing.frames - 1, p.name, p.stats.last_frame.allocations,
            p.stats.last_frame.releases, p.stats.pooled_bytes, p.stats.keys,
            p.stats.outstanding_buffers);
      }
    });
  }

  void RunFrame(std::uint64_t frame) {
    if (has_pending.load(std::memory_order_acquire)) ApplyPending();
    for (const auto& pool : pools) pool->workload.RunFrame(pool->pool, frame);
  }

  // On the tick thread, between frames: options change only where nothing is using them.
  void ApplyPending() {
    std::optional<LoopConfig> next;
    {
      std::scoped_lock lock(pending_mutex);
      next.swap(pending);
      has_pending = false;
    }
    if (!next) return;
    monitor.SetSnapshotInterval(next->snapshot_interval_frames);
    for (const PoolConfig& pool_config : next->pools) {
      const auto it = std::ranges::find(pools, pool_config.name, &PoolRuntime::name);
      if (it == pools.end()) continue;  // Reload() refuses a config without every pool
      PoolRuntime& runtime = **it;
      runtime.pool.SetOptions(pool_config.options);
      if (pool_config.workload.scenario != runtime.workload.options().scenario) {
        spdlog::info("pool {}: scenario changed: {} -> {}", runtime.name,
                     ScenarioName(runtime.workload.options().scenario),
                     ScenarioName(pool_config.workload.scenario));
      }
      runtime.workload.SetOptions(pool_config.workload);
    }
  }

  void Hand(const LoopConfig& next) {
    {
      std::scoped_lock lock(pending_mutex);
      pending = next;
    }
    has_pending = true;
  }

  const LoopConfig config;  // as started
  std::vector<std::unique_ptr<PoolRuntime>> pools;
  HealthMonitor monitor;
  SteadyClock clock;
  SimulationLoop loop;

  std::mutex pending_mutex;
  std::optional<LoopConfig> pending;
  std::atomic<bool> has_pending{false};
  std::jthread thread;
};

Daemon::Daemon(Config config, ConfigSource reload_source)
    : config_(std::move(config)),
      reload_source_(std::move(reload_source)),
      reload_successful_(prometheus::BuildGauge()
                             .Name("poolwatch_config_last_reload_successful")
                             .Help("Whether the last configuration reload attempt was successful.")
                             .Register(registry_)
                             .Add({})),
      reload_timestamp_(prometheus::BuildGauge()
                            .Name("poolwatch_config_last_reload_success_timestamp_seconds")
                            .Help("Timestamp of the last successful configuration reload.")
                            .Register(registry_)
                            .Add({})),
      handler_(HandlerSources{{&publisher_, &process_collector_, &registry_},
                              [this] { return Liveness(); },
                              [this] { return Readiness(); },
                              [this] { return Diagnostics(); },
                              [this] { return publisher_.Generation(); }}) {
  for (const LoopConfig& loop_config : config_.loops) {
    auto& loop =
        loops_.emplace_back(std::make_unique<LoopRuntime>(loop_config, config_.diagnostics));
    publisher_.Attach(loop->monitor);
  }
  prometheus::BuildGauge()
      .Name("poolwatch_build_info")
      .Help("A metric with a constant '1' value labeled by version, revision and compiler.")
      .Register(registry_)
      .Add({{"version", kVersion}, {"revision", kRevision}, {"compiler", kCompiler}})
      .Set(1);
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());
}

Daemon::~Daemon() { Stop(); }

void Daemon::Start() {
  started_at_ = std::chrono::steady_clock::now();
  for (const auto& loop : loops_) {
    std::string pools;
    for (const PoolConfig& pool : loop->config.pools) {
      pools += (pools.empty() ? "" : ", ") + pool.name + " (" +
               std::string(ScenarioName(pool.workload.scenario)) + ")";
    }
    spdlog::info("loop {} starting at {} Hz: {}", loop->config.name, loop->config.tick_hz, pools);
    loop->thread =
        std::jthread([&runtime = *loop](const std::stop_token& stop) { runtime.loop.Run(stop); });
  }
}

void Daemon::Stop() {
  stopping_ = true;
  // Asked all at once, so the loops finish their frames in parallel.
  for (const auto& loop : loops_) loop->thread.request_stop();
  for (const auto& loop : loops_) {
    if (!loop->thread.joinable()) continue;
    loop->thread.join();
    spdlog::info("loop {} stopped after {} frames", loop->config.name, loop->loop.stats().frames);
  }
}

bool Daemon::Reload() {
  Config next;
  try {
    next = reload_source_();
  } catch (const ConfigError& e) {
    reload_successful_.Set(0);
    spdlog::error("config reload refused, keeping the running config: {}", e.what());
    return false;
  }
  if (Members(next.loops) != Members(config_.loops)) {
    reload_successful_.Set(0);
    spdlog::error(
        "config reload refused, keeping the running config: adding, removing or moving loops or "
        "pools needs a restart (running {}, new {})",
        Shape(config_.loops), Shape(next.loops));
    return false;
  }

  HttpOptions next_http = next.http;
  next_http.web_config_file = config_.http.web_config_file;  // reloadable
  bool restart_needed = next_http != config_.http || next.log.format != config_.log.format;
  for (const auto& loop : loops_) {
    restart_needed |= FindLoop(next.loops, loop->config.name)->tick_hz != loop->config.tick_hz;
  }
  if (restart_needed) {
    spdlog::warn(
        "config reload: changes to http (but for web_config_file), tick_hz and log.format take "
        "effect only after a restart");
  }
  SetLogLevel(next.log.level);
  if (on_reload_) on_reload_(next);
  for (const auto& loop : loops_) loop->Hand(*FindLoop(next.loops, loop->config.name));
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());
  spdlog::info("config reloaded");
  return true;
}

std::vector<DiagnosticsReport> Daemon::Diagnostics() const {
  std::vector<DiagnosticsReport> reports;
  for (const auto& loop : loops_) {
    for (const auto& pool : loop->pools) reports.push_back(pool->diagnostics.Report());
  }
  return reports;
}

Probe Daemon::Liveness() const {
  using namespace std::chrono;
  if (started_at_ == steady_clock::time_point{}) return {false, "not started"};
  const auto now = steady_clock::now();
  for (const auto& loop : loops_) {
    // Stalled means no frame for ten ticks, and at least a second (timer noise is not a stall).
    const auto allowed = std::max<nanoseconds>(10 * loop->config.TickPeriod(), seconds{1});
    const auto last = loop->loop.LastTickTime();
    const auto reference = last.time_since_epoch().count() == 0 ? started_at_ : last;
    const auto age = now - reference;
    if (age > allowed) {
      return {false, "loop " + loop->config.name + " stalled: no frame for " +
                         std::to_string(duration_cast<milliseconds>(age).count()) + " ms"};
    }
  }
  return {true, "ok"};
}

Probe Daemon::Readiness() const {
  if (stopping_) return {false, "shutting down"};
  if (!publisher_.AllPublished()) return {false, "not every loop has published a frame yet"};
  return {true, "ready"};
}

}  // namespace poolwatch::daemon

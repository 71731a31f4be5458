#include "daemon.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <set>

#include "logging.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/simulation_loop.h"
#include "reference_workload.h"

namespace poolwatch::daemon {

namespace {

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The exporter's log lines, in poolwatchd's log.
void LogFromExporter(exporter::LogLevel level, std::string_view message) {
  using enum exporter::LogLevel;
  spdlog::log(level == kError     ? spdlog::level::err
              : level == kWarning ? spdlog::level::warn
              : level == kInfo    ? spdlog::level::info
                                  : spdlog::level::debug,
              "{}", message);
}

exporter::Options ExporterOptions(const Config& config) {
  exporter::Options options;
  options.http = config.http;
  options.web = config.web;
  options.diagnostics = config.diagnostics;
  options.server_name = "poolwatchd";
  options.log = LogFromExporter;
  return options;
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
  explicit PoolRuntime(const PoolConfig& config)
      : name(config.name), pool(config.options), workload(config.workload) {}

  const std::string name;
  BufferPool pool;
  ReferenceWorkload workload;
};

// A loop and its pools, owned by its tick thread once started.
struct Daemon::LoopRuntime {
  LoopRuntime(const LoopConfig& loop_config, std::chrono::seconds peak_window)
      : config(loop_config),
        monitor({.loop = loop_config.name,
                 .period = loop_config.TickPeriod(),
                 .snapshot_interval_frames = loop_config.snapshot_interval_frames,
                 .peak_window = peak_window}),
        loop(clock, monitor, [this](std::uint64_t frame) { RunFrame(frame); }) {
    for (const PoolConfig& pool_config : loop_config.pools) {
      auto& pool = pools.emplace_back(std::make_unique<PoolRuntime>(pool_config));
      monitor.AddPool(pool->name, pool->pool);
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
      registry_(std::make_shared<prometheus::Registry>()),
      reload_successful_(prometheus::BuildGauge()
                             .Name("poolwatch_config_last_reload_successful")
                             .Help("Whether the last configuration reload attempt was successful.")
                             .Register(*registry_)
                             .Add({})),
      reload_timestamp_(prometheus::BuildGauge()
                            .Name("poolwatch_config_last_reload_success_timestamp_seconds")
                            .Help("Timestamp of the last successful configuration reload.")
                            .Register(*registry_)
                            .Add({})),
      exporter_(ExporterOptions(config_)) {
  for (const LoopConfig& loop_config : config_.loops) {
    auto& loop =
        loops_.emplace_back(std::make_unique<LoopRuntime>(loop_config, config_.peak_window));
    exporter_.Attach(loop->monitor);
  }
  exporter_.RegisterCollectable(registry_);
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());
}

Daemon::~Daemon() { Stop(); }

void Daemon::Start() {
  exporter_.Start();
  for (const auto& loop : loops_) {
    std::string pools;
    for (const PoolConfig& pool : loop->config.pools) {
      pools += (pools.empty() ? "" : ", ") + pool.name + " (" +
               std::string(ScenarioName(pool.workload.scenario)) + ")";
    }
    spdlog::info("loop {} starting at {} Hz: {}", loop->config.name, loop->config.tick_hz, pools);
    loop->thread = std::jthread([&runtime = *loop](const std::stop_token& stop) {
      // "pw-tick-" and the loop's name, within the 15 bytes a thread's name may have.
      std::string thread_name = "pw-tick-";
      thread_name += runtime.config.name;
      thread_name.resize(std::min<std::size_t>(thread_name.size(), 15));
      pthread_setname_np(pthread_self(), thread_name.c_str());
      runtime.loop.Run(stop);
    });
  }
}

void Daemon::Stop() {
  exporter_.Stop();
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

  // Applied with a warning rather than refused: the rest of the new config (a workload, the log
  // level, the certificates) is what an operator reloads for, as PostgreSQL's SIGHUP applies
  // what it can and names each setting that waits for a restart.
  if (const std::vector<std::string> waiting = RestartOnlyChanges(config_, next);
      !waiting.empty()) {
    spdlog::warn("config reload: these take effect only after a restart, the rest is applied: {}",
                 fmt::join(waiting, ", "));
  }
  SetLogLevel(next.log.level);
  exporter_.SetWebSecurity(next.web);
  for (const auto& loop : loops_) loop->Hand(*FindLoop(next.loops, loop->config.name));
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());
  spdlog::info("config reloaded");
  return true;
}

}  // namespace poolwatch::daemon

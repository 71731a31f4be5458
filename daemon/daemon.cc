#include "daemon.h"

#include <spdlog/spdlog.h>

#include "logging.h"
#include "poolwatch/version.h"

namespace poolwatch::daemon {

namespace {

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Daemon::Daemon(Config config, ConfigSource reload_source)
    : config_(std::move(config)),
      reload_source_(std::move(reload_source)),
      pool_(config_.pool),
      monitor_(config_.health),
      workload_(config_.workload),
      loop_(LoopOptions{config_.TickPeriod()}, clock_, pool_, monitor_,
            [this](BufferPool& pool, std::uint64_t frame) { RunFrame(pool, frame); }),
      publisher_(config_.pool_name),
      diagnostics_(config_.diagnostics,
                   [](const VerdictChange& change) {
                     // Once per transition, never per frame.
                     const auto level = change.to == Severity::kCritical  ? spdlog::level::err
                                        : change.to == Severity::kWarning ? spdlog::level::warn
                                                                          : spdlog::level::info;
                     spdlog::log(level, "{}: {} -> {} (value {})", change.alert,
                                 SeverityName(change.from), SeverityName(change.to), change.value);
                   }),
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
                              [this] { return diagnostics_.Report(); },
                              {config_.pool_name, config_.tick_hz},
                              [this] { return publisher_.Sequence(); }}) {
  prometheus::BuildGauge()
      .Name("poolwatch_build_info")
      .Help("A metric with a constant '1' value labeled by version, revision and compiler.")
      .Register(registry_)
      .Add({{"version", kVersion}, {"revision", kRevision}, {"compiler", kCompiler}})
      .Set(1);
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());

  monitor_.Subscribe([this](const HealthSnapshot& snapshot) { publisher_.Publish(snapshot); });
  monitor_.Subscribe([this](const HealthSnapshot& snapshot) { diagnostics_.Receive(snapshot); });
  monitor_.Subscribe([](const HealthSnapshot& s) {
    spdlog::debug("frame {}: allocs={} releases={} pooled_bytes={} keys={} outstanding={}",
                  s.pool.last_frame.frame, s.health.pool_allocs, s.health.pool_releases,
                  s.health.pooled_bytes, s.health.pool_key_count, s.pool.outstanding_buffers);
  });
}

Daemon::~Daemon() { Stop(); }

void Daemon::Start() {
  spdlog::info("simulation starting: scenario {}, {} Hz, pool \"{}\"",
               ScenarioName(config_.workload.scenario), config_.tick_hz, config_.pool_name);
  started_at_ = std::chrono::steady_clock::now();
  tick_thread_ = std::jthread([this](const std::stop_token& stop) { loop_.Run(stop); });
}

void Daemon::Stop() {
  stopping_ = true;
  if (tick_thread_.joinable()) {
    tick_thread_.request_stop();
    tick_thread_.join();
    spdlog::info("simulation stopped after {} frames", loop_.state().health.frames);
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
  const HttpOptions& a = next.http;
  const HttpOptions& b = config_.http;
  if (a.listen != b.listen || a.max_request_bytes != b.max_request_bytes ||
      a.header_timeout != b.header_timeout || a.idle_timeout != b.idle_timeout ||
      a.max_connections != b.max_connections || next.tick_hz != config_.tick_hz ||
      next.log.format != config_.log.format) {
    spdlog::warn(
        "config reload: changes to http (but for web_config_file), loop.tick_hz and log.format "
        "take effect only after a restart");
  }
  SetLogLevel(next.log.level);
  if (on_reload_) on_reload_(next);
  {
    std::scoped_lock lock(pending_mutex_);
    pending_ = std::move(next);
  }
  has_pending_ = true;
  reload_successful_.Set(1);
  reload_timestamp_.Set(UnixSeconds());
  spdlog::info("config reloaded");
  return true;
}

void Daemon::RunFrame(BufferPool& pool, std::uint64_t frame) {
  if (has_pending_.load(std::memory_order_acquire)) ApplyPendingConfig();
  workload_.RunFrame(pool, frame);
}

// On the tick thread, between frames: the pool's, monitor's and workload's options change only
// where nothing is using them.
void Daemon::ApplyPendingConfig() {
  std::optional<Config> next;
  {
    std::scoped_lock lock(pending_mutex_);
    next.swap(pending_);
    has_pending_ = false;
  }
  if (!next) return;
  pool_.SetOptions(next->pool);
  monitor_.SetOptions(next->health);
  if (next->workload.scenario != workload_.options().scenario) {
    spdlog::info("scenario changed: {} -> {}", ScenarioName(workload_.options().scenario),
                 ScenarioName(next->workload.scenario));
  }
  workload_.SetOptions(next->workload);
}

Probe Daemon::Liveness() const {
  using namespace std::chrono;
  const auto now = steady_clock::now();
  // Stalled means no frame for ten ticks, and at least a second (timer noise is not a stall).
  const auto allowed = std::max<nanoseconds>(10 * config_.TickPeriod(), seconds{1});
  const auto last = loop_.LastTickTime();
  const auto reference = last.time_since_epoch().count() == 0 ? started_at_ : last;
  const auto age = now - reference;
  if (started_at_ == steady_clock::time_point{}) return {false, "not started"};
  if (age > allowed) {
    return {false, "stalled: no frame for " +
                       std::to_string(duration_cast<milliseconds>(age).count()) + " ms"};
  }
  return {true, "ok"};
}

Probe Daemon::Readiness() const {
  if (stopping_) return {false, "shutting down"};
  if (!publisher_.Latest()) return {false, "no frame published yet"};
  return {true, "ready"};
}

}  // namespace poolwatch::daemon

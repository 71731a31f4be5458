#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "poolwatch/buffer_pool.h"
#include "poolwatch/diagnostics_store.h"
#include "poolwatch/exporter/exporter.h"
#include "poolwatch/exporter/options.h"
#include "reference_workload.h"

namespace poolwatch::daemon {

// A configuration that cannot be used. what() names the key path and the reason, e.g.
// "pool.max_bytes: must be an integer from 0 to 1099511627776, got -1".
using exporter::ConfigError;
// The `http` section: the exporter's.
using exporter::HttpOptions;
using exporter::kMaxConfigBytes;
using exporter::ListenAddress;
using exporter::ParseListenAddress;
using exporter::ReadConfigFile;
using exporter::WebSecurity;

enum class LogFormat : std::uint8_t { kText, kJson };

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::kText;

  friend bool operator==(const LogOptions&, const LogOptions&) = default;
};

// One pool of a loop: `loops[].pools[]`, or the single-pool form's `pool` and `workload`.
struct PoolConfig {
  std::string name = "reference";
  PoolOptions options{.max_bytes = 512ULL << 20, .trim_idle_frames = 0, .stack_sampling = 64};
  WorkloadOptions workload;

  friend bool operator==(const PoolConfig&, const PoolConfig&) = default;
};

// One loop, on its own tick thread: `loops[]`, or the single-pool form's `loop`.
struct LoopConfig {
  std::string name = "main";
  double tick_hz = 60;
  std::uint32_t snapshot_interval_frames = 1;
  std::vector<PoolConfig> pools = {PoolConfig{}};

  std::chrono::nanoseconds TickPeriod() const {
    return std::chrono::nanoseconds{static_cast<std::int64_t>(1e9 / tick_hz)};
  }

  friend bool operator==(const LoopConfig&, const LoopConfig&) = default;
};

inline constexpr std::size_t kMaxLoops = 32;
inline constexpr std::size_t kMaxPoolsPerLoop = 64;

struct Config {
  HttpOptions http;
  LogOptions log;
  // At least one; loop names are unique, and pool names unique across all loops.
  std::vector<LoopConfig> loops = {LoopConfig{}};
  DiagnosticsOptions diagnostics;
  // diagnostics.peak_window_seconds: how long each loop keeps its peaks (HealthMonitorOptions).
  std::chrono::seconds peak_window{15};
  // http.web_config_file, loaded: null when there is none. Set by LoadConfig, not ParseConfig.
  std::shared_ptr<const WebSecurity> web;

  friend bool operator==(const Config&, const Config&) = default;
};

// Flags that override the file (and keep overriding it on every reload).
struct ConfigOverrides {
  std::optional<std::string> listen;
  std::optional<std::string> log_level;
  std::optional<std::string> scenario;
  std::optional<std::string> web_config_file;
};

// Parses and validates a JSON config; unknown keys are errors. Either the single-pool form
// (top-level `loop`, `pool`, `workload`: one loop "main" with one pool) or a `loops` array,
// never both. `origin` prefixes JSON syntax errors (a file name). Throws ConfigError.
Config ParseConfig(std::string_view text, std::string_view origin = "config");

// Reads, parses and validates the file (an empty path: the built-in defaults, which the shipped
// config/poolwatchd.json states), then applies the overrides and loads the web config file if
// one is named. Throws ConfigError.
Config LoadConfig(const std::string& path, const ConfigOverrides& overrides = {});

// What a reload from `running` to `next` cannot apply: each changed key that takes effect only
// after a restart, as "KEY OLD -> NEW" ("http.max_connections 512 -> 10", "tick_hz of loop main
// 60.0 -> 30.0"), in the config's order. Empty when a reload applies all of `next`. Loops and
// pools added, removed or moved are Daemon::Reload()'s own refusal.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next);

bool IsLogLevel(std::string_view level);

}  // namespace poolwatch::daemon

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
#include "poolwatch/reference_workload.h"

namespace poolwatch::daemon {

class WebSecurity;

// A configuration that cannot be used. what() names the key path and the reason, e.g.
// "pool.max_bytes: must be an integer from 0 to 1099511627776, got -1".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class LogFormat : std::uint8_t { kText, kJson };

struct HttpOptions {
  std::string listen = ":9720";
  std::size_t max_request_bytes = 8192;  // request line, headers and body together
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::size_t max_connections = 512;
  // The exporter-toolkit web config (TLS, basic auth); empty: plain HTTP, no auth. A relative
  // name in the config file is relative to that file.
  std::string web_config_file;

  friend bool operator==(const HttpOptions&, const HttpOptions&) = default;
};

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::kText;

  friend bool operator==(const LogOptions&, const LogOptions&) = default;
};

// One pool of a loop: `loops[].pools[]`, or the single-pool form's `pool` and `workload`.
struct PoolConfig {
  std::string name = "reference";
  PoolOptions options{.max_bytes = 512ULL << 20, .trim_idle_frames = 0};
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

// Refuses anything larger: a config is a few hundred bytes.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// Parses and validates a JSON config; unknown keys are errors. Either the single-pool form
// (top-level `loop`, `pool`, `workload`: one loop "main" with one pool) or a `loops` array,
// never both. `origin` prefixes JSON syntax errors (a file name). Throws ConfigError.
Config ParseConfig(std::string_view text, std::string_view origin = "config");

// The content of a config file of at most kMaxConfigBytes. Throws ConfigError naming the file.
std::string ReadConfigFile(const std::string& path);

// Reads, parses and validates the file (an empty path: the built-in defaults, which the shipped
// config/poolwatchd.json states), then applies the overrides and loads the web config file if
// one is named. Throws ConfigError.
Config LoadConfig(const std::string& path, const ConfigOverrides& overrides = {});

// Host and port of a listen address: "HOST:PORT", "[V6]:PORT", or ":PORT" for all interfaces.
struct ListenAddress {
  std::string host;  // empty: all interfaces
  std::uint16_t port = 0;
};
// Throws ConfigError naming `key`.
ListenAddress ParseListenAddress(std::string_view text, std::string_view key = "http.listen");

bool IsLogLevel(std::string_view level);

}  // namespace poolwatch::daemon

#include "config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "poolwatch/names.h"

namespace poolwatch::daemon {

namespace {

using nlohmann::json;

// Names what was found; containers by kind only (dumping one could recurse without bound).
std::string Describe(const json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) {
    if (value.empty()) return "an empty array";
    // Appended: "..." + std::to_string() trips g++ 12's -Wrestrict at -O3.
    std::string text = "an array of ";
    text += std::to_string(value.size());
    return text;
  }
  std::string text = value.dump();
  if (text.size() > 40) {
    text.resize(37);
    text += "...";
  }
  return text;
}

// A key given twice in one object: nlohmann keeps the last, so a config that says both would
// run on one of them unnoticed. Called by the parser at every event; throws ConfigError naming
// the key by its path ("loops[0].pools[1].name").
class DuplicateKeyCheck {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        containers_.emplace_back();
        break;
      case json::parse_event_t::array_start:
        containers_.emplace_back().array = true;
        break;
      case json::parse_event_t::key: {
        Container& object = containers_.back();
        object.key = parsed.get<std::string>();
        if (!object.keys.insert(object.key).second) throw ConfigError(Path() + ": given twice");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        containers_.pop_back();
        ElementDone();
        break;
      case json::parse_event_t::value:
        ElementDone();
        break;
    }
    return true;
  }

 private:
  struct Container {
    bool array = false;
    std::size_t index = 0;       // an array's element being read
    std::string key;             // an object's key being read
    std::set<std::string> keys;  // an object's keys so far
  };

  void ElementDone() {
    if (!containers_.empty() && containers_.back().array) ++containers_.back().index;
  }

  std::string Path() const {
    std::string path;
    for (const Container& container : containers_) {
      // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false positive) about
      // `"[" + std::to_string(...)`.
      if (container.array) {
        path.append("[").append(std::to_string(container.index)).append("]");
      } else {
        path.append(path.empty() ? "" : ".").append(container.key);
      }
    }
    return path;
  }

  std::vector<Container> containers_;
};

// Walks one JSON object, remembering which keys were read, so that Finish() can refuse the rest.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) Fail(path_.empty() ? "<root>" : path_, "must be an object", object_);
  }

  template <typename T>
  void Integer(const char* key, T& out, std::uint64_t min, std::uint64_t max) {
    const json* value = Find(key);
    if (value == nullptr) return;
    const bool integral = value->is_number_unsigned() ||
                          (value->is_number_integer() && value->get<std::int64_t>() >= 0);
    if (!integral || value->get<std::uint64_t>() < min || value->get<std::uint64_t>() > max) {
      Fail(Path(key),
           "must be an integer from " + std::to_string(min) + " to " + std::to_string(max), *value);
    }
    out = static_cast<T>(value->get<std::uint64_t>());
  }

  void Number(const char* key, double& out, double min, double max) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_number() || !(value->get<double>() >= min && value->get<double>() <= max)) {
      std::ostringstream range;
      range << "must be a number from " << min << " to " << max;
      Fail(Path(key), range.str(), *value);
    }
    out = value->get<double>();
  }

  void Seconds(const char* key, std::chrono::milliseconds& out, double min, double max) {
    double seconds = std::chrono::duration<double>(out).count();
    Number(key, seconds, min, max);
    out = std::chrono::milliseconds{std::llround(seconds * 1000)};
  }

  // A string, checked by `valid` (which says what it must be on failure).
  void String(const char* key, std::string& out,
              const std::function<bool(const std::string&)>& valid = nullptr,
              const char* expected = "a string") {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_string() || (valid && !valid(value->get<std::string>()))) {
      Fail(Path(key), std::string("must be ") + expected, *value);
    }
    out = value->get<std::string>();
  }

  // Reads the nested object at `key`, if present, with `read`.
  void Object(const char* key, const std::function<void(ObjectReader&)>& read) {
    const json* value = Find(key);
    if (value == nullptr) return;
    ObjectReader nested(*value, Path(key));
    read(nested);
    nested.Finish();
  }

  // Reads each object of the array at `key`, if present, with `read`; the array must hold 1 to
  // `max` of them. Paths name the element: "loops[1].tick_hz".
  void Array(const char* key, std::size_t max, const std::function<void(ObjectReader&)>& read) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_array() || value->empty() || value->size() > max) {
      Fail(Path(key), "must be an array of 1 to " + std::to_string(max) + " objects", *value);
    }
    for (std::size_t i = 0; i < value->size(); ++i) {
      ObjectReader element((*value)[i], Path(key) + "[" + std::to_string(i) + "]");
      read(element);
      element.Finish();
    }
  }

  bool Has(const char* key) const { return object_.contains(key); }

  void Finish() const {
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.contains(key)) Fail(Path(key), "unknown key", value);
    }
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  [[noreturn]] static void Fail(const std::string& path, const std::string& reason,
                                const json& value) {
    throw ConfigError(path + ": " + reason + ", got " + Describe(value));
  }

 private:
  const json* Find(const char* key) {
    seen_.insert(key);
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  const json& object_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();

bool HasControlCharacters(std::string_view text) {
  return std::ranges::any_of(text, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

void ReadHttp(ObjectReader& http, HttpOptions& out) {
  http.String(
      "listen", out.listen,
      [](const std::string& s) {
        try {
          ParseListenAddress(s);
          return true;
        } catch (const ConfigError&) {
          return false;
        }
      },
      "HOST:PORT, [IPV6]:PORT or :PORT");
  http.Integer("max_request_bytes", out.max_request_bytes, 512, 1 << 20);
  http.Seconds("header_timeout_seconds", out.header_timeout, 0.1, 3600);
  http.Seconds("idle_timeout_seconds", out.idle_timeout, 0.1, 3600);
  http.Integer("max_connections", out.max_connections, 1, 100000);
  http.String(
      "web_config_file", out.web_config_file,
      [](const std::string& s) { return !HasControlCharacters(s); },
      "a file name without control characters");
}

void ReadLog(ObjectReader& log, LogOptions& out) {
  log.String("level", out.level, IsLogLevel,
             "one of trace, debug, info, warn, error, critical, off");
  std::string format = out.format == LogFormat::kJson ? "json" : "text";
  log.String(
      "format", format, [](const std::string& s) { return s == "text" || s == "json"; },
      R"("text" or "json")");
  out.format = format == "json" ? LogFormat::kJson : LogFormat::kText;
}

// A pool or loop name: it becomes a label value.
void ReadName(ObjectReader& reader, std::string& out) {
  reader.String(
      "name", out, [](const std::string& s) { return !NameProblem(s); },
      "a string of 1 to 64 characters without control characters");
}

void ReadLoopTiming(ObjectReader& loop, LoopConfig& out) {
  loop.Number("tick_hz", out.tick_hz, 1, 10000);
  loop.Integer("snapshot_interval_frames", out.snapshot_interval_frames, 1, 100000);
}

void ReadPoolOptions(ObjectReader& pool, PoolOptions& out) {
  pool.Integer("max_bytes", out.max_bytes, 0, 1ULL << 40);
  pool.Integer("trim_idle_frames", out.trim_idle_frames, 0, kU32Max);
  pool.Integer("stack_sampling", out.stack_sampling, 0, 1U << 20);
}

void ReadWorkload(ObjectReader& workload, WorkloadOptions& w) {
  std::string scenario(ScenarioName(w.scenario));
  workload.String(
      "scenario", scenario, [](const std::string& s) { return ParseScenario(s).has_value(); },
      "one of steady, leak, bloat, spike");
  w.scenario = *ParseScenario(scenario);
  workload.Integer("particles", w.particles, 1, 1 << 22);
  workload.Integer("leak_buffers_per_frame", w.leak_buffers_per_frame, 0, 10000);
  workload.Integer("leak_buffer_elements", w.leak_buffer_elements, 1, 1 << 24);
  workload.String(
      "leak_site", w.leak_site,
      [](const std::string& s) {
        return s.size() <= 128 &&
               std::ranges::none_of(s, [](char c) { return c >= 0 && c < 0x20; });
      },
      "a string of at most 128 characters without control characters (\"\": untagged)");
  workload.Integer("bloat_every_frames", w.bloat_every_frames, 1, kU32Max);
  workload.Integer("spike_every_frames", w.spike_every_frames, 1, kU32Max);
  workload.Integer("spike_factor", w.spike_factor, 1, 1000);
}

[[noreturn]] void FailDuplicate(const std::string& path, const std::string& name, const char* what,
                                const std::string& other_path, const char* note = "") {
  std::string message = path;
  message.append(".name: \"").append(name).append("\" names two ").append(what);
  message.append(" (also ").append(other_path).append(")").append(note);
  throw ConfigError(message);
}

// Loop names are unique, and pool names unique across all loops: each is one series' label.
void CheckUniqueNames(const std::vector<LoopConfig>& loops) {
  std::map<std::string, std::string> loop_paths;
  std::map<std::string, std::string> pool_paths;
  for (std::size_t l = 0; l < loops.size(); ++l) {
    const std::string loop_path = "loops[" + std::to_string(l) + "]";
    const auto [loop_it, new_loop] = loop_paths.try_emplace(loops[l].name, loop_path);
    if (!new_loop) FailDuplicate(loop_path, loops[l].name, "loops", loop_it->second);
    for (std::size_t p = 0; p < loops[l].pools.size(); ++p) {
      const std::string pool_path = loop_path + ".pools[" + std::to_string(p) + "]";
      const std::string& name = loops[l].pools[p].name;
      const auto [pool_it, new_pool] = pool_paths.try_emplace(name, pool_path);
      if (!new_pool) {
        FailDuplicate(pool_path, name, "pools", pool_it->second,
                      "; pool names are unique across all loops");
      }
    }
  }
}

}  // namespace

bool IsLogLevel(std::string_view level) {
  for (std::string_view known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == known) return true;
  }
  return false;
}

Config ParseConfig(std::string_view text, std::string_view origin) {
  if (text.size() > kMaxConfigBytes) {
    throw ConfigError(std::string(origin) + ": larger than " + std::to_string(kMaxConfigBytes) +
                      " bytes");
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw ConfigError(std::string(origin) + ": empty, expected a JSON object");
  }
  json root;
  try {
    root = json::parse(text, DuplicateKeyCheck());
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number literal beyond a double (found by fuzzing).
    throw ConfigError(std::string(origin) + ": not valid JSON: " + e.what());
  }

  Config config;
  ObjectReader reader(root, "");
  reader.Object("http", [&](ObjectReader& http) { ReadHttp(http, config.http); });
  reader.Object("log", [&](ObjectReader& log) { ReadLog(log, config.log); });

  if (reader.Has("loops")) {
    std::string single_form;  // the single-pool form's keys given beside loops
    for (const char* key : {"loop", "pool", "workload"}) {
      if (reader.Has(key)) single_form.append(single_form.empty() ? "" : ", ").append(key);
    }
    if (!single_form.empty()) {
      throw ConfigError("loops: cannot be combined with " + single_form +
                        " (the single-pool form); give each loop's settings inside loops[]");
    }
    config.loops.clear();
    reader.Array("loops", kMaxLoops, [&](ObjectReader& loop_reader) {
      LoopConfig& loop = config.loops.emplace_back();
      loop.pools.clear();
      ReadName(loop_reader, loop.name);
      ReadLoopTiming(loop_reader, loop);
      loop_reader.Array("pools", kMaxPoolsPerLoop, [&](ObjectReader& pool_reader) {
        PoolConfig& pool = loop.pools.emplace_back();
        ReadName(pool_reader, pool.name);
        ReadPoolOptions(pool_reader, pool.options);
        pool_reader.Object("workload", [&](ObjectReader& w) { ReadWorkload(w, pool.workload); });
      });
      if (loop.pools.empty()) loop.pools.emplace_back();
    });
    CheckUniqueNames(config.loops);
  } else {
    // The single-pool form: one loop "main" with one pool.
    LoopConfig& loop = config.loops.front();
    PoolConfig& pool = loop.pools.front();
    reader.Object("loop", [&](ObjectReader& r) { ReadLoopTiming(r, loop); });
    reader.Object("pool", [&](ObjectReader& r) {
      ReadName(r, pool.name);
      ReadPoolOptions(r, pool.options);
    });
    reader.Object("workload", [&](ObjectReader& r) { ReadWorkload(r, pool.workload); });
  }
  reader.Object("diagnostics", [&](ObjectReader& diagnostics) {
    diagnostics.Integer("history_points", config.diagnostics.history_points, 2, 100000);
    diagnostics.Seconds("sample_interval_seconds", config.diagnostics.sample_interval, 0.01, 3600);
    auto peak_window = static_cast<std::uint32_t>(config.peak_window.count());
    diagnostics.Integer("peak_window_seconds", peak_window, 1, 3600);
    config.peak_window = std::chrono::seconds{peak_window};
  });
  reader.Finish();
  return config;
}

Config LoadConfig(const std::string& path, const ConfigOverrides& overrides) {
  Config config;
  if (!path.empty()) config = ParseConfig(ReadConfigFile(path), path);

  if (overrides.listen) {
    ParseListenAddress(*overrides.listen, "--listen");
    config.http.listen = *overrides.listen;
  }
  if (overrides.log_level) config.log.level = *overrides.log_level;
  if (overrides.scenario) {
    for (LoopConfig& loop : config.loops) {
      for (PoolConfig& pool : loop.pools)
        pool.workload.scenario = *ParseScenario(*overrides.scenario);
    }
  }
  const char* web_key = "http.web_config_file";
  if (overrides.web_config_file) {
    web_key = "--web.config.file";
    if (HasControlCharacters(*overrides.web_config_file)) {
      throw ConfigError("--web.config.file: must be a file name without control characters");
    }
    config.http.web_config_file = *overrides.web_config_file;
  } else if (!config.http.web_config_file.empty()) {
    // Relative to the config file, as the web config's own file names are to it.
    const std::filesystem::path file(config.http.web_config_file);
    if (file.is_relative()) {
      config.http.web_config_file = (std::filesystem::path(path).parent_path() / file).string();
    }
  }
  if (!config.http.web_config_file.empty()) {
    try {
      config.web = exporter::LoadWebSecurity(config.http.web_config_file);
    } catch (const ConfigError& e) {
      throw ConfigError(std::string(web_key) + ": " + e.what());
    }
  }
  return config;
}

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next) {
  std::vector<std::string> changes;
  // JSON values, as the config file writes them: strings quoted, numbers bare.
  const auto compare = [&](std::string key, const json& was, const json& now) {
    if (was == now) return;
    key.append(" ").append(was.dump()).append(" -> ").append(now.dump());
    changes.push_back(std::move(key));
  };
  const auto seconds = [](std::chrono::milliseconds duration) {
    return std::chrono::duration<double>(duration).count();
  };
  const auto format = [](LogFormat f) { return f == LogFormat::kJson ? "json" : "text"; };
  compare("http.listen", running.http.listen, next.http.listen);
  compare("http.max_request_bytes", running.http.max_request_bytes, next.http.max_request_bytes);
  compare("http.header_timeout_seconds", seconds(running.http.header_timeout),
          seconds(next.http.header_timeout));
  compare("http.idle_timeout_seconds", seconds(running.http.idle_timeout),
          seconds(next.http.idle_timeout));
  compare("http.max_connections", running.http.max_connections, next.http.max_connections);
  compare("log.format", format(running.log.format), format(next.log.format));
  for (const LoopConfig& loop : running.loops) {
    const auto it = std::ranges::find(next.loops, loop.name, &LoopConfig::name);
    if (it != next.loops.end()) compare("tick_hz of loop " + loop.name, loop.tick_hz, it->tick_hz);
  }
  compare("diagnostics.history_points", running.diagnostics.history_points,
          next.diagnostics.history_points);
  compare("diagnostics.sample_interval_seconds", seconds(running.diagnostics.sample_interval),
          seconds(next.diagnostics.sample_interval));
  compare("diagnostics.peak_window_seconds", running.peak_window.count(), next.peak_window.count());
  return changes;
}

}  // namespace poolwatch::daemon

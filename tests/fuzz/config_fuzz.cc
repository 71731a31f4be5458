// libFuzzer target: any bytes as a poolwatchd config. ParseConfig must either return a config
// or throw ConfigError; anything else (another exception, a crash, a sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    poolwatch::daemon::ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                   "fuzz");
  } catch (const poolwatch::daemon::ConfigError&) {
  }
  return 0;
}

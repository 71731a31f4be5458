// libFuzzer target: any bytes as an exporter-toolkit web config. ParseWebConfig must either
// return a config or throw ConfigError; anything else (another exception, a crash, a sanitizer
// report, unbounded recursion) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    poolwatch::exporter::ParseWebConfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                        "fuzz", "/nonexistent");
  } catch (const poolwatch::exporter::ConfigError&) {
  }
  return 0;
}

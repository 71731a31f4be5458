// libFuzzer target: any bytes as an exporter-toolkit web config. ParseWebConfig must either
// return a config or throw ConfigError, and so must loading one that names no file (its inline
// PEM goes to OpenSSL; a named file could be anything on this machine, /dev/zero included);
// anything else (another exception, a crash, a sanitizer report such as a leak, unbounded
// recursion, a wait for a key's password) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    poolwatch::exporter::WebConfig config = poolwatch::exporter::ParseWebConfig(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", "/nonexistent");
    if (poolwatch::exporter::TlsFiles(config).empty()) {
      const poolwatch::exporter::WebSecurity loaded(std::move(config));
    }
  } catch (const poolwatch::exporter::ConfigError&) {
  }
  return 0;
}

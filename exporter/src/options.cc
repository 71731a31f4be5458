#include "poolwatch/exporter/options.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace poolwatch::exporter {

ListenAddress ParseListenAddress(std::string_view text, std::string_view key) {
  const auto fail = [&] {
    throw ConfigError(std::string(key) + ": must be HOST:PORT, [IPV6]:PORT or :PORT, got \"" +
                      std::string(text) + "\"");
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) fail();
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    fail();  // a bare IPv6 literal is ambiguous
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535) {
    fail();
  }
  return {std::string(host), static_cast<std::uint16_t>(port)};
}

std::string ReadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    throw ConfigError(path + ": not a regular file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ConfigError(path + ": cannot be opened for reading");
  std::string text;
  // Read at most one byte past the limit: a huge or endless file is refused, not slurped.
  text.resize(kMaxConfigBytes + 1);
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) throw ConfigError(path + ": read error");
  text.resize(static_cast<std::size_t>(file.gcount()));
  return text;
}

}  // namespace poolwatch::exporter

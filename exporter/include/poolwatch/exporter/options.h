#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace poolwatch::exporter {

// A setting that cannot be used. what() names the key path and the reason, e.g.
// "http.listen: must be HOST:PORT, [IPV6]:PORT or :PORT, got \"9720\"".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the exporter listens and what it allows its clients.
struct HttpOptions {
  std::string listen = ":9720";  // HOST:PORT, [IPV6]:PORT or :PORT (all interfaces); port 0: any
  std::size_t max_request_bytes = 8192;              // request line, headers and body together
  std::chrono::milliseconds header_timeout{10'000};  // to receive a connection's first request
  std::chrono::milliseconds idle_timeout{60'000};    // to receive a kept-alive connection's next
  std::size_t max_connections = 512;                 // over it: 503, then close
  // The exporter-toolkit web config (TLS, basic auth); empty: plain HTTP, no auth.
  std::string web_config_file{};

  friend bool operator==(const HttpOptions&, const HttpOptions&) = default;
};

// Host and port of a listen address.
struct ListenAddress {
  std::string host;  // empty: all interfaces
  std::uint16_t port = 0;
};

// Parses "HOST:PORT", "[V6]:PORT" or ":PORT". Throws ConfigError naming `key`.
ListenAddress ParseListenAddress(std::string_view text, std::string_view key = "http.listen");

// Refuses anything larger: a config file is a few hundred bytes.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// The content of a config file of at most kMaxConfigBytes. Throws ConfigError naming the file.
std::string ReadConfigFile(const std::string& path);

}  // namespace poolwatch::exporter

#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolwatch::testing {

struct HttpResult {
  unsigned status = 0;                         // 0 when no response came
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string error;  // why there is no response
};

// One HTTP/1.1 request to 127.0.0.1:port over a fresh connection (Boost.Beast).
HttpResult HttpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds{5});

inline HttpResult HttpGet(std::uint16_t port, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return HttpRequest(port, "GET", target, headers);
}

// Sends raw bytes and returns whatever arrives until the peer closes or `timeout` passes.
std::string RawExchange(std::uint16_t port, std::string_view bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds{5});

}  // namespace poolwatch::testing

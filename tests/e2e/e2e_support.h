// What the end-to-end tests share: the shipped rule and Alertmanager files with their timers
// shortened, and queries to the real Prometheus and Alertmanager.
#pragma once

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "daemon_process.h"
#include "http_client.h"

namespace poolwatch::testing {

inline std::string ReadSource(const std::string& relative) {
  return ReadFile(std::filesystem::path(POOLWATCH_SOURCE_DIR) / relative);
}

inline std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The shipped rules as generated, with every `for:` shortened so a test takes seconds.
inline std::string ShortenedRules() {
  return std::regex_replace(ReadSource("config/prometheus/poolwatch.rules.yml"),
                            std::regex(R"(\n        for: \w+\n)"), "\n        for: 2s\n");
}

// The shipped Alertmanager routing and inhibition, with short timers and the webhook URLs
// pointed at a receiver on `webhook_port`.
inline std::string ShortenedAlertmanagerConfig(std::uint16_t webhook_port) {
  std::string config = ReadSource("config/alertmanager/alertmanager.yml");
  config = std::regex_replace(config, std::regex("group_wait: \\w+"), "group_wait: 1s");
  config = std::regex_replace(config, std::regex("group_interval: \\w+"), "group_interval: 1s");
  return std::regex_replace(config, std::regex(R"(http://127\.0\.0\.1:5001)"),
                            "http://127.0.0.1:" + std::to_string(webhook_port));
}

// A PromQL instant query to the Prometheus on `port`; {} if it did not answer.
inline nlohmann::json PrometheusQuery(std::uint16_t port, const std::string& promql) {
  const HttpResult result = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  return nlohmann::json::parse(result.body.empty() ? "{}" : result.body);
}

// Alertmanager's alerts (API v2) for an alert name and instance.
inline nlohmann::json AlertmanagerAlerts(std::uint16_t port, const std::string& alertname,
                                         const std::string& instance) {
  const HttpResult result =
      HttpGet(port, "/api/v2/alerts?filter=" + UrlEncode("alertname=\"" + alertname + "\"") +
                        "&filter=" + UrlEncode("instance=\"" + instance + "\""));
  if (result.status != 200) return nlohmann::json::array();
  return nlohmann::json::parse(result.body);
}

}  // namespace poolwatch::testing

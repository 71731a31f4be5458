#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace poolwatch::exporter {

// "2026-11-22T14:10:02Z", or with milliseconds "2026-11-22T14:10:02.123Z" (UTC).
inline std::string Rfc3339Utc(std::chrono::system_clock::time_point time, bool millis = false) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  if (millis) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch() %
                                                                          std::chrono::seconds{1})
                        .count();
    std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), text, static_cast<int>(ms));
  } else {
    std::snprintf(out, sizeof out, "%.*sZ", static_cast<int>(n), text);
  }
  return out;
}

}  // namespace poolwatch::exporter

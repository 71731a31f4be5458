// Fuzzes the /metrics format negotiation and the OpenMetrics encoder together. The input is an
// Accept header, then after the first newline the site text of a held buffer, which becomes an
// exemplar label. Checks, beyond "no crash": the format chosen is the one its content type
// names; OpenMetrics is chosen only when the header mentions it; the exposition ends with its
// only "# EOF" line whatever the site holds (escaping); the exemplar's labels stay within
// OpenMetrics' 128 characters and never split a UTF-8 sequence.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats.h"
#include "poolwatch/buffer_pool.h"
#include "poolwatch/health_monitor.h"
#include "poolwatch/metrics_publisher.h"

using poolwatch::exporter::MetricsFormat;

namespace {

std::size_t Utf8Characters(std::string_view text) {
  return static_cast<std::size_t>(std::ranges::count_if(
      text, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool MentionsOpenMetrics(std::string accept) {
  std::ranges::transform(accept, accept.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return accept.find("openmetrics") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string accept(input.substr(0, newline));
  const std::string site(newline == std::string_view::npos ? "" : input.substr(newline + 1));

  const auto negotiated = poolwatch::exporter::NegotiateFormat(accept);
  const bool text = negotiated.content_type.starts_with("text/plain; version=0.0.4");
  if (text != (negotiated.format == MetricsFormat::kText)) __builtin_trap();
  if (negotiated.format == MetricsFormat::kOpenMetrics && !MentionsOpenMetrics(accept)) {
    __builtin_trap();
  }

  poolwatch::BufferPool pool;
  poolwatch::HealthMonitor monitor({.loop = "fuzz"});
  monitor.AddPool("fuzz", pool);
  poolwatch::MetricsPublisher publisher;
  publisher.Attach(monitor);
  pool.Acquire(poolwatch::BufferFormat::kF32, 4, site.c_str());
  monitor.EndFrame({});
  const poolwatch::Exposition exposition = publisher.CollectExposition();

  std::size_t characters = 0;
  for (const auto& extra : exposition.extras) {
    if (!extra.exemplar) continue;
    for (const auto& label : extra.exemplar->labels) {
      characters += Utf8Characters(label.name) + Utf8Characters(label.value);
      if (!site.starts_with(label.value) && label.name == "site") __builtin_trap();
    }
  }
  if (characters > 128) __builtin_trap();

  const std::string body = negotiated.format == MetricsFormat::kOpenMetrics
                               ? poolwatch::exporter::SerializeOpenMetrics(exposition)
                               : poolwatch::exporter::SerializeText(exposition);
  // A site may hold "\n# EOF": escaped, it never makes a line of its own.
  if (negotiated.format == MetricsFormat::kOpenMetrics &&
      body.find("\n# EOF\n") != body.size() - std::string_view("\n# EOF\n").size()) {
    __builtin_trap();
  }
  return 0;
}

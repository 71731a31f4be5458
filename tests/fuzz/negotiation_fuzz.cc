// Fuzzes the /metrics format negotiation and the encoders together. The input is an Accept
// header, then after the first newline the site text of a held buffer, which becomes an
// exemplar label (and a site series). Checks, beyond "no crash": the format chosen is the one its
// content type names; OpenMetrics or protobuf is chosen only when the header names it; the
// OpenMetrics exposition ends with its only "# EOF" line whatever the site holds (escaping); the
// protobuf one decodes to every family and the site; the exemplar's labels stay within OpenMetrics'
// 128 characters and never split a UTF-8 sequence.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

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
#include "proto/metrics.pb.h"

using poolwatch::exporter::MetricsFormat;

namespace {

std::size_t Utf8Characters(std::string_view text) {
  return static_cast<std::size_t>(std::ranges::count_if(
      text, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool Mentions(std::string accept, std::string_view what) {
  std::ranges::transform(accept, accept.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return accept.find(what) != std::string::npos;
}

// Whether `label` can be the label of `site`: a prefix of it, or, where the site is not valid
// UTF-8, its repair (with U+FFFD).
bool SiteOf(std::string_view site, std::string_view label) {
  return site.starts_with(label) || label.find("\xEF\xBF\xBD") != std::string_view::npos;
}

// Every delimited MetricFamily of `body`, or -1 if it does not decode whole.
int DecodedFamilies(const std::string& body, std::string& first_site) {
  google::protobuf::io::ArrayInputStream raw(body.data(), static_cast<int>(body.size()));
  google::protobuf::io::CodedInputStream in(&raw);
  int families = 0;
  std::uint32_t size = 0;
  while (in.ReadVarint32(&size)) {
    const auto limit = in.PushLimit(static_cast<int>(size));
    io::prometheus::client::MetricFamily family;
    if (!family.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) return -1;
    in.PopLimit(limit);
    for (const auto& metric : family.metric()) {
      if (metric.counter().has_exemplar() && first_site.empty()) {
        first_site = metric.counter().exemplar().label(0).value();
      }
    }
    ++families;
  }
  return in.CurrentPosition() == static_cast<int>(body.size()) ? families : -1;
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
  if (negotiated.format == MetricsFormat::kOpenMetrics && !Mentions(accept, "openmetrics")) {
    __builtin_trap();
  }
  if (negotiated.format == MetricsFormat::kProtobuf && !Mentions(accept, "vnd.google.protobuf")) {
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
      if (label.name == "site" && !SiteOf(site, label.value)) __builtin_trap();
    }
  }
  if (characters > 128) __builtin_trap();

  if (negotiated.format == MetricsFormat::kProtobuf) {
    std::string decoded_site;
    const std::string body = poolwatch::exporter::SerializeProtobuf(exposition);
    if (DecodedFamilies(body, decoded_site) != static_cast<int>(exposition.families.size()) ||
        !SiteOf(site, decoded_site)) {
      __builtin_trap();
    }
    return 0;
  }
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

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "poolwatch/metrics_publisher.h"

namespace poolwatch::exporter {

// The exposition formats /metrics speaks, chosen from the request's Accept header.
enum class MetricsFormat : std::uint8_t {
  kText,         // Prometheus text 0.0.4: the default, for clients that ask for nothing else
  kOpenMetrics,  // OpenMetrics text 1.0.0 (also served for 0.0.1): # EOF, units, exemplars
  kProtobuf,     // delimited io.prometheus.client.MetricFamily messages: native histograms
};
inline constexpr std::size_t kFormats = 3;

struct Negotiated {
  MetricsFormat format = MetricsFormat::kText;
  std::string_view content_type;
};

// The format for an Accept header value, as Prometheus's Go client (expfmt) negotiates it: the
// media ranges in order of preference (q, then specificity, then the order given), the first
// one poolwatch speaks wins; text 0.0.4 when none does. A range with q=0 is refused, not
// chosen. Never throws, whatever the input.
Negotiated NegotiateFormat(std::string_view accept);

// True if an Accept-Encoding header value accepts gzip (by name or "*", with q > 0).
bool AcceptsGzip(std::string_view accept_encoding);

// OpenMetrics 1.0.0 text of a collection, ending in "# EOF". Counter families are named without
// their _total suffix (the sample keeps it), _seconds and _bytes families get a UNIT line, and
// the exposition's exemplars follow their series' value. Label values and `le` bounds are
// written exactly as the text format writes them, so that a Prometheus switching between the
// two formats keeps the same series.
std::string SerializeOpenMetrics(const Exposition& exposition);

// Prometheus text 0.0.4 of the collection's families (the extras do not exist in it).
std::string SerializeText(const Exposition& exposition);

// The protobuf format (delimited MetricFamily messages, exporter/proto/metrics.proto): every
// family, each exemplar on its counter, and each native histogram next to its classic buckets.
std::string SerializeProtobuf(const Exposition& exposition);

}  // namespace poolwatch::exporter

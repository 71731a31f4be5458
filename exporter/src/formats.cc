#include "formats.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace poolwatch::exporter {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::string_view kTextType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kOpenMetrics100 =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
constexpr std::string_view kOpenMetrics001 =
    "application/openmetrics-text; version=0.0.1; charset=utf-8";
constexpr std::string_view kProtobufType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
    "encoding=delimited";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// Splits `text` at the first `separator`: returns the part before, leaves the rest in `text`.
std::string_view Next(std::string_view& text, char separator) {
  const std::size_t at = text.find(separator);
  const std::string_view head = text.substr(0, at);
  text = at == std::string_view::npos ? std::string_view{} : text.substr(at + 1);
  return head;
}

// An RFC 9110 qvalue: 0 to 1, at most three decimals.
bool ParseQuality(std::string_view text, double& q) {
  if (text.empty() || text.size() > 5) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), q);
  return ec == std::errc{} && end == text.data() + text.size() && q >= 0 && q <= 1;
}

// One element of a negotiation header (Accept, Accept-Encoding): "value; name=v; q=0.5". A q
// that is not a qvalue counts as 0: the element is refused, never taken on a guess.
struct Element {
  std::string_view value;
  double q = 1;
  std::vector<std::pair<std::string_view, std::string_view>> params;  // without q

  std::string_view Param(std::string_view name) const {
    for (const auto& [key, v] : params) {
      if (EqualsNoCase(key, name)) return v;
    }
    return {};
  }
};

std::vector<Element> ParseElements(std::string_view header) {
  std::vector<Element> elements;
  while (!header.empty()) {
    std::string_view text = Next(header, ',');
    Element element;
    element.value = Trim(Next(text, ';'));
    if (element.value.empty()) continue;
    while (!text.empty()) {
      std::string_view param = Next(text, ';');
      const std::string_view name = Trim(Next(param, '='));
      std::string_view value = Trim(param);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (EqualsNoCase(name, "q")) {
        if (!ParseQuality(value, element.q)) element.q = 0;
      } else if (!name.empty()) {
        element.params.emplace_back(name, value);
      }
    }
    elements.push_back(element);
  }
  return elements;
}

// One media range of an Accept header: "type/subtype" and its element's q and parameters.
struct MediaRange {
  std::string_view type;
  std::string_view subtype;
  Element element;
};

// The acceptable ranges (q > 0), preferred first: higher q, then a concrete type over "*",
// then more parameters; ties keep the header's order.
std::vector<MediaRange> ParseAccept(std::string_view accept) {
  std::vector<MediaRange> ranges;
  for (const Element& element : ParseElements(accept)) {
    std::string_view media = element.value;
    MediaRange range{Trim(Next(media, '/')), Trim(media), element};
    if (!range.type.empty() && !range.subtype.empty() && element.q > 0) ranges.push_back(range);
  }
  std::ranges::stable_sort(ranges, [](const MediaRange& a, const MediaRange& b) {
    if (a.element.q != b.element.q) return a.element.q > b.element.q;
    if ((a.type == "*") != (b.type == "*")) return b.type == "*";
    if ((a.subtype == "*") != (b.subtype == "*")) return b.subtype == "*";
    return a.element.params.size() > b.element.params.size();
  });
  return ranges;
}

// Numbers as prometheus-cpp's text serializer writes them (an ostream at 16 significant
// digits), so that `le` and every value read the same in both formats.
void AppendNumber(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
  } else {
    char text[32];
    const int n = std::snprintf(text, sizeof text, "%.*g",
                                std::numeric_limits<double>::max_digits10 - 1, value);
    out.append(text, static_cast<std::size_t>(n));
  }
}

void AppendEscaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

using Labels = std::vector<ClientMetric::Label>;

void AppendLabels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  const auto append = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    AppendEscaped(out, value);
    out += '"';
  };
  for (const auto& label : labels) append(label.name, label.value);
  if (!extra_name.empty()) append(extra_name, extra_value);
  out += '}';
}

void AppendExemplar(std::string& out, const Exemplar& exemplar) {
  out += " # ";
  if (exemplar.labels.empty()) {
    out += "{}";
  } else {
    AppendLabels(out, exemplar.labels);
  }
  out += ' ';
  AppendNumber(out, exemplar.value);
  out += ' ';
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, exemplar.timestamp_seconds,
                                       std::chars_format::fixed, 3);
  if (ec == std::errc{}) out.append(text, end);
}

// One sample line: name{labels} value [# exemplar].
void AppendSample(std::string& out, std::string_view name, const Labels& labels, double value,
                  const Exemplar* exemplar = nullptr, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  out += name;
  AppendLabels(out, labels, extra_name, extra_value);
  out += ' ';
  AppendNumber(out, value);
  if (exemplar != nullptr) AppendExemplar(out, *exemplar);
  out += '\n';
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Untyped:
      break;
  }
  return "unknown";
}

// The unit a family's name ends in, if it is one of the base units poolwatch uses.
std::string_view UnitOf(std::string_view family, MetricType type) {
  if (type == MetricType::Untyped) return {};
  for (std::string_view unit : {"seconds", "bytes"}) {
    if (family.size() > unit.size() && family.ends_with(unit) &&
        family[family.size() - unit.size() - 1] == '_') {
      return unit;
    }
  }
  return {};
}

void AppendFamily(std::string& out, const MetricFamily& family,
                  const std::vector<const Exemplar*>& exemplars) {
  // OpenMetrics names a counter family without _total; its sample carries the suffix.
  std::string name = family.name;
  std::string sample = family.name;
  if (family.type == MetricType::Counter) {
    if (name.ends_with("_total")) {
      name.resize(name.size() - std::size("_total") + 1);
    } else {
      sample += "_total";
    }
  }
  out += "# TYPE " + name + " ";
  out += TypeName(family.type);
  out += '\n';
  if (const std::string_view unit = UnitOf(name, family.type); !unit.empty()) {
    out += "# UNIT " + name + " ";
    out += unit;
    out += '\n';
  }
  if (!family.help.empty()) {
    out += "# HELP " + name + " ";
    AppendEscaped(out, family.help);
    out += '\n';
  }
  for (std::size_t i = 0; i < family.metric.size(); ++i) {
    const ClientMetric& metric = family.metric[i];
    const Exemplar* exemplar = i < exemplars.size() ? exemplars[i] : nullptr;
    switch (family.type) {
      case MetricType::Counter:
        AppendSample(out, sample, metric.label, metric.counter.value, exemplar);
        break;
      case MetricType::Gauge:
        AppendSample(out, sample, metric.label, metric.gauge.value);
        break;
      case MetricType::Untyped:
        AppendSample(out, sample, metric.label, metric.untyped.value);
        break;
      case MetricType::Summary: {
        std::string quantile;
        for (const auto& q : metric.summary.quantile) {
          quantile.clear();
          AppendNumber(quantile, q.quantile);
          AppendSample(out, name, metric.label, q.value, nullptr, "quantile", quantile);
        }
        AppendSample(out, name + "_sum", metric.label, metric.summary.sample_sum);
        AppendSample(out, name + "_count", metric.label,
                     static_cast<double>(metric.summary.sample_count));
        break;
      }
      case MetricType::Histogram: {
        std::string le;
        for (const auto& bucket : metric.histogram.bucket) {
          le.clear();
          // The last bucket is +Inf whatever its bound, as the text serializer writes it.
          AppendNumber(le, &bucket == &metric.histogram.bucket.back()
                               ? std::numeric_limits<double>::infinity()
                               : bucket.upper_bound);
          AppendSample(out, name + "_bucket", metric.label,
                       static_cast<double>(bucket.cumulative_count), nullptr, "le", le);
        }
        AppendSample(out, name + "_count", metric.label,
                     static_cast<double>(metric.histogram.sample_count));
        AppendSample(out, name + "_sum", metric.label, metric.histogram.sample_sum);
        break;
      }
    }
  }
}

}  // namespace

Negotiated NegotiateFormat(std::string_view accept) {
  for (const MediaRange& range : ParseAccept(accept)) {
    const std::string_view version = range.element.Param("version");
    if (EqualsNoCase(range.type, "application") &&
        EqualsNoCase(range.subtype, "vnd.google.protobuf") &&
        range.element.Param("proto") == "io.prometheus.client.MetricFamily" &&
        range.element.Param("encoding") == "delimited") {
      return {MetricsFormat::kProtobuf, kProtobufType};
    }
    if (EqualsNoCase(range.type, "text") && EqualsNoCase(range.subtype, "plain") &&
        (version.empty() || version == "0.0.4")) {
      return {MetricsFormat::kText, kTextType};
    }
    if (EqualsNoCase(range.type, "application") &&
        EqualsNoCase(range.subtype, "openmetrics-text")) {
      if (version.empty() || version == "1.0.0") {
        return {MetricsFormat::kOpenMetrics, kOpenMetrics100};
      }
      if (version == "0.0.1") return {MetricsFormat::kOpenMetrics, kOpenMetrics001};
    }
  }
  return {MetricsFormat::kText, kTextType};
}

bool AcceptsGzip(std::string_view accept_encoding) {
  // An explicit gzip entry decides; otherwise "*" does (RFC 9110, section 12.5.3).
  double gzip_q = -1;
  double any_q = -1;
  for (const Element& element : ParseElements(accept_encoding)) {
    if (EqualsNoCase(element.value, "gzip") || EqualsNoCase(element.value, "x-gzip")) {
      gzip_q = std::max(gzip_q, element.q);
    } else if (element.value == "*") {
      any_q = std::max(any_q, element.q);
    }
  }
  return gzip_q >= 0 ? gzip_q > 0 : any_q > 0;
}

std::string SerializeOpenMetrics(const Exposition& exposition) {
  std::string out;
  std::vector<const Exemplar*> exemplars;
  for (std::size_t f = 0; f < exposition.families.size(); ++f) {
    const MetricFamily& family = exposition.families[f];
    exemplars.assign(family.metric.size(), nullptr);
    for (const SeriesExtras& extra : exposition.extras) {
      if (extra.family == f && extra.metric < exemplars.size() && extra.exemplar) {
        exemplars[extra.metric] = &*extra.exemplar;
      }
    }
    AppendFamily(out, family, exemplars);
  }
  out += "# EOF\n";
  return out;
}

std::string SerializeText(const Exposition& exposition) {
  return prometheus::TextSerializer().Serialize(exposition.families);
}

}  // namespace poolwatch::exporter

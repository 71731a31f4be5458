#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace poolwatch::detail {

// A family of one counter or gauge sample: what every poolwatch and process_* family but the
// histograms is. Private to the library.
inline prometheus::MetricFamily SingleValueFamily(
    std::string name, std::string help, prometheus::MetricType type, double value,
    std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {std::move(name), std::move(help), type, {std::move(metric)}};
}

}  // namespace poolwatch::detail

// The protobuf exposition format, alone in this file so that protobuf's headers are compiled
// once.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cmath>

#include "formats.h"
#include "proto/metrics.pb.h"

namespace poolwatch::exporter {

namespace {

namespace pb = io::prometheus::client;
using prometheus::ClientMetric;
using prometheus::MetricType;

pb::MetricType TypeOf(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return pb::COUNTER;
    case MetricType::Gauge:
      return pb::GAUGE;
    case MetricType::Summary:
      return pb::SUMMARY;
    case MetricType::Histogram:
      return pb::HISTOGRAM;
    case MetricType::Untyped:
      break;
  }
  return pb::UNTYPED;
}

void SetExemplar(pb::Exemplar& out, const Exemplar& exemplar) {
  for (const auto& [name, value] : exemplar.labels) {
    pb::LabelPair& label = *out.add_label();
    label.set_name(name);
    label.set_value(value);
  }
  out.set_value(exemplar.value);
  // Whole nanoseconds, split as google.protobuf.Timestamp wants them (nanos in [0, 1e9)).
  const auto nanoseconds = std::llround(exemplar.timestamp_seconds * 1e9);
  out.mutable_timestamp()->set_seconds(nanoseconds / 1'000'000'000);
  out.mutable_timestamp()->set_nanos(static_cast<std::int32_t>(nanoseconds % 1'000'000'000));
}

// The native buckets as one span over the range observed: empty buckets inside it are written
// as deltas of their neighbours, which costs a byte each and keeps the encoding obvious.
void SetNative(pb::Histogram& out, const NativeBuckets& native) {
  out.set_schema(NativeBuckets::kSchema);
  out.set_zero_threshold(NativeBuckets::kZeroThreshold);
  out.set_zero_count(native.zero_count);
  pb::BucketSpan& span = *out.add_positive_span();
  span.set_offset(native.counts.empty() ? 0 : native.offset);
  span.set_length(static_cast<std::uint32_t>(native.counts.size()));
  std::int64_t previous = 0;
  for (std::uint64_t count : native.counts) {
    const auto current = static_cast<std::int64_t>(count);
    out.add_positive_delta(current - previous);
    previous = current;
  }
}

void SetMetric(pb::Metric& out, MetricType type, const ClientMetric& metric,
               const SeriesExtras* extras) {
  for (const auto& [name, value] : metric.label) {
    pb::LabelPair& label = *out.add_label();
    label.set_name(name);
    label.set_value(value);
  }
  switch (type) {
    case MetricType::Counter:
      out.mutable_counter()->set_value(metric.counter.value);
      if (extras != nullptr && extras->exemplar) {
        SetExemplar(*out.mutable_counter()->mutable_exemplar(), *extras->exemplar);
      }
      break;
    case MetricType::Gauge:
      out.mutable_gauge()->set_value(metric.gauge.value);
      break;
    case MetricType::Untyped:
      out.mutable_untyped()->set_value(metric.untyped.value);
      break;
    case MetricType::Summary: {
      pb::Summary& summary = *out.mutable_summary();
      summary.set_sample_count(metric.summary.sample_count);
      summary.set_sample_sum(metric.summary.sample_sum);
      for (const auto& q : metric.summary.quantile) {
        pb::Quantile& quantile = *summary.add_quantile();
        quantile.set_quantile(q.quantile);
        quantile.set_value(q.value);
      }
      break;
    }
    case MetricType::Histogram: {
      pb::Histogram& histogram = *out.mutable_histogram();
      histogram.set_sample_count(metric.histogram.sample_count);
      histogram.set_sample_sum(metric.histogram.sample_sum);
      // The +Inf bucket is implied by sample_count; the finite ones are written.
      for (const auto& b : metric.histogram.bucket) {
        if (&b == &metric.histogram.bucket.back()) break;
        pb::Bucket& bucket = *histogram.add_bucket();
        bucket.set_cumulative_count(b.cumulative_count);
        bucket.set_upper_bound(b.upper_bound);
      }
      if (extras != nullptr && extras->native) SetNative(histogram, *extras->native);
      break;
    }
  }
}

}  // namespace

std::string SerializeProtobuf(const Exposition& exposition) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  pb::MetricFamily message;
  for (std::size_t f = 0; f < exposition.families.size(); ++f) {
    const prometheus::MetricFamily& family = exposition.families[f];
    message.Clear();
    message.set_name(family.name);
    message.set_help(family.help);
    message.set_type(TypeOf(family.type));
    for (std::size_t m = 0; m < family.metric.size(); ++m) {
      const SeriesExtras* extras = nullptr;
      for (const SeriesExtras& extra : exposition.extras) {
        if (extra.family == f && extra.metric == m) extras = &extra;
      }
      SetMetric(*message.add_metric(), family.type, family.metric[m], extras);
    }
    // Delimited: each message's size as a varint, then the message.
    coded.WriteVarint32(static_cast<std::uint32_t>(message.ByteSizeLong()));
    message.SerializeWithCachedSizes(&coded);
  }
  coded.Trim();
  return out;
}

}  // namespace poolwatch::exporter

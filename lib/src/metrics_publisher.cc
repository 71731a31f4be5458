#include "poolwatch/metrics_publisher.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <utility>

namespace poolwatch {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

double D(std::uint64_t value) { return static_cast<double>(value); }

// The pool families: one series per pool, read from the pool's sealed stats and its peaks.
struct PoolFamily {
  const char* name;
  const char* help;
  MetricType type;
  bool exemplar;  // carries the pool's latest held buffer as an exemplar
  double (*value)(const PoolSnapshot&);
  const Histogram& (*histogram)(const PoolSnapshot&) = nullptr;
};

constexpr MetricType kGauge = MetricType::Gauge;
constexpr MetricType kCounter = MetricType::Counter;

constexpr PoolFamily kPoolFamilies[] = {
    {"poolwatch_pool_frame_allocations",
     "Buffers allocated from the pool in the last completed frame.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.stats.last_frame.allocations); }},
    {"poolwatch_pool_frame_releases", "Buffers returned to the pool in the last completed frame.",
     kGauge, false, [](const PoolSnapshot& s) { return D(s.stats.last_frame.releases); }},
    {"poolwatch_pool_frame_imbalance", "Allocations minus releases in the last completed frame.",
     kGauge, false,
     [](const PoolSnapshot& s) { return static_cast<double>(s.stats.last_frame.Imbalance()); }},
    {"poolwatch_pool_allocations_total", "Buffers handed out by the pool.", kCounter, true,
     [](const PoolSnapshot& s) { return D(s.stats.allocations_total); }},
    {"poolwatch_pool_releases_total", "Buffers returned to the pool.", kCounter, false,
     [](const PoolSnapshot& s) { return D(s.stats.releases_total); }},
    {"poolwatch_pool_misses_total",
     "Allocations that found no free buffer of their key and needed new memory.", kCounter, false,
     [](const PoolSnapshot& s) { return D(s.stats.misses_total); }},
    {"poolwatch_pool_outstanding_buffers",
     "Buffers handed out and not yet returned, after the frame's release.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.stats.outstanding_buffers); }},
    {"poolwatch_pool_pooled_bytes", "Bytes owned by the pool, free and in use.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.stats.pooled_bytes); }},
    {"poolwatch_pool_in_use_bytes", "Bytes handed out by the pool and not returned.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.stats.in_use_bytes); }},
    {"poolwatch_pool_keys", "Distinct (format, element count) keys in the pool.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.stats.keys); }},
    {"poolwatch_pool_allocation_failures_total",
     "Allocations refused because the pool's byte cap was reached.", kCounter, false,
     [](const PoolSnapshot& s) { return D(s.stats.allocation_failures_total); }},
    {"poolwatch_pool_trimmed_bytes_total", "Bytes of idle free buffers evicted by the trim policy.",
     kCounter, false, [](const PoolSnapshot& s) { return D(s.stats.trimmed_bytes_total); }},
    {"poolwatch_pool_frame_peak_in_use_bytes",
     "The most bytes in use at any moment of a frame, over the trailing peak window.", kGauge,
     false, [](const PoolSnapshot& s) { return D(s.peaks.frame_peak_in_use_bytes); }},
    {"poolwatch_pool_frame_max_in_use_bytes",
     "The most bytes in use at any moment of a frame, since the start.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.peaks.frame_max_in_use_bytes); }},
    {"poolwatch_pool_frame_peak_allocations",
     "The most allocations in one frame, over the trailing peak window.", kGauge, false,
     [](const PoolSnapshot& s) { return D(s.peaks.frame_peak_allocations); }},
    {"poolwatch_pool_frame_max_allocations", "The most allocations in one frame, since the start.",
     kGauge, false, [](const PoolSnapshot& s) { return D(s.peaks.frame_max_allocations); }},
    {"poolwatch_pool_allocations_per_frame", "Buffers allocated from the pool in one frame.",
     MetricType::Histogram, false, nullptr,
     [](const PoolSnapshot& s) -> const Histogram& { return s.allocations_per_frame; }},
};

// The loop families: one series per loop.
struct LoopFamily {
  const char* name;
  const char* help;
  MetricType type;
  double (*value)(const HealthSnapshot&);
  const Histogram& (*histogram)(const HealthSnapshot&);
};

constexpr LoopFamily kLoopFamilies[] = {
    {"poolwatch_frames_total", "Frames executed by the simulation loop.", kCounter,
     [](const HealthSnapshot& s) { return D(s.timing.frames); }, nullptr},
    {"poolwatch_frame_overruns_total", "Frames that ended after their tick's deadline.", kCounter,
     [](const HealthSnapshot& s) { return D(s.timing.overruns); }, nullptr},
    {"poolwatch_frame_duration_seconds", "Time spent executing a frame.", MetricType::Histogram,
     nullptr, [](const HealthSnapshot& s) -> const Histogram& { return s.frame_duration; }},
    {"poolwatch_tick_lateness_seconds",
     "Time between a tick's deadline and the loop waking up for it.", MetricType::Histogram,
     nullptr, [](const HealthSnapshot& s) -> const Histogram& { return s.tick_lateness; }},
    {"poolwatch_health_snapshots_total", "Health snapshots emitted by the loop's monitor.",
     kCounter, [](const HealthSnapshot& s) { return D(s.sequence); }, nullptr},
    {"poolwatch_frame_peak_duration_seconds",
     "The longest frame of the loop over the trailing peak window.", kGauge,
     [](const HealthSnapshot& s) { return s.frame_peak_duration_seconds; }, nullptr},
    {"poolwatch_tick_period_seconds",
     "The loop's tick period: the time a frame may take before it overruns.", kGauge,
     [](const HealthSnapshot& s) { return std::chrono::duration<double>(s.period).count(); },
     nullptr},
};

void SetValue(ClientMetric& metric, MetricType type, double value) {
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
}

void SetHistogram(ClientMetric& metric, const Histogram& histogram) {
  metric.histogram.sample_count = histogram.count();
  metric.histogram.sample_sum = histogram.sum();
  std::uint64_t cumulative = 0;
  const auto& bounds = histogram.upper_bounds();
  const auto& counts = histogram.bucket_counts();
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    // The serializer writes the last bucket, whatever its bound, as le="+Inf".
    metric.histogram.bucket.push_back(
        {cumulative, i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity()});
  }
}

// OpenMetrics allows 128 UTF-8 characters in an exemplar's label names and values together.
constexpr std::size_t kExemplarCharacters = 128;
// A site label of the site families: long enough for any sensible tag, bounded whatever comes.
constexpr std::size_t kSiteCharacters = 128;

// The length of the valid UTF-8 sequence at the start of `text`, or 0 if it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// A site tag as a label value: at most `characters` characters of valid UTF-8, each invalid
// byte replaced by U+FFFD, never cut inside a character. Prometheus refuses a whole scrape for
// one label value that is not UTF-8; a site is whatever text an embedder tagged.
std::string SiteLabel(const char* site, std::size_t characters) {
  const std::string_view text = site != nullptr ? site : "";
  std::string label;
  std::size_t at = 0;
  for (std::size_t seen = 0; seen < characters && at < text.size(); ++seen) {
    if (const std::size_t length = Utf8SequenceLength(text.substr(at)); length != 0) {
      label.append(text.substr(at, length));
      at += length;
    } else {
      label.append("\xEF\xBF\xBD");  // U+FFFD
      ++at;
    }
  }
  return label;
}

// Held buffers of one site of a pool (its groups of every format together).
struct SiteTotals {
  std::string site;
  double buffers = 0;
  double bytes = 0;
};

// The pool's `top` sites by bytes held (then buffers, then name), and the rest summed as
// site="other": at most top + 1 rows, whatever the workload tags.
std::vector<SiteTotals> TopSites(const PoolSnapshot& pool, std::size_t top) {
  std::vector<SiteTotals> sites;
  for (const OutstandingGroup& group : pool.outstanding) {
    std::string site = SiteLabel(group.site, kSiteCharacters);
    auto it = std::ranges::find(sites, site, &SiteTotals::site);
    if (it == sites.end()) it = sites.insert(sites.end(), {std::move(site)});
    it->buffers += D(group.count);
    it->bytes += D(group.bytes);
  }
  std::ranges::sort(sites, [](const SiteTotals& a, const SiteTotals& b) {
    if (a.bytes != b.bytes) return a.bytes > b.bytes;
    if (a.buffers != b.buffers) return a.buffers > b.buffers;
    return a.site < b.site;
  });
  if (sites.size() > top) {
    SiteTotals other{"other"};
    for (auto it = sites.begin() + static_cast<std::ptrdiff_t>(top); it != sites.end(); ++it) {
      other.buffers += it->buffers;
      other.bytes += it->bytes;
    }
    sites.resize(top);
    sites.push_back(std::move(other));
  }
  return sites;
}

Exemplar HeldExemplar(const LatestHeld& held) {
  std::string frame = std::to_string(held.frame);
  const std::size_t room =
      kExemplarCharacters - (std::size("site") - 1) - (std::size("frame") - 1) - frame.size();
  return {{{"site", SiteLabel(held.site, room)}, {"frame", std::move(frame)}},
          1,
          std::chrono::duration<double>(held.time.time_since_epoch()).count()};
}

bool IsLabelName(const std::string& name) {
  const auto head = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  const auto tail = [&](char c) { return head(c) || (c >= '0' && c <= '9'); };
  return !name.empty() && head(name[0]) && std::all_of(name.begin() + 1, name.end(), tail);
}

Labels CheckedConstLabels(const MetricsPublisherOptions& options) {
  Labels labels;
  for (const auto& [name, value] : options.const_labels) {
    const auto fail = [&label = name](const char* why) {
      std::string message = "constant label \"";
      message.append(label).append("\": ").append(why);
      throw std::invalid_argument(message);
    };
    if (!IsLabelName(name)) fail("not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)");
    if (name.starts_with("__")) fail("names starting with __ are reserved");
    if (name == "pool" || name == "loop" || name == "le" || name == "site" || name == "age") {
      fail("poolwatch sets this label");
    }
    if (value.size() > 1024) fail("the value is longer than 1024 bytes");
    if (std::ranges::find(labels, name, &ClientMetric::Label::name) != labels.end()) {
      fail("given twice");
    }
    labels.push_back({name, value});
  }
  return labels;
}

}  // namespace

MetricsPublisher::MetricsPublisher(const MetricsPublisherOptions& options)
    : const_labels_(CheckedConstLabels(options)), top_sites_(options.top_sites) {}

void MetricsPublisher::Attach(HealthMonitor& monitor) {
  auto slot = std::make_unique<LoopSlot>();
  slot->loop = monitor.loop();
  slot->pools = monitor.PoolNames();
  LoopSlot* attached = slot.get();  // slots are never removed: the address stays valid
  {
    std::scoped_lock lock(slots_mutex_);
    for (const auto& other : slots_) {
      if (other->loop == slot->loop) {
        throw std::invalid_argument("loop \"" + slot->loop + "\" is attached twice");
      }
      for (const std::string& pool : slot->pools) {
        if (std::ranges::find(other->pools, pool) != other->pools.end()) {
          throw std::invalid_argument("pool \"" + pool + "\" of loop \"" + slot->loop +
                                      "\" has the name of a pool of loop \"" + other->loop + "\"");
        }
      }
    }
    slots_.push_back(std::move(slot));
  }
  monitor.Subscribe([this, attached](const HealthSnapshot& s) { Publish(*attached, s); });
}

void MetricsPublisher::Publish(LoopSlot& slot, const HealthSnapshot& snapshot) {
  {
    std::scoped_lock lock(slot.mutex);
    slot.latest = snapshot;  // assigned into the kept copy: its storage is reused
  }
  generation_.fetch_add(1, std::memory_order_release);
}

std::vector<HealthSnapshot> MetricsPublisher::Latest() const {
  std::vector<const LoopSlot*> slots;
  {
    std::scoped_lock lock(slots_mutex_);
    for (const auto& slot : slots_) slots.push_back(slot.get());
  }
  std::vector<HealthSnapshot> latest;
  latest.reserve(slots.size());
  for (const LoopSlot* slot : slots) {
    std::scoped_lock lock(slot->mutex);
    if (slot->latest) latest.push_back(*slot->latest);
  }
  return latest;
}

bool MetricsPublisher::AllPublished() const {
  std::scoped_lock lock(slots_mutex_);
  if (slots_.empty()) return false;
  return std::ranges::all_of(slots_, [](const auto& slot) {
    std::scoped_lock slot_lock(slot->mutex);
    return slot->latest.has_value();
  });
}

std::vector<MetricFamily> MetricsPublisher::Collect() const { return CollectExposition().families; }

Exposition MetricsPublisher::CollectExposition() const {
  const std::vector<HealthSnapshot> loops = Latest();
  // Before the first frame there is nothing true to say: no series rather than zeros.
  if (loops.empty()) return {};
  Exposition exposition;

  const auto labelled = [&](const char* label, const std::string& value) {
    ClientMetric metric;
    metric.label.reserve(const_labels_.size() + 1);
    metric.label.push_back({label, value});
    metric.label.insert(metric.label.end(), const_labels_.begin(), const_labels_.end());
    return metric;
  };

  std::vector<MetricFamily>& families = exposition.families;
  families.reserve(std::size(kPoolFamilies) + std::size(kLoopFamilies));
  for (const PoolFamily& f : kPoolFamilies) {
    MetricFamily family{f.name, f.help, f.type, {}};
    for (const HealthSnapshot& loop : loops) {
      for (const PoolSnapshot& pool : loop.pools) {
        ClientMetric& metric = family.metric.emplace_back(labelled("pool", pool.name));
        if (f.histogram != nullptr) {
          SetHistogram(metric, f.histogram(pool));
        } else {
          SetValue(metric, f.type, f.value(pool));
        }
        if (f.exemplar && pool.latest_held) {
          exposition.extras.push_back({families.size(), family.metric.size() - 1,
                                       HeldExemplar(*pool.latest_held), std::nullopt});
        }
      }
    }
    if (!family.metric.empty()) families.push_back(std::move(family));
  }
  // Held buffers by site, bounded: a series per pool and site for the top sites, plus "other".
  MetricFamily site_buffers{"poolwatch_pool_outstanding_site_buffers",
                            "Held buffers outstanding by allocation site: the pool's top sites by "
                            "bytes, the rest as site=\"other\".",
                            kGauge,
                            {}};
  MetricFamily site_bytes{"poolwatch_pool_outstanding_site_bytes",
                          "Bytes of held buffers outstanding by allocation site: the pool's top "
                          "sites by bytes, the rest as site=\"other\".",
                          kGauge,
                          {}};
  for (const HealthSnapshot& loop : loops) {
    for (const PoolSnapshot& pool : loop.pools) {
      for (const SiteTotals& site : TopSites(pool, top_sites_)) {
        ClientMetric metric = labelled("pool", pool.name);
        metric.label.insert(metric.label.begin() + 1, {"site", site.site});
        metric.gauge.value = site.buffers;
        site_buffers.metric.push_back(metric);
        metric.gauge.value = site.bytes;
        site_bytes.metric.push_back(std::move(metric));
      }
    }
  }
  if (!site_buffers.metric.empty()) {
    families.push_back(std::move(site_buffers));
    families.push_back(std::move(site_bytes));
  }
  // Held buffers by age: five series per pool, whatever is held.
  MetricFamily ages{"poolwatch_pool_outstanding_age_buffers",
                    "Held buffers outstanding by age: under 1 s, 1 s to 1 min, 1 to 10 min, "
                    "10 min to 1 h, over 1 h; they add up to poolwatch_pool_outstanding_buffers.",
                    kGauge,
                    {}};
  for (const HealthSnapshot& loop : loops) {
    for (const PoolSnapshot& pool : loop.pools) {
      for (std::size_t i = 0; i < kHeldAgeBuckets; ++i) {
        ClientMetric& metric = ages.metric.emplace_back(labelled("pool", pool.name));
        metric.label.insert(metric.label.begin() + 1, {"age", std::string(kHeldAgeLabels[i])});
        metric.gauge.value = static_cast<double>(pool.ages[i].count);
      }
    }
  }
  if (!ages.metric.empty()) families.push_back(std::move(ages));
  for (const LoopFamily& f : kLoopFamilies) {
    MetricFamily family{f.name, f.help, f.type, {}};
    for (const HealthSnapshot& loop : loops) {
      ClientMetric& metric = family.metric.emplace_back(labelled("loop", loop.loop));
      if (f.histogram != nullptr) {
        const Histogram& histogram = f.histogram(loop);
        SetHistogram(metric, histogram);
        if (histogram.native()) {
          exposition.extras.push_back(
              {families.size(), family.metric.size() - 1, std::nullopt, histogram.native()});
        }
      } else {
        SetValue(metric, f.type, f.value(loop));
      }
    }
    families.push_back(std::move(family));
  }
  return exposition;
}

}  // namespace poolwatch

#include "poolwatch/metrics_publisher.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

#include "poolwatch/simulation_loop.h"

namespace poolwatch {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using std::chrono::milliseconds;

const MetricFamily* Find(const std::vector<MetricFamily>& families, const std::string& name) {
  for (const auto& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

std::string Label(const ClientMetric& metric, const std::string& name) {
  for (const auto& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return "";
}

double Value(const MetricFamily& family, const ClientMetric& metric) {
  return family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
}

// The value of `family`'s series whose `label` is `value`; throws if there is none.
double Sample(const std::vector<MetricFamily>& families, const std::string& family,
              const std::string& label, const std::string& value) {
  const MetricFamily* f = Find(families, family);
  if (f == nullptr) throw std::runtime_error("no family " + family);
  for (const ClientMetric& metric : f->metric) {
    if (Label(metric, label) == value) return Value(*f, metric);
  }
  throw std::runtime_error("no series " + family + "{" + label + "=" + value + "}");
}

HealthMonitorOptions Loop(std::string name) {
  return {.loop = std::move(name), .period = milliseconds{10}, .snapshot_interval_frames = 1};
}

TEST(MetricsPublisherTest, NothingIsExposedBeforeTheFirstSnapshot) {
  BufferPool pool;
  HealthMonitor monitor(Loop("main"));
  monitor.AddPool("p", pool);
  MetricsPublisher publisher;
  EXPECT_FALSE(publisher.AllPublished());
  publisher.Attach(monitor);
  EXPECT_TRUE(publisher.Collect().empty());
  EXPECT_TRUE(publisher.Latest().empty());
  EXPECT_FALSE(publisher.AllPublished());
  EXPECT_EQ(publisher.Generation(), 0U);
}

TEST(MetricsPublisherTest, EveryContractMetricCarriesTheSnapshotValues) {
  BufferPool pool;
  HealthMonitor monitor(Loop("main"));
  monitor.AddPool("render", pool);
  MetricsPublisher publisher;
  publisher.Attach(monitor);
  for (int i = 0; i < 4; ++i) pool.Alloc(BufferFormat::kF32, 256);
  pool.Acquire(BufferFormat::kU8, 100, "test.leak");
  monitor.EndFrame({.duration = std::chrono::microseconds{1500}, .overrun = true});
  const auto families = publisher.Collect();

  const std::map<std::string, double> expected = {
      {"poolwatch_pool_frame_allocations", 5},
      {"poolwatch_pool_frame_releases", 4},
      {"poolwatch_pool_frame_imbalance", 1},
      {"poolwatch_pool_allocations_total", 5},
      {"poolwatch_pool_releases_total", 4},
      {"poolwatch_pool_misses_total", 5},
      {"poolwatch_pool_outstanding_buffers", 1},
      {"poolwatch_pool_pooled_bytes", 4 * 1024 + 100},
      {"poolwatch_pool_in_use_bytes", 100},
      {"poolwatch_pool_keys", 2},
      {"poolwatch_pool_allocation_failures_total", 0},
      {"poolwatch_pool_trimmed_bytes_total", 0},
      {"poolwatch_frames_total", 1},
      {"poolwatch_frame_overruns_total", 1},
      {"poolwatch_health_snapshots_total", 1},
      {"poolwatch_tick_period_seconds", 0.01},
  };
  for (const auto& [name, value] : expected) {
    const auto* family = Find(families, name);
    ASSERT_NE(family, nullptr) << name;
    ASSERT_EQ(family->metric.size(), 1U) << name;
    EXPECT_FALSE(family->help.empty()) << name;
    const auto& metric = family->metric[0];
    const bool counter = family->type == prometheus::MetricType::Counter;
    EXPECT_EQ(counter, name.ends_with("_total")) << name << ": _total only on counters";
    EXPECT_DOUBLE_EQ(Value(*family, metric), value) << name;
    ASSERT_EQ(metric.label.size(), 1U) << name;
    if (name.starts_with("poolwatch_pool_")) {
      EXPECT_EQ(metric.label[0].name, "pool");
      EXPECT_EQ(metric.label[0].value, "render");
    } else {
      EXPECT_EQ(metric.label[0].name, "loop");
      EXPECT_EQ(metric.label[0].value, "main");
    }
  }

  const auto* duration = Find(families, "poolwatch_frame_duration_seconds");
  ASSERT_NE(duration, nullptr);
  EXPECT_EQ(duration->type, prometheus::MetricType::Histogram);
  ASSERT_EQ(duration->metric.size(), 1U);
  EXPECT_EQ(Label(duration->metric[0], "loop"), "main");
  const auto& h = duration->metric[0].histogram;
  EXPECT_EQ(h.sample_count, 1U);
  EXPECT_DOUBLE_EQ(h.sample_sum, 0.0015);
  // 5 µs to 250 µs, ten bounds around the 10 ms budget, and +Inf.
  ASSERT_EQ(h.bucket.size(), 17U);
  EXPECT_DOUBLE_EQ(h.bucket[0].upper_bound, 5e-6);
  EXPECT_EQ(h.bucket[6].cumulative_count, 0U);      // 0.625 ms
  EXPECT_EQ(h.bucket[7].cumulative_count, 0U);      // 1.25 ms
  EXPECT_EQ(h.bucket[8].cumulative_count, 1U);      // 2.5 ms
  EXPECT_EQ(h.bucket.back().cumulative_count, 1U);  // +Inf
  const auto* lateness = Find(families, "poolwatch_tick_lateness_seconds");
  ASSERT_NE(lateness, nullptr);
  ASSERT_EQ(lateness->metric.size(), 1U);
  EXPECT_EQ(lateness->metric[0].histogram.bucket.size(), 17U);

  // The frame's five allocations, in the bucket le="16" of the pool's histogram.
  const auto* allocations = Find(families, "poolwatch_pool_allocations_per_frame");
  ASSERT_NE(allocations, nullptr);
  EXPECT_EQ(allocations->type, prometheus::MetricType::Histogram);
  ASSERT_EQ(allocations->metric.size(), 1U);
  EXPECT_EQ(Label(allocations->metric[0], "pool"), "render");
  const auto& a = allocations->metric[0].histogram;
  EXPECT_EQ(a.sample_count, 1U);
  EXPECT_DOUBLE_EQ(a.sample_sum, 5);
  ASSERT_EQ(a.bucket.size(), 11U);
  EXPECT_DOUBLE_EQ(a.bucket[3].upper_bound, 16);
  EXPECT_EQ(a.bucket[2].cumulative_count, 0U);
  EXPECT_EQ(a.bucket[3].cumulative_count, 1U);
}

// Held buffers by site: the top sites by bytes (here 2), the rest summed as "other"; groups of
// one site in several formats merge; an untagged site is ""; a site that is not UTF-8 is
// repaired, not passed on to break the scrape; a pool that holds nothing has no site series.
TEST(MetricsPublisherTest, SiteSeriesAreTheTopSitesByBytesAndOther) {
  BufferPool pool;
  BufferPool idle;
  HealthMonitor monitor(Loop("main"));
  monitor.AddPool("p", pool);
  monitor.AddPool("idle", idle);
  MetricsPublisher publisher({.const_labels = {}, .top_sites = 2});
  publisher.Attach(monitor);
  MetricsPublisher all;  // default: 5 sites, so the bad one is listed, repaired
  all.Attach(monitor);
  pool.Acquire(BufferFormat::kU8, 1000, "big");
  pool.Acquire(BufferFormat::kF32, 100, "big");  // the same site in another format
  pool.Acquire(BufferFormat::kU8, 900, nullptr);
  pool.Acquire(BufferFormat::kU8, 10, "small");
  pool.Acquire(BufferFormat::kU8, 20, "bad\xff\xc3");
  monitor.EndFrame({});
  const auto families = publisher.Collect();
  const auto* bytes = Find(families, "poolwatch_pool_outstanding_site_bytes");
  const auto* buffers = Find(families, "poolwatch_pool_outstanding_site_buffers");
  ASSERT_NE(bytes, nullptr);
  ASSERT_NE(buffers, nullptr);
  std::vector<std::tuple<std::string, std::string, double>> rows;
  for (const auto& metric : bytes->metric) {
    rows.emplace_back(Label(metric, "pool"), Label(metric, "site"), metric.gauge.value);
  }
  EXPECT_EQ(rows, (std::vector<std::tuple<std::string, std::string, double>>{
                      {"p", "big", 1400}, {"p", "", 900}, {"p", "other", 30}}));
  EXPECT_EQ(buffers->metric[0].gauge.value, 2);
  EXPECT_EQ(buffers->metric[2].gauge.value, 2);

  const auto collected = all.Collect();
  std::set<std::string> sites;
  for (const auto& metric : Find(collected, "poolwatch_pool_outstanding_site_bytes")->metric) {
    sites.insert(Label(metric, "site"));
  }
  EXPECT_EQ(sites, (std::set<std::string>{"big", "", "small", "bad\xEF\xBF\xBD\xEF\xBF\xBD"}));
  EXPECT_THROW(MetricsPublisher({.const_labels = {{"site", "x"}}}), std::invalid_argument);
}

// Two loops, three pools: each family once, a series per pool or per loop, each with its own
// numbers. Before this design, two publishers on one exposer repeated every HELP line and
// gave the loop families twice with identical labels.
TEST(MetricsPublisherTest, EveryFamilyAppearsOnceWithASeriesPerPoolAndPerLoop) {
  BufferPool render;
  BufferPool physics;
  BufferPool audio;
  HealthMonitor main_loop(Loop("main"));
  main_loop.AddPool("render", render);
  main_loop.AddPool("physics", physics);
  HealthMonitor audio_loop(Loop("audio"));
  audio_loop.AddPool("audio", audio);
  MetricsPublisher publisher;
  publisher.Attach(main_loop);
  publisher.Attach(audio_loop);

  for (int frame = 0; frame < 3; ++frame) {
    render.Alloc(BufferFormat::kF32, 8);
    physics.Acquire(BufferFormat::kVec3f, 4, "physics.leak");
    main_loop.EndFrame({.duration = milliseconds{1}});
  }
  EXPECT_FALSE(publisher.AllPublished());
  for (int frame = 0; frame < 5; ++frame) {
    audio.Alloc(BufferFormat::kF32, 2);
    audio.Alloc(BufferFormat::kF32, 2);
    audio_loop.EndFrame({.duration = milliseconds{1}, .overrun = frame == 0});
  }
  EXPECT_TRUE(publisher.AllPublished());
  EXPECT_EQ(publisher.Generation(), 8U);

  const auto families = publisher.Collect();
  std::set<std::string> names;
  for (const MetricFamily& family : families) {
    EXPECT_TRUE(names.insert(family.name).second) << family.name << " appears twice";
    const bool pool_family = family.name.starts_with("poolwatch_pool_");
    std::set<std::string> series;
    for (const ClientMetric& metric : family.metric) {
      series.insert(Label(metric, pool_family ? "pool" : "loop"));
    }
    // Site series only for a pool that holds buffers: physics.
    const std::set<std::string> expected =
        family.name.starts_with("poolwatch_pool_outstanding_site_")
            ? std::set<std::string>{"physics"}
        : pool_family ? std::set<std::string>{"render", "physics", "audio"}
                      : std::set<std::string>{"main", "audio"};
    EXPECT_EQ(series, expected) << family.name;
  }
  EXPECT_EQ(names.size(), 27U);
  // Ages: five series a pool, adding up to its outstanding buffers.
  double physics_ages = 0;
  for (const MetricFamily& family : families) {
    if (family.name != "poolwatch_pool_outstanding_age_buffers") continue;
    EXPECT_EQ(family.metric.size(), 3 * kHeldAgeBuckets);
    for (const ClientMetric& metric : family.metric) {
      if (Label(metric, "pool") == "physics") physics_ages += metric.gauge.value;
    }
  }
  EXPECT_EQ(physics_ages, 3);

  EXPECT_EQ(Sample(families, "poolwatch_pool_allocations_total", "pool", "render"), 3);
  EXPECT_EQ(Sample(families, "poolwatch_pool_outstanding_buffers", "pool", "physics"), 3);
  EXPECT_EQ(Sample(families, "poolwatch_pool_in_use_bytes", "pool", "physics"), 3 * 4 * 12);
  EXPECT_EQ(Sample(families, "poolwatch_pool_allocations_total", "pool", "audio"), 10);
  EXPECT_EQ(Sample(families, "poolwatch_frames_total", "loop", "main"), 3);
  EXPECT_EQ(Sample(families, "poolwatch_frames_total", "loop", "audio"), 5);
  EXPECT_EQ(Sample(families, "poolwatch_frame_overruns_total", "loop", "audio"), 1);
  EXPECT_EQ(Sample(families, "poolwatch_frame_overruns_total", "loop", "main"), 0);
  // The peaks, over every frame: render's 8 floats, physics' held buffers after 3 frames.
  EXPECT_EQ(Sample(families, "poolwatch_pool_frame_peak_in_use_bytes", "pool", "render"), 32);
  EXPECT_EQ(Sample(families, "poolwatch_pool_frame_max_in_use_bytes", "pool", "physics"), 144);
  EXPECT_EQ(Sample(families, "poolwatch_pool_frame_peak_allocations", "pool", "audio"), 2);
  EXPECT_EQ(Sample(families, "poolwatch_pool_frame_max_allocations", "pool", "physics"), 1);
  EXPECT_DOUBLE_EQ(Sample(families, "poolwatch_frame_peak_duration_seconds", "loop", "main"),
                   0.001);

  const std::string text = prometheus::TextSerializer().Serialize(families);
  for (const std::string& name : names) {
    const std::string help = "# HELP " + name + " ";
    const auto first = text.find(help);
    EXPECT_NE(first, std::string::npos) << name;
    EXPECT_EQ(text.find(help, first + 1), std::string::npos) << name << ": a second HELP";
  }
}

TEST(MetricsPublisherTest, ConstantLabelsAreOnEverySeriesAndBadOnesAreRefused) {
  BufferPool pool;
  HealthMonitor monitor(Loop("main"));
  monitor.AddPool("render", pool);
  MetricsPublisher publisher({.const_labels = {{"shard", "eu-1"}, {"build", "42"}}});
  publisher.Attach(monitor);
  monitor.EndFrame({});
  for (const MetricFamily& family : publisher.Collect()) {
    for (const ClientMetric& metric : family.metric) {
      EXPECT_EQ(Label(metric, "shard"), "eu-1") << family.name;
      EXPECT_EQ(Label(metric, "build"), "42") << family.name;
    }
  }
  for (const char* bad : {"pool", "loop", "le", "__name", "9lives", "with-dash", ""}) {
    EXPECT_THROW(MetricsPublisher({.const_labels = {{bad, "x"}}}), std::invalid_argument) << bad;
  }
  EXPECT_THROW(MetricsPublisher({.const_labels = {{"a", "1"}, {"a", "2"}}}), std::invalid_argument);
}

TEST(MetricsPublisherTest, DuplicateLoopOrPoolNamesAcrossLoopsAreRefused) {
  BufferPool a;
  BufferPool b;
  BufferPool c;
  HealthMonitor first(Loop("main"));
  first.AddPool("render", a);
  HealthMonitor same_loop(Loop("main"));
  same_loop.AddPool("other", b);
  HealthMonitor same_pool(Loop("audio"));
  same_pool.AddPool("render", c);
  MetricsPublisher publisher;
  publisher.Attach(first);
  try {
    publisher.Attach(same_pool);
    FAIL() << "a second pool named render was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"render\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(publisher.Attach(same_loop), std::invalid_argument);
  // Nothing of the refused loops is published.
  same_pool.EndFrame({});
  same_loop.EndFrame({});
  EXPECT_TRUE(publisher.Collect().empty());
}

TEST(MetricsPublisherTest, ALaterSnapshotReplacesTheEarlierOneWhole) {
  BufferPool pool;
  HealthMonitor monitor(Loop("main"));
  monitor.AddPool("render", pool);
  MetricsPublisher publisher;
  publisher.Attach(monitor);
  pool.Acquire(BufferFormat::kU8, 8);
  monitor.EndFrame({});
  const std::uint64_t generation = publisher.Generation();
  for (int i = 0; i < 98; ++i) pool.Alloc(BufferFormat::kU8, 8);
  monitor.EndFrame({});
  EXPECT_GT(publisher.Generation(), generation);
  const auto families = publisher.Collect();
  EXPECT_EQ(Sample(families, "poolwatch_pool_allocations_total", "pool", "render"), 99);
  EXPECT_EQ(Sample(families, "poolwatch_pool_releases_total", "pool", "render"), 98);
  EXPECT_EQ(Sample(families, "poolwatch_health_snapshots_total", "loop", "main"), 2);
}

// Three pools on two loop threads at 1 kHz, each pool leaking and releasing at its own pace,
// scraped from two more threads: in every scrape, each pool's series come from one sealed frame
// (allocations − releases = outstanding), every family appears once, and counters never go
// back. Under the tsan preset this is also the data-race test of the publication.
TEST(MetricsPublisherTest, ManyPoolsOnManyThreadsScrapeConsistentlyUnderConcurrentScrapes) {
  struct Pool {
    const char* name;
    BufferPool pool{};
    std::vector<BufferId> held{};
  };
  Pool render{"render"};
  Pool physics{"physics"};
  Pool audio{"audio"};
  HealthMonitor main_loop(
      {.loop = "main", .period = milliseconds{1}, .snapshot_interval_frames = 1});
  main_loop.AddPool(render.name, render.pool);
  main_loop.AddPool(physics.name, physics.pool);
  HealthMonitor audio_loop(
      {.loop = "audio", .period = milliseconds{1}, .snapshot_interval_frames = 1});
  audio_loop.AddPool(audio.name, audio.pool);
  MetricsPublisher publisher;
  publisher.Attach(main_loop);
  publisher.Attach(audio_loop);

  // A frame that allocates frame-scoped buffers, acquires held ones and releases some of them,
  // so allocations, releases and outstanding all move, and differently for each pool.
  const auto work = [](Pool& p, std::uint64_t frame, std::uint32_t hold_every) {
    for (std::uint32_t i = 0; i < 1 + frame % 7; ++i) p.pool.Alloc(BufferFormat::kF32, 16 + i);
    if (frame % hold_every == 0) p.held.push_back(p.pool.Acquire(BufferFormat::kU8, 64).id());
    if (frame % (2 * hold_every + 1) == 0 && !p.held.empty()) {
      p.pool.Release(p.held.back());
      p.held.pop_back();
    }
  };
  SteadyClock main_clock;
  SteadyClock audio_clock;
  SimulationLoop main_sim(main_clock, main_loop, [&](std::uint64_t frame) {
    work(render, frame, 3);
    work(physics, frame, 1);
  });
  SimulationLoop audio_sim(audio_clock, audio_loop,
                           [&](std::uint64_t frame) { work(audio, frame, 2); });
  std::jthread main_thread([&](const std::stop_token& stop) { main_sim.Run(stop); });
  std::jthread audio_thread([&](const std::stop_token& stop) { audio_sim.Run(stop); });

  std::atomic<int> scrapes{0};
  std::atomic<int> failures{0};
  const auto scraper = [&] {
    std::map<std::string, double> last_allocations;
    for (int i = 0; i < 300; ++i) {
      const auto families = publisher.Collect();
      if (families.empty()) continue;
      std::set<std::string> names;
      for (const MetricFamily& family : families) {
        if (!names.insert(family.name).second) ++failures;
      }
      for (const char* pool : {"render", "physics", "audio"}) {
        const auto allocations = Sample(families, "poolwatch_pool_allocations_total", "pool", pool);
        const auto releases = Sample(families, "poolwatch_pool_releases_total", "pool", pool);
        const auto outstanding =
            Sample(families, "poolwatch_pool_outstanding_buffers", "pool", pool);
        if (allocations - releases != outstanding) {
          ADD_FAILURE() << pool << ": " << allocations << " - " << releases << " != " << outstanding
                        << " (two frames mixed)";
          ++failures;
        }
        if (allocations < last_allocations[pool]) ++failures;
        last_allocations[pool] = allocations;
      }
      ++scrapes;
      std::this_thread::sleep_for(std::chrono::microseconds{300});
    }
  };
  // Wait for both loops' first frames, so that every scrape has all three pools.
  while (!publisher.AllPublished()) std::this_thread::sleep_for(milliseconds{1});
  std::thread scraper_a(scraper);
  std::thread scraper_b(scraper);
  scraper_a.join();
  scraper_b.join();
  main_thread.request_stop();
  audio_thread.request_stop();
  main_thread.join();
  audio_thread.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(scrapes.load(), 600);
  // The loops really ran while being scraped, and the pools really diverged.
  const auto families = publisher.Collect();
  EXPECT_GT(Sample(families, "poolwatch_frames_total", "loop", "main"), 20);
  EXPECT_GT(Sample(families, "poolwatch_frames_total", "loop", "audio"), 20);
  EXPECT_GT(Sample(families, "poolwatch_pool_outstanding_buffers", "pool", "physics"),
            Sample(families, "poolwatch_pool_outstanding_buffers", "pool", "render"));
}

}  // namespace
}  // namespace poolwatch

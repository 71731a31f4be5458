// Runs 100 frames of its own loop on an instrumented pool, leaking a held buffer every tenth
// frame, and prints the metrics as Prometheus would scrape them.
#include <poolwatch/buffer_pool.h>
#include <poolwatch/health_monitor.h>
#include <poolwatch/metrics_publisher.h>
#include <poolwatch/simulation_loop.h>
#include <poolwatch/version.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <iostream>

int main() {
  using namespace std::chrono_literals;
  poolwatch::BufferPool pool({.max_bytes = 1 << 20});
  poolwatch::HealthMonitor monitor({.loop = "sim", .period = 1ms});
  monitor.AddPool("consumer", pool);
  poolwatch::MetricsPublisher publisher({.top_sites = 3});
  publisher.Attach(monitor);
  poolwatch::ManualClock clock;
  poolwatch::SimulationLoop loop(clock, monitor, [&](std::uint64_t frame) {
    poolwatch::Buffer scratch = pool.Alloc(poolwatch::BufferFormat::kF32, 256, "consumer.scratch");
    std::ranges::fill(scratch.As<float>(), static_cast<float>(frame));
    if (frame % 10 == 0) pool.Acquire(poolwatch::BufferFormat::kU8, 64, "consumer.leak");
    clock.Advance(100us);
  });
  for (int i = 0; i < 100; ++i) loop.Tick();
  std::cout << "# poolwatch " << poolwatch::kVersion << "\n"
            << prometheus::TextSerializer().Serialize(publisher.Collect());
  return 0;
}

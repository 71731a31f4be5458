#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>

#include "poolwatch/buffer_pool.h"
#include "poolwatch/health_monitor.h"

namespace poolwatch {

// The loop's source of time. Tests drive a ManualClock; the daemon uses SteadyClock.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point Now() = 0;
  // Sleeps until `deadline`; returns early, false, once `stop` is requested.
  virtual bool SleepUntil(time_point deadline, const std::stop_token& stop) = 0;
};

class SteadyClock final : public Clock {
 public:
  time_point Now() override { return std::chrono::steady_clock::now(); }
  bool SleepUntil(time_point deadline, const std::stop_token& stop) override;

 private:
  std::mutex mutex_;
  std::condition_variable_any wake_;
};

// Time moves only when told: SleepUntil jumps to the deadline, Advance() simulates work.
// Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point{}) : now_(start.time_since_epoch().count()) {}
  time_point Now() override { return time_point{time_point::duration{now_.load()}}; }
  bool SleepUntil(time_point deadline, const std::stop_token& stop) override;
  void Advance(std::chrono::nanoseconds d) { now_ += d.count(); }

 private:
  std::atomic<time_point::rep> now_;
};

struct LoopOptions {
  std::chrono::nanoseconds period = std::chrono::nanoseconds{16'666'667};  // 60 Hz
};

// A fixed-tick loop. Each tick waits for its deadline (deadlines advance by exactly one period,
// so work time never adds drift), then runs the frame:
//
//   executeFrame → RecordFrameTime → pool.ReleaseAll → RecordPoolStats → snapshot if due
//
// A frame that ends after the next deadline is an overrun. If it ends more than a whole period
// late, the ticks it missed are skipped, not run back to back: the loop resumes on its grid
// with at most one late tick, so a burst of slow frames cannot start a catch-up spiral.
//
// Thread-safety: Tick()/Run() on one thread, which then owns the pool and the monitor's
// subscribers' calls. LastTickTime() may be read from any thread.
class SimulationLoop {
 public:
  using FrameFunction = std::function<void(BufferPool& pool, std::uint64_t frame)>;

  SimulationLoop(LoopOptions options, Clock& clock, BufferPool& pool, HealthMonitor& monitor,
                 FrameFunction execute_frame);

  // Runs one tick. False if stop was requested while waiting for the deadline (no frame ran).
  bool Tick(const std::stop_token& stop = {});
  // Ticks until stop is requested; a frame under way is finished first.
  void Run(const std::stop_token& stop);

  const RuntimeState& state() const { return state_; }
  Clock::time_point next_deadline() const { return deadline_; }
  // End of the last completed frame; the epoch before the first.
  Clock::time_point LastTickTime() const {
    return Clock::time_point{Clock::time_point::duration{last_tick_.load()}};
  }

 private:
  LoopOptions options_;
  Clock& clock_;
  BufferPool& pool_;
  HealthMonitor& monitor_;
  FrameFunction execute_frame_;
  RuntimeState state_;
  bool started_ = false;
  Clock::time_point deadline_{};
  std::atomic<Clock::time_point::rep> last_tick_{0};
};

}  // namespace poolwatch

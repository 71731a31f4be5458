#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>

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

// A fixed-tick loop over a HealthMonitor and the pools it holds. Each tick waits for its
// deadline (deadlines advance by exactly one period, the monitor's, so work time never adds
// drift), runs the frame, then ends it with the monitor's one call:
//
//   execute_frame(frame) → monitor.EndFrame(timing): every pool's EndFrame, stats, snapshot
//
// A frame that ends after the next deadline is an overrun. If it ends more than a whole period
// late, the ticks it missed are skipped, not run back to back: the loop resumes on its grid
// with at most one late tick, so a burst of slow frames cannot start a catch-up spiral.
//
// Thread-safety: Tick()/Run() on one thread, which then owns the monitor, its pools and its
// subscribers' calls. LastTickTime() may be read from any thread. Several loops, each on its
// own thread with its own monitor and pools, share nothing.
class SimulationLoop {
 public:
  // Runs one frame; `frame` counts from 0. The pools are the ones the frame function knows.
  using FrameFunction = std::function<void(std::uint64_t frame)>;

  SimulationLoop(Clock& clock, HealthMonitor& monitor, FrameFunction execute_frame);

  // Runs one tick. False if stop was requested while waiting for the deadline (no frame ran).
  bool Tick(const std::stop_token& stop = {});
  // Ticks until stop is requested; a frame under way is finished first.
  void Run(const std::stop_token& stop);

  const LoopStats& stats() const { return monitor_.stats(); }
  Clock::time_point next_deadline() const { return deadline_; }
  // End of the last completed frame; the epoch before the first.
  Clock::time_point LastTickTime() const {
    return Clock::time_point{Clock::time_point::duration{last_tick_.load()}};
  }

 private:
  Clock& clock_;
  HealthMonitor& monitor_;
  FrameFunction execute_frame_;
  bool started_ = false;
  Clock::time_point deadline_{};
  std::atomic<Clock::time_point::rep> last_tick_{0};
};

}  // namespace poolwatch

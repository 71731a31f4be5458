#include "poolwatch/simulation_loop.h"

#include <utility>

namespace poolwatch {

bool SteadyClock::SleepUntil(time_point deadline, const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  // Wakes at the deadline, or at once when stop is requested (the stop_token overload).
  wake_.wait_until(lock, stop, deadline, [] { return false; });
  return !stop.stop_requested();
}

bool ManualClock::SleepUntil(time_point deadline, const std::stop_token& stop) {
  if (stop.stop_requested()) return false;
  time_point::rep now = now_.load();
  const time_point::rep target = deadline.time_since_epoch().count();
  while (now < target && !now_.compare_exchange_weak(now, target)) {
  }
  return true;
}

SimulationLoop::SimulationLoop(Clock& clock, HealthMonitor& monitor, FrameFunction execute_frame)
    : clock_(clock), monitor_(monitor), execute_frame_(std::move(execute_frame)) {}

bool SimulationLoop::Tick(const std::stop_token& stop) {
  if (!started_) {
    deadline_ = clock_.Now();
    started_ = true;
  }
  if (!clock_.SleepUntil(deadline_, stop)) return false;

  const Clock::time_point start = clock_.Now();
  execute_frame_(monitor_.stats().frames);
  const Clock::time_point end = clock_.Now();

  const std::chrono::nanoseconds period = monitor_.period();
  Clock::time_point next = deadline_ + period;
  const bool overrun = end > next;
  if (overrun) next += ((end - next) / period) * period;
  monitor_.EndFrame({.duration = end - start, .lateness = start - deadline_, .overrun = overrun});
  deadline_ = next;
  last_tick_.store(end.time_since_epoch().count());
  return true;
}

void SimulationLoop::Run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    if (!Tick(stop)) break;
  }
}

}  // namespace poolwatch

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

SimulationLoop::SimulationLoop(LoopOptions options, Clock& clock, BufferPool& pool,
                               HealthMonitor& monitor, FrameFunction execute_frame)
    : options_(options),
      clock_(clock),
      pool_(pool),
      monitor_(monitor),
      execute_frame_(std::move(execute_frame)) {
  state_.frame_duration =
      DurationHistogram(DurationHistogram::BucketsAroundBudget(options_.period));
  state_.tick_lateness = DurationHistogram(DurationHistogram::LatenessBuckets());
}

bool SimulationLoop::Tick(const std::stop_token& stop) {
  if (!started_) {
    deadline_ = clock_.Now();
    started_ = true;
  }
  if (!clock_.SleepUntil(deadline_, stop)) return false;

  const Clock::time_point start = clock_.Now();
  HealthMonitor::RecordTickLateness(state_, start - deadline_);
  execute_frame_(pool_, pool_.CurrentFrame());
  const Clock::time_point end = clock_.Now();
  HealthMonitor::RecordFrameTime(state_, end - start);
  pool_.ReleaseAll();
  HealthMonitor::RecordPoolStats(state_, pool_);

  Clock::time_point next = deadline_ + options_.period;
  if (end > next) {
    HealthMonitor::RecordOverrun(state_);
    const auto missed_periods = (end - next) / options_.period;
    next += missed_periods * options_.period;
  }
  deadline_ = next;

  if (monitor_.ShouldEmitSnapshot(state_)) monitor_.EmitHealthSnapshot(state_);
  last_tick_.store(end.time_since_epoch().count());
  return true;
}

void SimulationLoop::Run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    if (!Tick(stop)) break;
  }
}

}  // namespace poolwatch

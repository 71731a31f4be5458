// poolwatchd: wiring only. Parse flags, load the config, start the loops and the exporter, and
// turn signals into reloads and a drained stop.
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "logging.h"
#include "poolwatch/alert_rules.h"
#include "poolwatch/exporter/exporter.h"
#include "poolwatch/version.h"
#include "systemd_notify.h"

using namespace poolwatch::daemon;

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

using Clock = std::chrono::steady_clock;

// The next of `signals`, or 0 when `timeout` passed first.
int WaitForSignal(const sigset_t& signals, std::optional<Clock::duration> timeout) {
  if (!timeout) {
    int signal = 0;
    return sigwait(&signals, &signal) == 0 ? signal : 0;
  }
  const auto seconds = std::chrono::floor<std::chrono::seconds>(*timeout);
  timespec wait{};
  wait.tv_sec = seconds.count();
  wait.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout - seconds).count();
  const int signal = sigtimedwait(&signals, nullptr, &wait);
  return signal > 0 ? signal : 0;  // EAGAIN: the time passed; EINTR: look again
}

void Tell(SystemdNotifier& systemd, const std::string& state) {
  if (const std::string problem = systemd.Notify(state); !problem.empty()) {
    spdlog::warn("{}", problem);
  }
}

// Reloads on SIGHUP until SIGTERM or SIGINT, which it returns. Under systemd, says so around
// each reload; with its watchdog, feeds it at the interval asked while the loops tick (what
// /healthz answers), so that systemd restarts a daemon whose loops stopped.
int ServeUntilStopped(Daemon& daemon, const sigset_t& signals, SystemdNotifier& systemd,
                      const std::string& serving) {
  const std::optional<Clock::duration> interval = systemd.watchdog_interval();
  Clock::time_point next_feed = Clock::now();
  bool starving = false;
  std::string status = serving;
  for (;;) {
    if (interval && Clock::now() >= next_feed) {
      next_feed = Clock::now() + *interval;
      const poolwatch::exporter::Probe alive = daemon.exporter().Liveness();
      if (alive.ok) {
        Tell(systemd, starving ? "WATCHDOG=1\nSTATUS=" + status : "WATCHDOG=1");
        if (starving) spdlog::info("alive again: feeding systemd's watchdog again");
      } else if (!starving) {
        spdlog::error("not alive ({}): systemd's watchdog is no longer fed", alive.detail);
        Tell(systemd, "STATUS=not alive: " + alive.detail);
      }
      starving = !alive.ok;
    }
    const int signal = WaitForSignal(
        signals, interval ? std::optional(std::max(next_feed - Clock::now(), Clock::duration{}))
                          : std::nullopt);
    if (signal == 0) continue;
    if (signal != SIGHUP) return signal;
    spdlog::info("received SIGHUP, reloading the config");
    Tell(systemd, SystemdNotifier::Reloading());
    status = serving + (daemon.Reload() ? "" : "; the last reload was refused, see the log");
    Tell(systemd, "READY=1\nSTATUS=" + status);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CliOptions cli;
  try {
    cli = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "poolwatchd: " << e.what() << "\n";
    return kExitUsage;
  }
  if (cli.help || cli.version || cli.print_rules) {
    std::cout << (cli.help      ? UsageText()
                  : cli.version ? VersionText()
                                : poolwatch::PrometheusRuleFile({}));
    return 0;
  }

  Config config;
  try {
    config = LoadConfig(cli.config_path, cli.overrides);
  } catch (const ConfigError& e) {
    std::cerr << "poolwatchd: invalid config: " << e.what() << "\n";
    return kExitUsage;
  }
  if (cli.healthcheck) {
    const std::string problem = poolwatch::exporter::ProbeHealth(
        ParseListenAddress(config.http.listen), std::chrono::seconds{3}, config.web.get());
    if (!problem.empty()) {
      std::cerr << "poolwatchd: unhealthy: " << problem << "\n";
      // The daemon was given a web config that this check was not (a flag on one command line
      // and not on the other, as a container's HEALTHCHECK easily is).
      if (problem.find("an HTTP request to an HTTPS server") != std::string::npos) {
        std::cerr << "poolwatchd: it speaks TLS: give --healthcheck the daemon's web config too "
                     "(--web.config.file, or http.web_config_file in its --config)\n";
      }
      return kExitRuntime;
    }
    std::cout << "healthy\n";
    return 0;
  }
  if (cli.check_config) {
    std::cout << (cli.config_path.empty() ? "built-in defaults" : cli.config_path) << ": OK\n";
    return 0;
  }

  SetupLogging(config.log);
  // A write into a pipe whose reader has gone (a log shipper restarting, `poolwatchd | head`)
  // fails with EPIPE instead of killing the daemon: it goes on ticking and serving without its
  // log, as nginx and Redis do, and as systemd sets up its services (IgnoreSIGPIPE=).
  std::signal(SIGPIPE, SIG_IGN);
  // Reads the environment: before any thread starts.
  SystemdNotifier systemd;
  if (std::getenv("NOTIFY_SOCKET") != nullptr && !systemd.enabled()) {
    spdlog::warn("NOTIFY_SOCKET={}: not a socket address poolwatchd can notify",
                 std::getenv("NOTIFY_SOCKET"));
  }
  // Blocked before any thread starts, so every thread inherits the mask and the signals wait
  // for sigwait() below instead of taking their default action.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, signal);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  spdlog::info("poolwatchd {} (revision {}) starting", poolwatch::kVersion, poolwatch::kRevision);
  std::optional<Daemon> daemon;
  try {
    daemon.emplace(config, [cli] { return LoadConfig(cli.config_path, cli.overrides); });
    daemon->Start();
  } catch (const std::exception& e) {  // cannot bind, typically
    spdlog::critical("{}", e.what());
    return kExitRuntime;
  }

  std::size_t pools = 0;
  for (const LoopConfig& loop : config.loops) pools += loop.pools.size();
  const std::string serving = "serving on " + daemon->exporter().local_address() + ", " +
                              std::to_string(config.loops.size()) + " loop(s), " +
                              std::to_string(pools) + " pool(s)";
  Tell(systemd, "READY=1\nSTATUS=" + serving);
  if (systemd.watchdog_interval()) {
    spdlog::info("feeding systemd's watchdog every {} ms while the loops tick",
                 std::chrono::duration_cast<std::chrono::milliseconds>(*systemd.watchdog_interval())
                     .count());
  }

  const int signal = ServeUntilStopped(*daemon, signals, systemd, serving);
  spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  Tell(systemd, "STOPPING=1");
  daemon->Stop();
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

// poolwatchd: wiring only. Parse flags, load the config, start the loops and the exporter, and
// turn signals into reloads and a drained stop.
#include <spdlog/spdlog.h>

#include <csignal>
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

using namespace poolwatch::daemon;

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

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

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    spdlog::info("received SIGHUP, reloading the config");
    daemon->Reload();
  }
  spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  daemon->Stop();
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

// poolwatchd: wiring only. Parse flags, load the config, start the tick loop and the HTTP
// server, and turn signals into stop and reload.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "http_server.h"
#include "logging.h"
#include "poolwatch/alert_rules.h"
#include "poolwatch/version.h"
#include "web_config.h"

namespace asio = boost::asio;
using namespace poolwatch::daemon;

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Re-arms itself: every SIGHUP reloads.
void WaitForReload(asio::signal_set& signals, Daemon& daemon) {
  signals.async_wait([&signals, &daemon](const boost::system::error_code& ec, int) {
    if (ec) return;
    spdlog::info("received SIGHUP, reloading the config");
    daemon.Reload();
    WaitForReload(signals, daemon);
  });
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
  if (cli.help) {
    std::cout << UsageText();
    return 0;
  }
  if (cli.version) {
    std::cout << "poolwatchd " << poolwatch::kVersion << " (revision " << poolwatch::kRevision
              << ", " << poolwatch::kCompiler << ")\n";
    return 0;
  }

  if (cli.print_rules) {
    std::cout << poolwatch::PrometheusRuleFile({});
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
    const bool tls = config.web && config.web->tls_context() != nullptr;
    const std::string problem =
        ProbeHealth(ParseListenAddress(config.http.listen), std::chrono::seconds{3}, tls);
    if (!problem.empty()) {
      std::cerr << "poolwatchd: unhealthy: " << problem << "\n";
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
  asio::io_context io{1};
  // Signal handling is in place before any thread starts, so no signal finds the default action.
  asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  asio::signal_set reload_signals(io, SIGHUP);

  Daemon daemon(config, [cli] { return LoadConfig(cli.config_path, cli.overrides); });
  std::optional<HttpServer> server;
  try {
    server.emplace(io, ParseListenAddress(config.http.listen), config.http, daemon.handler(),
                   config.web);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return kExitRuntime;
  }

  daemon.Start();
  server->Start();
  spdlog::info("poolwatchd {} listening on {} ({})", poolwatch::kVersion, server->local_address(),
               config.web ? config.web->Describe() : "plain HTTP");
  daemon.OnReload([&server](const Config& reloaded) {
    server->SetWebSecurity(reloaded.web);
    spdlog::info("web config: {}", reloaded.web ? reloaded.web->Describe() : "plain HTTP");
  });

  stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon.Stop();
    server->Stop();
    reload_signals.cancel();
    io.stop();
  });
  WaitForReload(reload_signals, daemon);

  io.run();
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

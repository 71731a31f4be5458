#include "cli.h"

#include <optional>
#include <set>

#include "poolwatch/version.h"

namespace poolwatch::daemon {

CliOptions ParseCommandLine(const std::vector<std::string>& args) {
  CliOptions options;
  std::set<std::string> given;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (const std::size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    // As Prometheus's own flags: a flag given twice is a mistake (two scripts each adding their
    // --listen, say), not a choice of the last.
    if (flag == "-h") flag = "--help";
    if (flag.starts_with("--") && !given.insert(flag).second) {
      throw UsageError(flag + ": given twice");
    }
    const auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
      return args[++i];
    };
    const auto no_value = [&](bool& out) {
      if (inline_value) throw UsageError(flag + " takes no value");
      out = true;
    };

    if (flag == "--config") {
      options.config_path = value();
      if (options.config_path.empty()) throw UsageError("--config needs a file name");
    } else if (flag == "--check-config") {
      no_value(options.check_config);
    } else if (flag == "--healthcheck") {
      no_value(options.healthcheck);
    } else if (flag == "--print-rules") {
      no_value(options.print_rules);
    } else if (flag == "--version") {
      no_value(options.version);
    } else if (flag == "--help") {
      no_value(options.help);
    } else if (flag == "--listen") {
      std::string listen = value();
      try {
        ParseListenAddress(listen, "--listen");
      } catch (const ConfigError& e) {
        throw UsageError(e.what());
      }
      options.overrides.listen = listen;
    } else if (flag == "--web.config.file") {
      options.overrides.web_config_file = value();
    } else if (flag == "--log-level") {
      std::string level = value();
      if (!IsLogLevel(level)) {
        throw UsageError(
            "--log-level: must be one of trace, debug, info, warn, error, critical, "
            "off, got \"" +
            level + "\"");
      }
      options.overrides.log_level = level;
    } else if (flag == "--scenario") {
      std::string scenario = value();
      if (!ParseScenario(scenario)) {
        throw UsageError("--scenario: must be one of steady, leak, bloat, spike, got \"" +
                         scenario + "\"");
      }
      options.overrides.scenario = scenario;
    } else {
      throw UsageError("unknown argument \"" + args[i] + "\" (see --help)");
    }
  }
  return options;
}

std::string VersionText() {
  return std::string("poolwatchd ") + kVersion + " (revision " + kRevision + ", " + kCompiler +
         ")\n";
}

std::string UsageText() {
  return R"(Usage: poolwatchd [OPTIONS]

Runs the poolwatch reference simulation on a fixed tick and serves its buffer-pool
metrics for Prometheus.

Options:
  --config FILE       JSON configuration (default: the built-in defaults, which the shipped
                      config/poolwatchd.json states)
  --check-config      validate the configuration, print the verdict, exit 0 or 2
  --listen ADDR:PORT  listen address, overrides http.listen (":9720" = all interfaces)
  --web.config.file FILE
                      TLS and basic auth in the Prometheus exporter-toolkit format; overrides
                      http.web_config_file (see docs/security.md)
  --log-level LEVEL   trace, debug, info, warn, error, critical or off; overrides log.level
  --scenario NAME     steady, leak, bloat or spike; overrides every pool's scenario
  --print-rules       print the Prometheus alerting and fleet recording rules
                      (config/prometheus/poolwatch.rules.yml)
  --healthcheck       ask the running poolwatchd (at the configured listen port, on
                      loopback) for /healthz; exit 0 if healthy, 1 if not (for HEALTHCHECK)
  --version           print the version and exit
  --help              print this help and exit

Signals: SIGTERM/SIGINT stop after the current frame; SIGHUP reloads the configuration.
Exit codes: 0 success, 1 runtime failure (e.g. address in use), 2 bad flags or configuration.
Endpoints: /metrics /healthz /readyz /debug /debug/health, POST /debug/mark?name=NAME, /
)";
}

}  // namespace poolwatch::daemon

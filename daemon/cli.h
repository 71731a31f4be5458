#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"

namespace poolwatch::daemon {

// Bad command-line usage; what() says what is wrong. main exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliOptions {
  std::string config_path;  // empty: the built-in defaults (what config/poolwatchd.json states)
  bool check_config = false;
  bool print_rules = false;
  bool healthcheck = false;
  bool version = false;
  bool help = false;
  ConfigOverrides overrides;
};

// Parses argv (without the program name). Accepts "--flag value" and "--flag=value".
CliOptions ParseCommandLine(const std::vector<std::string>& args);

std::string UsageText();
// "poolwatchd 0.1.0 (revision abc, GCC 12.2.0)\n"
std::string VersionText();

}  // namespace poolwatch::daemon

#pragma once

#include "config.h"

namespace poolwatch::daemon {

// Makes the default spdlog logger write to stderr, as text or JSON lines, at the given level.
// Call once at start-up, before other threads log.
void SetupLogging(const LogOptions& options);

// Changes the level at run time (on reload). Thread-safe.
void SetLogLevel(const std::string& level);

}  // namespace poolwatch::daemon

#pragma once

#include <string>

#include "poolwatch/diagnostics_store.h"

namespace poolwatch::daemon {

struct DebugContext {
  std::string pool;     // the pool label
  double tick_hz = 60;  // for ages in seconds
};

// /debug/health: the DiagnosticsStore's report as JSON (schema in docs/debug.md).
std::string DebugHealthJson(const DiagnosticsReport& report, const DebugContext& context);

// /debug: a self-contained HTML page (inline CSS and SVG, no scripts or external assets) that
// refreshes itself: verdicts, charts of the recent history, the attribution table.
std::string DebugPageHtml(const DiagnosticsReport& report, const DebugContext& context);

}  // namespace poolwatch::daemon

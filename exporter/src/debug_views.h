#pragma once

#include <string>
#include <vector>

#include "poolwatch/diagnostics_store.h"

namespace poolwatch::exporter {

// /debug/health: every pool's DiagnosticsStore report as JSON, in a `pools` array (schema in
// docs/debug.md).
std::string DebugHealthJson(const std::vector<DiagnosticsReport>& reports);

// /debug: a self-contained HTML page (inline CSS and SVG, no scripts or external assets) that
// refreshes itself: a summary of every pool, then per pool its verdicts, charts of the recent
// history and the attribution table.
std::string DebugPageHtml(const std::vector<DiagnosticsReport>& reports);

}  // namespace poolwatch::exporter

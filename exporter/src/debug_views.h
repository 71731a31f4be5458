#pragma once

#include <string>
#include <vector>

#include "poolwatch/diagnostics_store.h"
#include "poolwatch/mark_board.h"

namespace poolwatch::exporter {

// /debug/health: every pool's DiagnosticsStore report as JSON, in a `pools` array, with the
// marks (schema in docs/debug.md). Call stacks are symbolized on the calling thread.
std::string DebugHealthJson(const std::vector<DiagnosticsReport>& reports,
                            const std::vector<Mark>& marks);

// /debug: a self-contained HTML page (inline CSS and SVG, no scripts or external assets) that
// refreshes itself: a summary of every pool, then per pool its verdicts, charts of the recent
// history and the attribution table.
std::string DebugPageHtml(const std::vector<DiagnosticsReport>& reports,
                          const std::vector<Mark>& marks);

}  // namespace poolwatch::exporter

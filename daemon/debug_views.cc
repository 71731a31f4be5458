#include "debug_views.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rfc3339.h"

namespace poolwatch::daemon {

namespace {

using nlohmann::json;

// Empty for a time never set (a verdict before its first evaluation).
std::string Rfc3339(std::chrono::system_clock::time_point time) {
  return time == std::chrono::system_clock::time_point{} ? "" : Rfc3339Utc(time);
}

std::string ConditionName(ConditionKind kind) {
  switch (kind) {
    case ConditionKind::kImbalance:
      return "imbalance";
    case ConditionKind::kPooledBytes:
      return "pooled_bytes";
    case ConditionKind::kKeys:
      return "pool_keys";
    case ConditionKind::kOverrunRatio:
      return "overrun_ratio";
  }
  return "";
}

std::string Site(const char* site) { return site != nullptr ? site : "(untagged)"; }

// Groups of the same site text (possibly at several addresses) and format, merged.
struct Row {
  std::string site;
  std::string format;
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  std::uint64_t oldest_frame = 0;
};

std::vector<Row> Attribution(const HealthSnapshot& latest) {
  std::map<std::pair<std::string, std::string>, Row> merged;
  for (const OutstandingGroup& g : latest.outstanding) {
    const std::string site = Site(g.site);
    const std::string format(FormatName(g.format));
    auto [it, added] = merged.try_emplace({site, format}, Row{site, format, 0, 0, g.oldest_frame});
    it->second.count += g.count;
    it->second.bytes += g.bytes;
    it->second.oldest_frame = std::min(it->second.oldest_frame, g.oldest_frame);
  }
  std::vector<Row> rows;
  rows.reserve(merged.size());
  for (auto& [key, row] : merged) rows.push_back(row);
  // Most bytes first: the likeliest leak at the top.
  std::ranges::sort(rows, [](const Row& a, const Row& b) { return a.bytes > b.bytes; });
  return rows;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

std::string Plain(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

std::string Millis(double seconds) { return Plain(seconds * 1000) + " ms"; }

struct Series {
  std::string name;
  std::string color;
  std::vector<double> values;
};

// A line chart as inline SVG: one polyline per series, y from 0 to the largest value.
std::string Chart(const std::string& id, const std::string& title,
                  const std::function<std::string(double)>& format,
                  const std::vector<Series>& series) {
  constexpr double kWidth = 480;
  constexpr double kHeight = 150;
  constexpr double kLeft = 70;
  constexpr double kTop = 10;
  double max = 0;
  std::size_t points = 0;
  for (const Series& s : series) {
    for (double v : s.values) max = std::max(max, v);
    points = std::max(points, s.values.size());
  }
  if (max <= 0) max = 1;
  std::ostringstream svg;
  svg << "<figure class=\"chart\"><figcaption>" << Escape(title) << "</figcaption>"
      << "<svg id=\"" << id << "\" role=\"img\" aria-label=\"" << Escape(title)
      << "\" viewBox=\"0 0 " << kWidth + kLeft + 10 << " " << kHeight + kTop + 20 << "\" width=\""
      << kWidth + kLeft + 10 << "\" height=\"" << kHeight + kTop + 20 << "\">"
      << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kWidth << "\" height=\""
      << kHeight << "\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
      << "<text x=\"" << kLeft - 4 << "\" y=\"" << kTop + 10
      << "\" text-anchor=\"end\" class=\"axis\">" << Escape(format(max)) << "</text>"
      << "<text x=\"" << kLeft - 4 << "\" y=\"" << kTop + kHeight
      << "\" text-anchor=\"end\" class=\"axis\">" << Escape(format(0)) << "</text>";
  double legend_x = kLeft;
  for (const Series& s : series) {
    svg << "<polyline class=\"series\" data-series=\"" << Escape(s.name)
        << "\" fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"";
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      const double x =
          kLeft +
          (points > 1 ? kWidth * static_cast<double>(i) / static_cast<double>(points - 1) : 0);
      const double y = kTop + kHeight - kHeight * s.values[i] / max;
      svg << (i == 0 ? "" : " ") << Plain(x) << "," << Plain(y);
    }
    svg << "\"/><text x=\"" << legend_x << "\" y=\"" << kTop + kHeight + 16 << "\" fill=\""
        << s.color << "\" class=\"legend\">&#9632; " << Escape(s.name) << " "
        << Escape(format(s.values.empty() ? 0 : s.values.back())) << "</text>";
    legend_x += 170;
  }
  svg << "</svg></figure>\n";
  return svg.str();
}

std::vector<double> Column(const std::vector<HistoryPoint>& history,
                           const std::function<double(const HistoryPoint&)>& field) {
  std::vector<double> values;
  values.reserve(history.size());
  for (const HistoryPoint& p : history) values.push_back(field(p));
  return values;
}

constexpr const char* kStyle = R"(
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1300px}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e6f4ea} .warning{background:#fff4ce} .critical{background:#fde2e1;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figcaption{font-weight:600;font-size:.9em}
.axis,.legend{font-size:11px;font-family:system-ui,sans-serif} .muted{color:#777;font-size:.85em}
)";

}  // namespace

std::string DebugHealthJson(const DiagnosticsReport& report, const DebugContext& context) {
  json out;
  out["pool"] = context.pool;
  out["tick_hz"] = context.tick_hz;
  if (!report.latest) {
    out["latest"] = nullptr;
  } else {
    const HealthSnapshot& s = *report.latest;
    out["latest"] = {
        {"sequence", s.sequence},
        {"frame", s.pool.last_frame.frame},
        {"time", Rfc3339(s.time)},
        {"timing",
         {{"frames_total", s.health.frames},
          {"overruns_total", s.health.overruns},
          {"last_frame_seconds", s.health.last_frame_seconds},
          {"last_tick_lateness_seconds", s.health.last_tick_lateness_seconds}}},
        {"memory",
         {{"pool_allocs", s.health.pool_allocs},
          {"pool_releases", s.health.pool_releases},
          {"pooled_bytes", s.health.pooled_bytes},
          {"pool_key_count", s.health.pool_key_count},
          {"imbalance", s.pool.last_frame.Imbalance()},
          {"misses_total", s.pool.misses_total},
          {"outstanding_buffers", s.pool.outstanding_buffers},
          {"in_use_bytes", s.pool.in_use_bytes},
          {"allocations_total", s.pool.allocations_total},
          {"releases_total", s.pool.releases_total},
          {"allocation_failures_total", s.pool.allocation_failures_total},
          {"trimmed_bytes_total", s.pool.trimmed_bytes_total}}},
    };
  }
  out["verdicts"] = json::array();
  for (const Verdict& v : report.verdicts) {
    out["verdicts"].push_back(
        {{"alert", v.alert},
         {"condition", ConditionName(v.kind)},
         {"value", v.value},
         {"severity", SeverityName(v.severity)},
         {"pending", v.pending == Severity::kOk ? json(nullptr) : json(SeverityName(v.pending))},
         {"since", Rfc3339(v.since)}});
  }
  out["attribution"] = json::array();
  if (report.latest) {
    const std::uint64_t frame = report.latest->pool.last_frame.frame;
    for (const Row& row : Attribution(*report.latest)) {
      const std::uint64_t age = frame - row.oldest_frame;
      out["attribution"].push_back(
          {{"site", row.site},
           {"format", row.format},
           {"count", row.count},
           {"bytes", row.bytes},
           {"oldest_frame", row.oldest_frame},
           {"oldest_age_frames", age},
           {"oldest_age_seconds", static_cast<double>(age) / context.tick_hz}});
    }
  }
  out["history"] = json::array();
  for (const HistoryPoint& p : report.history) {
    out["history"].push_back({{"time", Rfc3339(p.time)},
                              {"frame", p.frame},
                              {"pooled_bytes", p.pooled_bytes},
                              {"in_use_bytes", p.in_use_bytes},
                              {"pool_key_count", p.keys},
                              {"outstanding_buffers", p.outstanding_buffers},
                              {"pool_allocs", p.frame_allocations},
                              {"pool_releases", p.frame_releases},
                              {"frame_seconds", p.frame_seconds}});
  }
  return out.dump(2) + "\n";
}

std::string DebugPageHtml(const DiagnosticsReport& report, const DebugContext& context) {
  std::ostringstream html;
  html << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       << "<meta http-equiv=\"refresh\" content=\"2\">"
       << "<title>poolwatchd debug: " << Escape(context.pool) << "</title><style>" << kStyle
       << "</style></head><body>\n<h1>poolwatchd &mdash; pool " << Escape(context.pool)
       << "</h1>\n";
  if (!report.latest) {
    html << "<p>No frame completed yet.</p></body></html>\n";
    return html.str();
  }
  const HealthSnapshot& s = *report.latest;
  html << "<p class=\"muted\">frame " << s.pool.last_frame.frame << " at " << Rfc3339(s.time)
       << " &middot; refreshes every 2 s &middot; <a href=\"debug/health\">JSON</a> &middot; "
       << "<a href=\"metrics\">metrics</a></p>\n";

  html << "<h2>Verdicts</h2>\n<table id=\"verdicts\"><tr><th>alert</th><th>value</th>"
       << "<th>verdict</th><th>pending</th><th>since</th></tr>\n";
  for (const Verdict& v : report.verdicts) {
    const std::string value =
        v.kind == ConditionKind::kPooledBytes ? Bytes(v.value) : Plain(v.value);
    html << "<tr class=\"" << SeverityName(v.severity) << "\"><td>" << v.alert
         << "</td><td class=\"num\">" << value << "</td><td>" << SeverityName(v.severity)
         << "</td><td>" << (v.pending == Severity::kOk ? "" : SeverityName(v.pending))
         << "</td><td>" << Rfc3339(v.since) << "</td></tr>\n";
  }
  html << "</table>\n";

  html << "<h2>Last frame</h2>\n<table id=\"latest\"><tr><th>allocations</th><th>releases</th>"
       << "<th>imbalance</th><th>pooled</th><th>in use</th><th>keys</th><th>outstanding</th>"
       << "<th>misses</th><th>refused</th><th>frame time</th></tr><tr>"
       << "<td class=\"num\">" << s.health.pool_allocs << "</td><td class=\"num\">"
       << s.health.pool_releases << "</td><td class=\"num\">" << s.pool.last_frame.Imbalance()
       << "</td><td class=\"num\">" << Bytes(static_cast<double>(s.health.pooled_bytes))
       << "</td><td class=\"num\">" << Bytes(static_cast<double>(s.pool.in_use_bytes))
       << "</td><td class=\"num\">" << s.health.pool_key_count << "</td><td class=\"num\">"
       << s.pool.outstanding_buffers << "</td><td class=\"num\">" << s.pool.misses_total
       << "</td><td class=\"num\">" << s.pool.allocation_failures_total << "</td><td class=\"num\">"
       << Millis(s.health.last_frame_seconds) << "</td></tr></table>\n";

  html << "<h2>Outstanding buffers by site</h2>\n";
  const std::vector<Row> rows = Attribution(s);
  if (rows.empty()) {
    html << "<p id=\"attribution-empty\">No buffer is held across frames.</p>\n";
  } else {
    html << "<table id=\"attribution\"><tr><th>site</th><th>format</th><th>count</th>"
         << "<th>bytes</th><th>oldest age</th></tr>\n";
    for (const Row& row : rows) {
      const std::uint64_t age = s.pool.last_frame.frame - row.oldest_frame;
      html << "<tr class=\"site\" data-site=\"" << Escape(row.site) << "\"><td>" << Escape(row.site)
           << "</td><td>" << row.format << "</td><td class=\"num\">" << row.count
           << "</td><td class=\"num\">" << Bytes(static_cast<double>(row.bytes))
           << "</td><td class=\"num\">" << age << " frames ("
           << Plain(static_cast<double>(age) / context.tick_hz) << " s)</td></tr>\n";
    }
    html << "</table>\n";
  }
  const auto& h = report.history;
  const auto bytes = [](double v) { return Bytes(v); };
  html << "<h2>Recent history</h2>\n<div class=\"charts\">\n"
       << Chart("chart-bytes", "Pooled vs in-use bytes", bytes,
                {{"pooled", "#1f77b4", Column(h, [](auto& p) { return double(p.pooled_bytes); })},
                 {"in use", "#ff7f0e", Column(h, [](auto& p) { return double(p.in_use_bytes); })}})
       << Chart("chart-allocs", "Allocations vs releases per frame", Plain,
                {{"allocations", "#2ca02c",
                  Column(h, [](auto& p) { return double(p.frame_allocations); })},
                 {"releases", "#d62728",
                  Column(h, [](auto& p) { return double(p.frame_releases); })}})
       << Chart("chart-keys", "Pool keys", Plain,
                {{"keys", "#9467bd", Column(h, [](auto& p) { return double(p.keys); })}})
       << Chart("chart-frame-time", "Frame time", Millis,
                {{"frame time", "#8c564b", Column(h, [](auto& p) { return p.frame_seconds; })}})
       << "</div>\n";

  html << "</body></html>\n";
  return html.str();
}

}  // namespace poolwatch::daemon

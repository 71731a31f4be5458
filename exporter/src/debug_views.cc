#include "debug_views.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "poolwatch/call_stack.h"
#include "poolwatch/exporter/rfc3339.h"

namespace poolwatch::exporter {

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

std::vector<Row> Attribution(const PoolSnapshot& pool) {
  std::map<std::pair<std::string, std::string>, Row> merged;
  for (const OutstandingGroup& g : pool.outstanding) {
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
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.2em;margin:1.4em 0 .4em;border-top:1px solid #ccc;padding-top:.6em}
h3{font-size:1em;margin:1em 0 .4em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e6f4ea} .warning{background:#fff4ce} .critical{background:#fde2e1;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figcaption{font-weight:600;font-size:.9em}
.axis,.legend{font-size:11px;font-family:system-ui,sans-serif} .muted{color:#777;font-size:.85em}
)";

// The configured rate, not its nanosecond-rounded period's inverse (60, not 60.0000024).
double TickHz(const PoolHealth& health) {
  if (health.period.count() <= 0) return 0;
  return std::round(1e12 / static_cast<double>(health.period.count())) / 1000;
}

double AgeSeconds(std::uint64_t frames, const PoolHealth& health) {
  return std::chrono::duration<double>(health.period).count() * static_cast<double>(frames);
}

// One frame of a held buffer's call stack, symbolized.
struct Frame {
  std::uintptr_t address = 0;
  SourceLocation location;
};

// The stack's frames from the code that asked for the buffer outwards: the pool's own frames (a
// HeldBuffer's constructor, when not inlined) are left out. Symbolized on this thread (a page's),
// from the process's cache.
std::vector<Frame> Symbolize(const CallStack& stack) {
  std::vector<Frame> frames;
  for (const std::uintptr_t address : stack.Frames()) {
    SourceLocation location = Symbolizer::Shared().Resolve(address);
    const bool pool_internal = location.function.starts_with("poolwatch::") &&
                               (location.function.find("::HeldBuffer::") != std::string::npos ||
                                location.function.find("::BufferPool::") != std::string::npos);
    if (frames.empty() && pool_internal) continue;
    frames.push_back({address, std::move(location)});
  }
  return frames;
}

std::string Hex(std::uintptr_t address) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIxPTR, address);
  return text;
}

// "function", or the address when the symbol is not known.
std::string FunctionOf(const Frame& frame) {
  return frame.location.function.empty() ? Hex(frame.address) : frame.location.function;
}

// "file:line", or empty without debug information.
std::string PlaceOf(const Frame& frame) {
  if (frame.location.file.empty() || frame.location.line == 0) return "";
  return frame.location.file + ":" + std::to_string(frame.location.line);
}

json TallyJson(const HeldTally& tally) { return {{"count", tally.count}, {"bytes", tally.bytes}}; }

// `marked`: a mark's stacks, whose oldest frame is not known.
json StacksJson(const HeldStacks& stacks, const PoolHealth& h, bool marked) {
  json top = json::array();
  for (const HeldStack& stack : stacks.top) {
    const std::vector<Frame> frames = Symbolize(stack.stack);
    json entry = {{"function", frames.empty() ? "" : FunctionOf(frames.front())},
                  {"location", frames.empty() ? "" : PlaceOf(frames.front())},
                  {"site", stack.site != nullptr ? json(stack.site) : json(nullptr)},
                  {"count", stack.held.count},
                  {"bytes", stack.held.bytes}};
    if (!marked) {
      const std::uint64_t age = h.pool.stats.last_frame.frame + 1 - stack.oldest_frame;
      entry["oldest_age_seconds"] = AgeSeconds(age, h);
    }
    entry["frames"] = json::array();
    for (const Frame& frame : frames) {
      entry["frames"].push_back({{"address", Hex(frame.address)},
                                 {"function", frame.location.function},
                                 {"file", frame.location.file},
                                 {"line", frame.location.line}});
    }
    top.push_back(std::move(entry));
  }
  return {{"top", std::move(top)},
          {"other",
           {{"stacks", stacks.other_stacks},
            {"count", stacks.other.count},
            {"bytes", stacks.other.bytes}}},
          {"unsampled", TallyJson(stacks.unsampled)}};
}

const Mark* FindMark(const std::vector<Mark>& marks, std::uint64_t id) {
  const auto it = std::ranges::find(marks, id, &Mark::id);
  return it == marks.end() ? nullptr : &*it;
}

Severity Worst(const DiagnosticsReport& report) {
  Severity worst = Severity::kOk;
  for (const Verdict& v : report.verdicts) worst = std::max(worst, v.severity);
  return worst;
}

// "ok", "warning", or "ok, critical pending": a level on its way is worth seeing in the overview.
std::string WorstText(const DiagnosticsReport& report) {
  const Severity worst = Worst(report);
  Severity pending = Severity::kOk;
  for (const Verdict& v : report.verdicts) pending = std::max(pending, v.pending);
  std::string text(SeverityName(worst));
  if (pending > worst) text.append(", ").append(SeverityName(pending)).append(" pending");
  return text;
}

json PoolJson(const DiagnosticsReport& report, const std::vector<Mark>& marks) {
  json out;
  out["pool"] = report.pool;
  if (!report.latest) {
    out["loop"] = nullptr;
    out["tick_hz"] = nullptr;
    out["latest"] = nullptr;
  } else {
    const PoolHealth& h = *report.latest;
    const PoolStats& p = h.pool.stats;
    out["loop"] = h.loop;
    out["tick_hz"] = TickHz(h);
    out["latest"] = {
        {"sequence", h.sequence},
        {"frame", p.last_frame.frame},
        {"time", Rfc3339(h.time)},
        {"timing",
         {{"frames_total", h.timing.frames},
          {"overruns_total", h.timing.overruns},
          {"last_frame_seconds", h.timing.last_frame_seconds},
          {"last_tick_lateness_seconds", h.timing.last_tick_lateness_seconds}}},
        {"memory",
         {{"pool_allocs", p.last_frame.allocations},
          {"pool_releases", p.last_frame.releases},
          {"pooled_bytes", p.pooled_bytes},
          {"pool_key_count", p.keys},
          {"imbalance", p.last_frame.Imbalance()},
          {"misses_total", p.misses_total},
          {"outstanding_buffers", p.outstanding_buffers},
          {"in_use_bytes", p.in_use_bytes},
          {"allocations_total", p.allocations_total},
          {"releases_total", p.releases_total},
          {"allocation_failures_total", p.allocation_failures_total},
          {"trimmed_bytes_total", p.trimmed_bytes_total}}},
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
    const PoolHealth& h = *report.latest;
    const std::uint64_t frame = h.pool.stats.last_frame.frame;
    for (const Row& row : Attribution(h.pool)) {
      const std::uint64_t age = frame - row.oldest_frame;
      out["attribution"].push_back({{"site", row.site},
                                    {"format", row.format},
                                    {"count", row.count},
                                    {"bytes", row.bytes},
                                    {"oldest_frame", row.oldest_frame},
                                    {"oldest_age_frames", age},
                                    {"oldest_age_seconds", AgeSeconds(age, h)}});
    }
  }
  out["call_stacks"] = nullptr;
  out["ages"] = json::array();
  out["marks"] = json::array();
  if (report.latest) {
    const PoolHealth& h = *report.latest;
    out["call_stacks"] = StacksJson(h.pool.stacks, h, false);
    out["call_stacks"]["sampling"] = h.pool.stack_sampling;
    for (std::size_t i = 0; i < kHeldAgeBuckets; ++i) {
      json bucket = TallyJson(h.pool.ages[i]);
      bucket["age"] = kHeldAgeLabels[i];
      out["ages"].push_back(std::move(bucket));
    }
    for (const HeldSince& since : h.pool.marks) {
      const Mark* mark = FindMark(marks, since.mark);
      if (mark == nullptr) continue;  // dropped from the board since the snapshot
      json entry = {
          {"id", mark->id},       {"name", mark->name},        {"time", Rfc3339(mark->time)},
          {"frame", since.frame}, {"count", since.held.count}, {"bytes", since.held.bytes}};
      entry["sites"] = json::array();
      for (const OutstandingGroup& g : since.sites) {
        entry["sites"].push_back({{"site", Site(g.site)},
                                  {"format", FormatName(g.format)},
                                  {"count", g.count},
                                  {"bytes", g.bytes}});
      }
      entry["stacks"] = StacksJson(since.stacks, h, true);
      out["marks"].push_back(std::move(entry));
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
  return out;
}

// One pool's section of the page. Element ids carry the pool's position (`-0`, `-1`...), since a
// pool name may hold characters an id cannot; the name is in data-pool.
// A table of held buffers by call stack: per stack its innermost function and place, with the
// whole stack under it, folded.
void StacksTable(std::ostringstream& html, const HeldStacks& stacks, const PoolHealth& h,
                 bool marked, const std::string& id) {
  html << "<table class=\"stacks\" id=\"" << id << "\"><tr><th>function</th><th>at</th>"
       << "<th>count</th><th>bytes</th>" << (marked ? "" : "<th>oldest age</th>") << "</tr>\n";
  for (const HeldStack& stack : stacks.top) {
    const std::vector<Frame> frames = Symbolize(stack.stack);
    const std::string function = frames.empty() ? "(no frame)" : FunctionOf(frames.front());
    html << "<tr class=\"stack\" data-function=\"" << Escape(function)
         << "\"><td><details><summary>" << Escape(function) << "</summary><ol class=\"frames\">";
    for (const Frame& frame : frames) {
      const std::string place = PlaceOf(frame);
      html << "<li><code>" << Escape(FunctionOf(frame)) << "</code>"
           << (place.empty() ? "" : " <span class=\"muted\">" + Escape(place) + "</span>")
           << "</li>";
    }
    html << "</ol></details></td><td>"
         << Escape(frames.empty() ? std::string() : PlaceOf(frames.front()))
         << "</td><td class=\"num\">" << stack.held.count << "</td><td class=\"num\">"
         << Bytes(static_cast<double>(stack.held.bytes)) << "</td>";
    if (!marked) {
      const std::uint64_t age = h.pool.stats.last_frame.frame + 1 - stack.oldest_frame;
      html << "<td class=\"num\">" << Plain(AgeSeconds(age, h)) << " s</td>";
    }
    html << "</tr>\n";
  }
  const std::string blank = marked ? "" : "<td></td>";
  if (stacks.other_stacks != 0) {
    html << "<tr class=\"other\"><td>other (" << stacks.other_stacks
         << " stacks)</td><td></td><td class=\"num\">" << stacks.other.count
         << "</td><td class=\"num\">" << Bytes(static_cast<double>(stacks.other.bytes)) << "</td>"
         << blank << "</tr>\n";
  }
  if (stacks.unsampled.count != 0) {
    html << "<tr class=\"unsampled\"><td>not sampled</td><td></td><td class=\"num\">"
         << stacks.unsampled.count << "</td><td class=\"num\">"
         << Bytes(static_cast<double>(stacks.unsampled.bytes)) << "</td>" << blank << "</tr>\n";
  }
  html << "</table>\n";
}

void PoolSection(std::ostringstream& html, const DiagnosticsReport& report, std::size_t index,
                 const std::vector<Mark>& marks) {
  const std::string n = std::to_string(index);
  html << "<section class=\"pool\" id=\"pool-" << n << "\" data-pool=\"" << Escape(report.pool)
       << "\">\n<h2>Pool " << Escape(report.pool);
  if (!report.latest) {
    html << "</h2>\n<p>No frame completed yet.</p></section>\n";
    return;
  }
  const PoolHealth& h = *report.latest;
  const PoolStats& p = h.pool.stats;
  html << " <span class=\"muted\">loop " << Escape(h.loop) << " &middot; frame "
       << p.last_frame.frame << " at " << Rfc3339(h.time) << "</span></h2>\n";

  html
      << "<h3>Verdicts</h3>\n<table class=\"verdicts\" id=\"verdicts-" << n
      << "\"><tr><th>alert</th><th>value</th><th>verdict</th><th>pending</th><th>since</th></tr>\n";
  for (const Verdict& v : report.verdicts) {
    const std::string value =
        v.kind == ConditionKind::kPooledBytes ? Bytes(v.value) : Plain(v.value);
    html << "<tr class=\"" << SeverityName(v.severity) << "\"><td>" << v.alert
         << "</td><td class=\"num\">" << value << "</td><td>" << SeverityName(v.severity)
         << "</td><td>" << (v.pending == Severity::kOk ? "" : SeverityName(v.pending))
         << "</td><td>" << Rfc3339(v.since) << "</td></tr>\n";
  }
  html << "</table>\n";

  html << "<h3>Last frame</h3>\n<table id=\"latest-" << n
       << "\"><tr><th>allocations</th><th>releases</th><th>imbalance</th><th>pooled</th>"
       << "<th>in use</th><th>keys</th><th>outstanding</th><th>misses</th><th>refused</th>"
       << "<th>frame time</th></tr><tr><td class=\"num\">" << p.last_frame.allocations
       << "</td><td class=\"num\">" << p.last_frame.releases << "</td><td class=\"num\">"
       << p.last_frame.Imbalance() << "</td><td class=\"num\">"
       << Bytes(static_cast<double>(p.pooled_bytes)) << "</td><td class=\"num\">"
       << Bytes(static_cast<double>(p.in_use_bytes)) << "</td><td class=\"num\">" << p.keys
       << "</td><td class=\"num\">" << p.outstanding_buffers << "</td><td class=\"num\">"
       << p.misses_total << "</td><td class=\"num\">" << p.allocation_failures_total
       << "</td><td class=\"num\">" << Millis(h.timing.last_frame_seconds)
       << "</td></tr></table>\n";

  html << "<h3>Outstanding buffers by site</h3>\n";
  const std::vector<Row> rows = Attribution(h.pool);
  if (rows.empty()) {
    html << "<p class=\"attribution-empty\">No buffer is held across frames.</p>\n";
  } else {
    html << "<table class=\"attribution\" id=\"attribution-" << n
         << "\"><tr><th>site</th><th>format</th><th>count</th><th>bytes</th>"
         << "<th>oldest age</th></tr>\n";
    for (const Row& row : rows) {
      const std::uint64_t age = p.last_frame.frame - row.oldest_frame;
      html << "<tr class=\"site\" data-site=\"" << Escape(row.site) << "\"><td>" << Escape(row.site)
           << "</td><td>" << row.format << "</td><td class=\"num\">" << row.count
           << "</td><td class=\"num\">" << Bytes(static_cast<double>(row.bytes))
           << "</td><td class=\"num\">" << age << " frames (" << Plain(AgeSeconds(age, h))
           << " s)</td></tr>\n";
    }
    html << "</table>\n";
  }

  html << "<h3>Outstanding buffers by call stack</h3>\n<p class=\"muted\">";
  if (h.pool.stack_sampling == 0) {
    html << "Call stacks are off for this pool (<code>stack_sampling</code> 0).";
  } else if (h.pool.stack_sampling == 1) {
    html << "The stack of every <code>Acquire</code> is captured.";
  } else {
    html << "The stack of one <code>Acquire</code> in " << h.pool.stack_sampling
         << " is captured, at random.";
  }
  html << "</p>\n";
  if (!h.pool.stacks.top.empty() || h.pool.stacks.unsampled.count != 0) {
    StacksTable(html, h.pool.stacks, h, false, "stacks-" + n);
  }

  html << "<h3>Outstanding buffers by age</h3>\n<table class=\"ages\" id=\"ages-" << n
       << "\"><tr><th>under 1 s</th><th>1 s to 1 min</th><th>1 to 10 min</th>"
       << "<th>10 min to 1 h</th><th>over 1 h</th></tr><tr>";
  for (const HeldTally& bucket : h.pool.ages) {
    html << "<td class=\"num\">" << bucket.count << " <span class=\"muted\">"
         << Bytes(static_cast<double>(bucket.bytes)) << "</span></td>";
  }
  html << "</tr></table>\n";

  for (const HeldSince& since : h.pool.marks) {
    const Mark* mark = FindMark(marks, since.mark);
    if (mark == nullptr) continue;
    html << "<h3 class=\"since-mark\" data-mark=\"" << mark->id << "\">Acquired since mark "
         << Escape(mark->name) << " and still held: " << since.held.count << " buffers, "
         << Bytes(static_cast<double>(since.held.bytes)) << "</h3>\n";
    if (since.held.count == 0) continue;
    html << "<table class=\"mark-sites\"><tr><th>site</th><th>format</th><th>count</th>"
         << "<th>bytes</th></tr>\n";
    for (const OutstandingGroup& g : since.sites) {
      html << "<tr><td>" << Escape(Site(g.site)) << "</td><td>" << FormatName(g.format)
           << "</td><td class=\"num\">" << g.count << "</td><td class=\"num\">"
           << Bytes(static_cast<double>(g.bytes)) << "</td></tr>\n";
    }
    html << "</table>\n";
    StacksTable(html, since.stacks, h, true, "mark-stacks-" + n + "-" + std::to_string(mark->id));
  }

  const auto& hist = report.history;
  const auto bytes = [](double v) { return Bytes(v); };
  html << "<h3>Recent history</h3>\n<div class=\"charts\">\n"
       << Chart(
              "chart-bytes-" + n, "Pooled vs in-use bytes", bytes,
              {{"pooled", "#1f77b4", Column(hist, [](auto& q) { return double(q.pooled_bytes); })},
               {"in use", "#ff7f0e", Column(hist, [](auto& q) { return double(q.in_use_bytes); })}})
       << Chart("chart-allocs-" + n, "Allocations vs releases per frame", Plain,
                {{"allocations", "#2ca02c",
                  Column(hist, [](auto& q) { return double(q.frame_allocations); })},
                 {"releases", "#d62728",
                  Column(hist, [](auto& q) { return double(q.frame_releases); })}})
       << Chart("chart-keys-" + n, "Pool keys", Plain,
                {{"keys", "#9467bd", Column(hist, [](auto& q) { return double(q.keys); })}})
       << Chart("chart-frame-time-" + n, "Frame time (the loop's)", Millis,
                {{"frame time", "#8c564b", Column(hist, [](auto& q) { return q.frame_seconds; })}})
       << "</div>\n</section>\n";
}

}  // namespace

std::string DebugHealthJson(const std::vector<DiagnosticsReport>& reports,
                            const std::vector<Mark>& marks) {
  json out;
  out["pools"] = json::array();
  for (const DiagnosticsReport& report : reports) out["pools"].push_back(PoolJson(report, marks));
  out["marks"] = json::array();
  for (const Mark& mark : marks) {
    out["marks"].push_back({{"id", mark.id}, {"name", mark.name}, {"time", Rfc3339(mark.time)}});
  }
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string DebugPageHtml(const std::vector<DiagnosticsReport>& reports,
                          const std::vector<Mark>& marks) {
  std::ostringstream html;
  html << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       << "<meta http-equiv=\"refresh\" content=\"2\">"
       << "<title>poolwatchd debug</title><style>" << kStyle << "</style></head><body>\n"
       << "<h1>poolwatchd &mdash; " << reports.size() << (reports.size() == 1 ? " pool" : " pools")
       << "</h1>\n<p class=\"muted\">refreshes every 2 s &middot; <a href=\"debug/health\">JSON</a>"
       << " &middot; <a href=\"metrics\">metrics</a></p>\n";

  // The overview first: with many pools, the one in trouble must be visible without scrolling.
  html << "<table id=\"pools\"><tr><th>pool</th><th>loop</th><th>worst verdict</th>"
       << "<th>pooled</th><th>in use</th><th>outstanding</th><th>keys</th></tr>\n";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const DiagnosticsReport& r = reports[i];
    const Severity worst = Worst(r);
    html << "<tr class=\"" << SeverityName(worst) << "\" data-pool=\"" << Escape(r.pool)
         << "\"><td><a href=\"#pool-" << i << "\">" << Escape(r.pool) << "</a></td>";
    if (!r.latest) {
      html << "<td colspan=\"6\">no frame yet</td></tr>\n";
      continue;
    }
    const PoolStats& p = r.latest->pool.stats;
    html << "<td>" << Escape(r.latest->loop) << "</td><td>" << WorstText(r)
         << "</td><td class=\"num\">" << Bytes(static_cast<double>(p.pooled_bytes))
         << "</td><td class=\"num\">" << Bytes(static_cast<double>(p.in_use_bytes))
         << "</td><td class=\"num\">" << p.outstanding_buffers << "</td><td class=\"num\">"
         << p.keys << "</td></tr>\n";
  }
  html << "</table>\n";

  // Marks: a button makes one (named after the time), each pool then shows what was acquired
  // since and is still held.
  const std::string now = Rfc3339Utc(std::chrono::system_clock::now());
  html << "<section id=\"marks\"><h2>Marks</h2>\n<form method=\"post\" action=\"debug/mark?name="
       << "page%20" << now.substr(11, 8) << "\"><button type=\"submit\">Mark now</button> "
       << "<span class=\"muted\">or <code>curl -X POST '.../debug/mark?name=NAME'</code>; "
       << "the newest marks are kept</span></form>\n";
  if (!marks.empty()) {
    html << "<table id=\"mark-list\"><tr><th>mark</th><th>name</th><th>time</th></tr>\n";
    for (const Mark& mark : marks) {
      html << "<tr data-mark=\"" << mark.id << "\"><td class=\"num\">" << mark.id << "</td><td>"
           << Escape(mark.name) << "</td><td>" << Rfc3339(mark.time) << "</td></tr>\n";
    }
    html << "</table>\n";
  }
  html << "</section>\n";
  for (std::size_t i = 0; i < reports.size(); ++i) PoolSection(html, reports[i], i, marks);
  html << "</body></html>\n";
  return html.str();
}

}  // namespace poolwatch::exporter

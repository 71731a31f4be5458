#!/usr/bin/env bash
# What a held buffer costs in memory beyond its own bytes, printed as a Markdown table for
# docs/performance.md. For each buffer size, poolwatchd leaks held buffers of that size until
# its pool's byte cap (`max_bytes`) refuses them; the process's RSS then, less the RSS of the
# same config with nothing leaking, over the buffers held, is what each buffer costs: its bytes,
# the allocator's rounding (every buffer is an allocation of its own, 48 bytes more to align
# it) and the pool's bookkeeping (its slot, its place in its key's stack, the held lists and
# attribution).
# None of that beyond the buffer's bytes counts against the cap or in poolwatch_pool_*_bytes.
#   bench/held_memory.sh [--poolwatchd PATH]   (default: the release build, built here)
# Runs on 127.0.0.1, stops by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh  # $work, $pids stopped at exit, free_port

bin=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --poolwatchd) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--poolwatchd PATH]" >&2; exit 2 ;;
  esac
done
if [[ -z "$bin" ]]; then
  scripts/install-deps.sh bench
  cmake --preset release >/dev/null
  cmake --build --preset release --target poolwatchd >/dev/null
  bin=$PWD/build/release/daemon/poolwatchd
fi

metric() {  # metric SCRAPE NAME: the first sample's value
  awk -v name="$2" 'index($0, name) == 1 && substr($0, length(name) + 1, 1) ~ /[ {]/ { print $NF; exit }' <<<"$1"
}

# measure SCENARIO ELEMENTS CAP PER_FRAME: sets $rss, $held and $in_use once steady has run 200
# frames, or once leak has reached the cap.
measure() {
  local port scrape="" pid
  # Port 0, and the port it logs: a port picked beforehand may be taken meanwhile.
  printf '{"http": {"listen": "127.0.0.1:0"}, "loop": {"tick_hz": 240},
    "pool": {"max_bytes": %s}, "workload": {"scenario": "%s", "particles": 64,
    "leak_buffers_per_frame": %s, "leak_buffer_elements": %s}}' \
    "$3" "$1" "$4" "$2" > "$work/config.json"
  "$bin" --config "$work/config.json" > "$work/daemon.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(listening_port "$work/daemon.log" "$pid")
  for _ in $(seq 1200); do
    sleep 0.25
    kill -0 "$pid" 2>/dev/null || { echo "$0: poolwatchd exited:" >&2; cat "$work/daemon.log" >&2; exit 1; }
    scrape=$(curl -sf "127.0.0.1:$port/metrics") || continue
    if [[ $1 == steady ]]; then
      (( $(metric "$scrape" poolwatch_frames_total) >= 200 )) && break
    else
      (( $(metric "$scrape" poolwatch_pool_allocation_failures_total) > 0 )) && break
    fi
    scrape=""
  done
  [[ -n "$scrape" ]] || { echo "$0: $1 with $2 elements: not measured within 300 s" >&2; exit 1; }
  sleep 1  # the allocator settles
  scrape=$(curl -sf "127.0.0.1:$port/metrics")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rss=$(metric "$scrape" process_resident_memory_bytes)
  held=$(metric "$scrape" poolwatch_pool_outstanding_buffers)
  in_use=$(metric "$scrape" poolwatch_pool_in_use_bytes)
}

echo "# held buffers' memory — $(date -u +%Y-%m-%dT%H:%MZ), $("$bin" --version | head -1), pool stack_sampling 64"
echo
echo "| held buffers of | held at the cap | their bytes (the cap) | RSS above a steady daemon | a buffer costs | beyond its bytes |"
echo "|---|---|---|---|---|---|"
# elements of f32, cap, leaked per frame: each run reaches its cap in a few seconds at 240 Hz.
for row in "1 4194304 1000" "16 16777216 1000" "256 67108864 100" "4096 268435456 10"; do
  read -r elements cap per_frame <<<"$row"
  measure steady "$elements" "$cap" "$per_frame"
  base=$rss
  measure leak "$elements" "$cap" "$per_frame"
  awk -v e="$elements" -v b="$base" -v r="$rss" -v n="$held" -v u="$in_use" 'BEGIN {
    printf "| %d B | %d | %.1f MiB | %.1f MiB | %.0f B | %.0f B |\n",
      4 * e, n, u / 1048576, (r - b) / 1048576, (r - b) / n, (r - b - u) / n }'
done

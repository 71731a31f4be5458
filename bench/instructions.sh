#!/usr/bin/env bash
# Instructions per frame of the instrumented and the plain pool, counted by callgrind: exact,
# and the same from one run to the next, where this VM's times move by 20-50 %. Printed as a
# Markdown table for docs/performance.md.
#
# Each workload's BM_<Workload>/paired runs in a process of its own under callgrind. There the
# two pools run the same frames, each through its own RunFrames() (never inlined), in timed
# chunks. Callgrind zeroes its counts on entry to TimePairs() (never inlined), the timed chunks
# of the benchmark's last run: the warm-up before them, with the first frames' allocations, is
# left out, and every frame counted is a steady-state frame however many chunks a run timed
# (counted from the start, ManySmallBuffers' difference came out +531 or +655 by the chunks).
# A pool's instructions per frame are its RunFrames()' inclusive count over its frames: the
# frame loop and the benchmark's touch of each buffer included. The frames are the pool's
# EndFrame() calls, four to a frame of BM_Sequence (one frame of each other workload).
# EndFrame()'s own count over its calls is one frame's end alone.
# Usage: bench/instructions.sh [--bench BINARY]
#   (default: build/dev/bench/poolwatch_bench, built here first)
set -euo pipefail

bench=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bench) bench=$(realpath -m "$2"); shift 2 ;;
    *) echo "usage: $0 [--bench BINARY]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh  # $work, removed at exit; use_pool_bench
use_pool_bench instructions.sh
if ! command -v valgrind >/dev/null; then
  echo "instructions.sh: valgrind not found (scripts/install-deps.sh bench installs it)" >&2
  exit 2
fi

# From a callgrind profile: "pool instructions_per_frame endframe_per_frame" for each pool, from
# the calls to its RunFrames() and EndFrame(). Function names are given once, with their id, and
# later by id alone; each `calls=` line is followed by the line of the call's inclusive cost.
per_frame() {
  awk -v ends="$2" '
    function callee(line,   id) {
      id = line
      sub(/^cfn=\(/, "", id); sub(/\).*/, "", id)
      if (line ~ /\) /) { sub(/^cfn=\([0-9]+\) /, "", line); name[id] = line }
      return name[id]
    }
    /^fn=\([0-9]+\) / { id = $0; sub(/^fn=\(/, "", id); sub(/\).*/, "", id)
                        n = $0; sub(/^fn=\([0-9]+\) /, "", n); name[id] = n }
    /^cfn=/ { target = callee($0) }
    /^calls=/ {
      split($1, c, "="); calls = c[2]
      getline; cost = $2
      pool = target ~ /::instrumented::/ ? "instrumented" : target ~ /::plain::/ ? "plain" : ""
      if (pool == "") next
      if (target ~ /RunFrames</) run[pool] += cost
      if (target ~ /BufferPool::EndFrame\(\)$/) { frames[pool] += calls; end[pool] += cost }
    }
    END {
      for (pool in run) {
        if (frames[pool] == 0) { print "no EndFrame() calls for " pool > "/dev/stderr"; exit 1 }
        printf "%s %.1f %.1f\n", pool, ends * run[pool] / frames[pool], end[pool] / frames[pool]
      }
    }' "$1"
}

echo "| workload | instrumented, instructions per frame | plain | difference | instrumented / plain | \`EndFrame()\` alone, per call: instrumented / plain |"
echo "|---|---|---|---|---|---|"
for workload in ReferenceFrame ManySmallBuffers FewLargeBuffers ManyKeys Sequence; do
  profile=$work/$workload.callgrind
  valgrind --tool=callgrind --zero-before='*TimePairs*' \
    --callgrind-out-file="$profile" "$bench" \
    --benchmark_filter="^BM_$workload/paired\$" --benchmark_min_time=0.01 \
    --benchmark_repetitions=1 >"$work/$workload.log" 2>&1 || {
    echo "instructions.sh: BM_$workload/paired failed under callgrind:" >&2
    cat "$work/$workload.log" >&2
    exit 1
  }
  # Steady-state frames find every buffer pooled; AllocSlow() in the profile means the warm-up
  # was counted (callgrind never zeroed, as when TimePairs() is inlined or renamed).
  if grep -q 'BufferPool::AllocSlow' "$profile"; then
    echo "instructions.sh: BM_$workload/paired: the profile holds AllocSlow(), the warm-up's" \
      "allocations; was it zeroed on entry to TimePairs()?" >&2
    exit 1
  fi
  declare -A run=() end=()
  while read -r pool instructions end_frame; do
    run[$pool]=$instructions
    end[$pool]=$end_frame
  done < <(per_frame "$profile" "$([[ $workload == Sequence ]] && echo 4 || echo 1)")
  if [[ -z "${run[instrumented]:-}" || -z "${run[plain]:-}" ]]; then
    echo "instructions.sh: BM_$workload/paired gave no RunFrames() of both pools" >&2
    exit 1
  fi
  awk -v w="$workload" -v i="${run[instrumented]}" -v p="${run[plain]}" \
    -v ei="${end[instrumented]}" -v ep="${end[plain]}" 'BEGIN {
      printf "| `BM_%s` | %.1f | %.1f | %+.1f | %.3f | %.1f / %.1f |\n", w, i, p, i - p, i / p, ei, ep
    }'
done

#!/usr/bin/env bash
# What each allocator keeps resident for the frame workloads of poolwatch_bench, printed as a
# Markdown table for docs/performance.md. Each workload runs 100 frames on the instrumented pool,
# the bump arena, mimalloc and glibc's malloc, each in a process of its own (so that no heap
# starts with what another variant left), writing every byte of every buffer, as a program that
# uses its buffers does. Figures, in kB, from the growth of the process's RssAnon:
#   - in the frame: at the busiest frame's end, before its buffers go back;
#   - between frames: after the last frame, what the allocator keeps for the next;
# beside what one frame asks for (the largest frame's, for Sequence) and the pool's own
# pooled_bytes. A figure below what the frame wrote means the measurement is broken: exit 1.
# Usage: bench/memory.sh [--bench BINARY]   (default: build/dev/bench/poolwatch_bench, built here)
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
source bench/lib.sh  # use_pool_bench
use_pool_bench memory.sh

workloads=(ReferenceFrame ManySmallBuffers FewLargeBuffers ManyKeys Sequence)
variants=(instrumented arena mimalloc malloc)

kb() { awk -v b="$1" 'BEGIN { printf (b < 1e6 ? "%.1f" : "%.0f"), b / 1000 }'; }

# field LINE NAME: the value of NAME=... in the line --resident printed.
field() {
  local value
  value=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p")
  if [[ ! $value =~ ^-?[0-9]+$ ]]; then
    echo "memory.sh: no $2 in \"$1\"" >&2
    exit 1
  fi
  echo "$value"
}

echo "| workload | requested | pool: pooled bytes | pool | arena | mimalloc | glibc |"
echo "|---|---|---|---|---|---|---|"
for w in "${workloads[@]}"; do
  row="| \`BM_$w\`"
  for v in "${variants[@]}"; do
    line=$("$bench" --resident="$w/$v")
    requested=$(field "$line" requested_B)
    in_frame=$(field "$line" in_frame_B)
    between=$(field "$line" between_frames_B)
    if ((in_frame < requested)); then
      echo "memory.sh: $w/$v: $in_frame bytes resident in the frame, below the $requested it wrote" >&2
      exit 1
    fi
    if [[ $v == instrumented ]]; then
      pooled=$(field "$line" held_B)
      if ((between < pooled)); then
        echo "memory.sh: $w/$v: $between bytes resident between frames, below the $pooled pooled" >&2
        exit 1
      fi
      row+=" | $(kb "$requested") | $(kb "$pooled")"
    fi
    row+=" | $(kb "$in_frame") / $(kb "$between")"
  done
  echo "$row |"
done

#!/usr/bin/env bash
# What a frame costs with each allocator depending on what the process ran before it, printed
# as a Markdown table for docs/performance.md. Each frame workload of poolwatch_bench runs with
# the instrumented pool, mimalloc and glibc's malloc:
#   - alone: that benchmark only, in a process of its own, on the allocator's first heap;
#   - after the others: in one process that first ran every variant registered before it: the
#     five variants (the pool instrumented and plain, the arena, mimalloc, glibc) of each
#     workload before, then those of its own workload that precede it in that list; the order
#     of the anchors' command in docs/performance.md;
#   - for glibc, alone once more with its heap trimming and its dynamic mmap threshold fixed
#     (GLIBC_TUNABLES), which tells whether they make the difference.
# Medians of 3 repetitions, ns per frame.
# Usage: bench/order.sh [--bench BINARY] [--min-time SECONDS]
#   (defaults: build/dev/bench/poolwatch_bench, built here first; 0.3)
set -euo pipefail

bench=""
min_time=0.3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bench) bench=$(realpath -m "$2"); shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    *) echo "usage: $0 [--bench BINARY] [--min-time SECONDS]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh  # use_pool_bench
use_pool_bench order.sh

workloads=(ReferenceFrame ManySmallBuffers FewLargeBuffers ManyKeys Sequence)
variants=(instrumented mimalloc malloc)
# Raised far above any of these frames: glibc then neither returns the top of its heap to the
# system at a free nor moves its mmap threshold (a fixed threshold turns the adjustment off).
fixed_glibc=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432

# Prints "name ns" for each median the benchmark reports (its CSV: name, iterations, real_time,
# cpu_time, time_unit, ...).
medians() {
  "$bench" --benchmark_filter="$1" --benchmark_min_time="$min_time" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null |
    awk -F, '$1 ~ /_median"$/ {
      gsub(/"/, "", $1); sub(/_median$/, "", $1)
      scale = $5 == "us" ? 1e3 : $5 == "ms" ? 1e6 : $5 == "s" ? 1e9 : 1
      ns = $4 * scale
      printf (ns < 100 ? "%s %.1f\n" : "%s %.0f\n"), $1, ns
    }'
}

# One number: the median of a single benchmark; fails loudly when it did not run.
median_of() {
  local line
  line=$(medians "^$1\$") || true
  if [[ -z "$line" ]]; then
    echo "order.sh: $1 gave no median (is it in $bench?)" >&2
    exit 1
  fi
  echo "${line#* }"
}

declare -A after
while read -r name ns; do
  after[$name]=$ns
done < <(medians 'BM_(Ref|Many|Few|Seq)[A-Za-z]*/(instrumented|plain|arena|mimalloc|malloc)$')

echo "| workload | variant | alone in a process | after the other variants | alone / after | glibc alone, trimming and mmap threshold fixed |"
echo "|---|---|---|---|---|---|"
for workload in "${workloads[@]}"; do
  for variant in "${variants[@]}"; do
    name=BM_$workload/$variant
    if [[ -z "${after[$name]:-}" ]]; then
      echo "order.sh: $name gave no median in the run of all variants" >&2
      exit 1
    fi
    alone=$(median_of "$name")
    fixed="—"
    if [[ $variant == malloc ]]; then
      fixed=$(GLIBC_TUNABLES=$fixed_glibc median_of "$name")
    fi
    ratio=$(awk -v a="$alone" -v b="${after[$name]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| \`$workload\` | $variant | $alone | ${after[$name]} | $ratio | $fixed |"
  done
done

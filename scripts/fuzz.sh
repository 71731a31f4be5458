#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (fuzz preset) and runs each for a bounded time on a
# copy of its seed corpus (tests/fuzz/corpus/*). A crash leaves its input in build/fuzz/crashes/
# and fails the script; turn each such input into a regression test by committing it as
# tests/fuzz/corpus/TARGET/regression_NAME: the fuzz.replay.TARGET CTest test runs it in every
# build.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

scripts/install-deps.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

mkdir -p build/fuzz/crashes
for target in config http_request web_config negotiation mark; do
  binary=build/fuzz/tests/fuzz/${target}_fuzz
  corpus=build/fuzz/corpus/$target
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/$target/* "$corpus/"
  echo "== fuzz $target for ${seconds}s"
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/crashes/$target- "$corpus" 2>&1 | tail -n 12
done

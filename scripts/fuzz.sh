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

mkdir -p build/fuzz/crashes build/fuzz/logs
# One target on one core: libFuzzer is single-threaded, so the targets run side by side, as many
# at a time as there are cores, each for its full time; their logs are printed in order after.
fuzz() {
  local target=$1 binary=build/fuzz/tests/fuzz/${1}_fuzz corpus=build/fuzz/corpus/$1
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/$target/* "$corpus/"
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/crashes/$target- "$corpus" >"build/fuzz/logs/$target.log" 2>&1
}

targets=(config http_request web_config negotiation mark)
cores=$(nproc)
echo "== fuzz ${targets[*]}: ${seconds}s each, $cores at a time"
declare -A pid_of
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= cores)); do wait -n || true; done
  fuzz "$target" &
  pid_of[$target]=$!
done
failed=()
for target in "${targets[@]}"; do
  wait "${pid_of[$target]}" || failed+=("$target")
  echo "== fuzz $target"
  tail -n 12 "build/fuzz/logs/$target.log"
done
if ((${#failed[@]})); then
  echo "fuzzing failed: ${failed[*]} (inputs in build/fuzz/crashes/, logs in build/fuzz/logs/)" >&2
  exit 1
fi

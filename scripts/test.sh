#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, checks formatting and lint, runs every
# test (unit, integration, end to end with real Prometheus and Alertmanager, a real browser),
# then again under ASan+UBSan and under TSan, then libFuzzer on the config and request parsers,
# then the container image (scripts/container-test.sh).
#   scripts/test.sh          everything (what CI runs)
#   scripts/test.sh --quick  skip clang-tidy, the sanitizer builds, fuzzing and the container
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[[ "${1:-}" == "--quick" ]] && quick=true
jobs=$(nproc)

scripts/install-deps.sh test

echo "== format"
git ls-files '*.h' '*.cc' | xargs clang-format --dry-run --Werror

echo "== build (dev preset)"
cmake --preset dev >/dev/null
cmake --build --preset dev

if ! $quick; then
  echo "== clang-tidy"
  # The files the dev build compiles (the fuzz targets and the install consumer are built in
  # other trees; bench/ is Google Benchmark's idioms, which the analyzer misreads).
  # clang-tidy counts the warnings it suppresses in system headers on stderr; keep only findings.
  git ls-files 'lib/*.cc' 'daemon/*.cc' 'tests/*.cc' ':!tests/fuzz/*' ':!tests/install/*' |
    xargs -P "$jobs" -n 1 clang-tidy -p build/dev --quiet 2> >(grep -v ' warnings generated\.$' >&2)
fi

echo "== unit, integration and end-to-end tests"
ctest --preset dev --parallel "$jobs"

if ! $quick; then
  for preset in asan tsan; do
    echo "== $preset: build and run the suites under the sanitizer"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset"
    ctest --preset "$preset" --parallel "$jobs"
  done

  echo "== fuzz: config, web config and HTTP request parsing, a minute each"
  scripts/fuzz.sh 60

  echo "== container: build the Dockerfile, run it read-only, scrape, healthy, clean stop"
  scripts/container-test.sh
fi

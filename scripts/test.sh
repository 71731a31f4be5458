#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, checks formatting and lint, runs every
# test (unit, integration, end to end with real Prometheus and Alertmanager, a real browser),
# then a plain Release build (as a packager's: no -Werror, and no warning at -O3), then again
# under ASan+UBSan and under TSan, then libFuzzer on the config and request parsers, then the
# container image (scripts/container-test.sh).
#   scripts/test.sh          everything (what CI runs)
#   scripts/test.sh --quick  skip clang-tidy, the sanitizer builds, fuzzing and the container
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[[ "${1:-}" == "--quick" ]] && quick=true
jobs=$(nproc)
# Each stage's header tells the time since the start, so a log shows where the time goes (CI
# allows the whole run 60 minutes).
stage() { printf '== %s [%dm%02ds]\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); }

scripts/install-deps.sh test

stage "format"
git ls-files '*.h' '*.cc' | xargs clang-format --dry-run --Werror

stage "build (dev preset)"
cmake --preset dev >/dev/null
cmake --build --preset dev

if ! $quick; then
  stage "clang-tidy"
  # The files the dev build compiles (the fuzz targets and the install consumer are built in
  # other trees; bench/ is Google Benchmark's idioms, which the analyzer misreads).
  # clang-tidy counts the warnings it suppresses in system headers on stderr; keep only findings.
  git ls-files 'lib/*.cc' 'exporter/*.cc' 'daemon/*.cc' 'examples/*.cc' 'tests/*.cc' ':!tests/fuzz/*' ':!tests/install/*' |
    xargs -P "$jobs" -n 1 clang-tidy -p build/dev --quiet 2> >(grep -v ' warnings generated\.$' >&2)
fi

stage "unit, integration and end-to-end tests"
ctest --preset dev --parallel "$jobs"

if ! $quick; then
  stage "plain Release build, as a packager runs it: no preset, no -Werror, no warning at -O3"
  cmake -S . -B build/plain -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  if grep -q -- '-Werror' build/plain/compile_commands.json; then
    echo "a plain build must not turn warnings into errors" >&2
    exit 1
  fi
  cmake --build build/plain 2>&1 | tee build/plain/build.log
  if grep -q 'warning:' build/plain/build.log; then
    echo "the Release build (-O3) warns; see above" >&2
    exit 1
  fi

  for preset in asan tsan; do
    stage "$preset: build and run the suites under the sanitizer"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset"
    ctest --preset "$preset" --parallel "$jobs"
  done

  stage "fuzz: config, web config, HTTP request, negotiation and mark parsing, a minute each"
  scripts/fuzz.sh 60

  stage "container: build the Dockerfile, run it read-only, scrape, healthy, clean stop"
  scripts/container-test.sh
fi
stage "done"

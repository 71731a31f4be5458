#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, checks formatting, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test

echo "== format"
git ls-files '*.h' '*.cc' | xargs clang-format --dry-run --Werror

echo "== build (dev preset)"
cmake --preset dev >/dev/null
cmake --build --preset dev

echo "== clang-tidy"
git ls-files 'lib/*.cc' 'daemon/*.cc' 'tests/*.cc' | xargs -P "$(nproc)" -n 1 clang-tidy -p build/dev --quiet

echo "== unit and integration tests"
ctest --preset dev --parallel "$(nproc)"

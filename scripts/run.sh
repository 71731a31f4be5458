#!/usr/bin/env bash
# Builds poolwatchd (release preset) and runs it on config/poolwatchd.json, serving :9720.
# Extra arguments go to poolwatchd, e.g. scripts/run.sh --scenario leak
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build
cmake --preset release >/dev/null
cmake --build --preset release --target poolwatchd
exec build/release/daemon/poolwatchd --config config/poolwatchd.json "$@"

#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds tests/install/consumer against the
# installed package (find_package(poolwatch)), runs it and checks what it prints.
#   consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/poolwatch/buffer_pool.h"
test -f "$work/prefix/include/poolwatch/version.h"
test -f "$work/prefix/lib/cmake/poolwatch/poolwatchConfig.cmake"
test -f "$work/prefix/include/poolwatch/exporter/exporter.h"
# The server's internals and the reference simulation are not API.
test ! -e "$work/prefix/include/poolwatch/exporter/http_server.h"
test ! -e "$work/prefix/include/poolwatch/reference_workload.h"
cmake -S "$source/tests/install/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" > "$work/build.txt" 2>&1 || { cat "$work/build.txt"; exit 1; }
"$work/build/consumer" > "$work/out.txt"

expect() {
  grep -qxF "$1" "$work/out.txt" || { echo "missing: $1"; cat "$work/out.txt"; exit 1; }
}
expect 'poolwatch_pool_allocations_total{pool="consumer"} 110'
expect 'poolwatch_pool_releases_total{pool="consumer"} 100'
expect 'poolwatch_pool_outstanding_buffers{pool="consumer"} 10'
expect 'poolwatch_pool_in_use_bytes{pool="consumer"} 640'
expect 'poolwatch_frames_total{loop="sim"} 100'

# The core library alone links none of the exporter's dependencies.
if ldd "$work/build/consumer" | grep -E 'libssl|libcrypto|libyaml-cpp|libspdlog|libprotobuf|libz\.|libcrypt\.'; then
  echo "the core consumer links a dependency of the exporter"
  exit 1
fi

# The exporter component, over real HTTP.
"$work/build/exporter_consumer" > "$work/out.txt" 2> "$work/err.txt"
expect $'HTTP/1.1 200 OK\r'
expect 'poolwatch_pool_outstanding_buffers{pool="consumer"} 10'
expect 'poolwatch_frames_total{loop="sim"} 10'
grep -q '^exporter listening on 127.0.0.1:' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
echo "consumers built against the installed package (core, and exporter) printed the expected metrics"

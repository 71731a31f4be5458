#!/usr/bin/env bash
# Installs what poolwatch needs from Debian bookworm's packages, and nothing already there.
#   scripts/install-deps.sh build    compiler toolchain and libraries (also the Dockerfile's)
#   scripts/install-deps.sh test     build + the real peers and tools the test suite runs
#   scripts/install-deps.sh bench    build + Google Benchmark, wrk, node exporter, Prometheus (fleet),
#                                    valgrind (instructions.sh)
#   scripts/install-deps.sh fuzz     build + clang 14 with its libFuzzer runtime
set -euo pipefail

what=${1:-build}
build_packages=(
  g++ cmake ninja-build git
  libboost-dev libboost-stacktrace-dev prometheus-cpp-dev nlohmann-json3-dev libspdlog-dev zlib1g-dev
  libssl-dev libcrypt-dev libyaml-cpp-dev libprotobuf-dev protobuf-compiler
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev libmimalloc-dev clang-format clang-tidy jq
  prometheus prometheus-alertmanager curl chromium systemd openssl apache2-utils
  python3-prometheus-client wrk prometheus-node-exporter valgrind strace
)
bench_packages=(
  libbenchmark-dev libmimalloc-dev wrk prometheus-node-exporter curl jq
  prometheus prometheus-alertmanager valgrind
)
fuzz_packages=(clang-14 libclang-rt-14-dev)
case "$what" in
  build) packages=("${build_packages[@]}") ;;
  bench) packages=("${build_packages[@]}" "${bench_packages[@]}") ;;
  fuzz) packages=("${build_packages[@]}" "${fuzz_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 [build|test|bench|fuzz]" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

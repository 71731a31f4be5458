# shellcheck shell=bash
# What the benchmark scripts share; sourced, not run. Gives $work, a temporary directory, and
# $pids, the processes a script starts: at exit every one is stopped by pid and $work removed.
# Run from the repository's root.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {  # a port nobody listens on now, below the kernel's ephemeral range
  local low port
  # Outgoing connections (scrapes, curl) take their local ports from the ephemeral range: a port
  # picked there can be taken before the daemon binds it.
  read -r low _ < /proc/sys/net/ipv4/ip_local_port_range
  while :; do
    port=$((10000 + RANDOM % (low - 10000)))
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "$port"; return; }
  done
}

listening_port() {  # listening_port LOG PID: the port poolwatchd, started on port 0, logged
  local line
  for _ in $(seq 600); do
    line=$(grep -o 'listening on [^ ]*' "$1" | head -n 1)
    [[ -n $line ]] && { echo "${line##*:}"; return; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo 0
}

# Sets $bench to the poolwatch_bench a script runs: the one given (in $bench already), which must
# be executable, or else the dev preset's, built here first. $1 names the script in the error.
use_pool_bench() {
  if [[ -z "$bench" ]]; then
    scripts/install-deps.sh bench
    cmake --preset dev >/dev/null
    cmake --build --preset dev --target poolwatch_bench >/dev/null
    bench=build/dev/bench/poolwatch_bench
  fi
  if [[ ! -x "$bench" ]]; then
    echo "$1: $bench is not an executable poolwatch_bench" >&2
    exit 2
  fi
}

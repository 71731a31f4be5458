# What the benchmark scripts share; sourced, not run. Gives $work, a temporary directory, and
# $pids, the processes a script starts: at exit every one is stopped by pid and $work removed.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {  # a port nobody listens on now
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "$port"; return; }
  done
}

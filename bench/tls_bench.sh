#!/usr/bin/env bash
# /metrics throughput over plain HTTP, TLS, and TLS with basic auth, printed as a Markdown table
# for docs/performance.md. wrk keeps its connections alive (the handshake is paid once per
# connection, as with Prometheus); the "new connection per request" rows send Connection: close,
# so every request pays a TCP and TLS handshake. Certificate (ECDSA P-256) and bcrypt hash
# (cost 10) are made here with openssl and htpasswd.
# Usage: bench/tls_bench.sh [SECONDS_PER_RUN]   (default 10). Runs on 127.0.0.1, stops by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}

scripts/install-deps.sh bench
command -v htpasswd >/dev/null || scripts/install-deps.sh test
cmake --preset release >/dev/null
cmake --build --preset release --target poolwatchd >/dev/null
bin=$PWD/build/release/daemon/poolwatchd

work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/server.key" -out "$work/server.crt" -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null
hash=$(htpasswd -nbBC 10 bench secret | cut -d: -f2)
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n' > "$work/tls.yml"
{ cat "$work/tls.yml"; printf 'basic_auth_users:\n  bench: %s\n' "$hash"; } > "$work/auth.yml"
: > "$work/plain.yml"
auth="Authorization: Basic $(printf 'bench:secret' | base64)"

run() {  # run WEB_CONFIG SCHEME LABEL [wrk header...]
  local web=$1 scheme=$2 label=$3; shift 3
  local port=$((20000 + RANDOM % 20000))
  "$bin" --config config/poolwatchd.json --listen "127.0.0.1:$port" --log-level warn \
    --web.config.file "$work/$web" &
  pid=$!
  for _ in $(seq 100); do curl -ksf -o /dev/null "$scheme://127.0.0.1:$port/healthz" && break; sleep 0.05; done
  local args=()
  for header in "$@"; do args+=(-H "$header"); done
  wrk -t2 -c16 -d"${seconds}s" --latency "${args[@]}" "$scheme://127.0.0.1:$port/metrics" | awk -v label="$label" '
    /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
    $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    END { printf "| %s | %.0f req/s, p50 %s, p99 %s%s |\n", label, rps, p50, p99, bad ? ", NON-2XX: " bad : "" }'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

echo "# poolwatchd TLS benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t2 -c16, ${seconds}s each"
echo
echo "| /metrics over | throughput and latency |"
echo "|---|---|"
run plain.yml http "plain HTTP, kept-alive connections"
run tls.yml https "TLS 1.3, kept-alive connections"
run auth.yml https "TLS 1.3 + basic auth (bcrypt cost 10, cached verdict), kept-alive" "$auth"
run plain.yml http "plain HTTP, new connection per request" "Connection: close"
run tls.yml https "TLS 1.3, new connection per request" "Connection: close"

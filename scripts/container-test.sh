#!/usr/bin/env bash
# Builds the Dockerfile and checks the image: it runs read-only with a port published on
# 127.0.0.1, serves /metrics, becomes healthy, and exits 0 within the stop timeout on SIGTERM.
# Starts a private Docker engine if none answers, and makes the debian:bookworm-slim base with
# debootstrap from the mirror this machine's apt sources name (cached between runs). Stops
# what it started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/docker-engine.sh
state=$docker_state                  # kept between runs on this machine: engine data, base
container=""
image=poolwatchd:test-$$

cleanup() {
  local rc=$?
  if [[ -n "$container" ]]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  docker image rm -f "$image" >/dev/null 2>&1 || true
  docker_engine_down
  exit $rc
}
trap cleanup EXIT

docker_engine_up
docker_base_image

echo "== docker build"
start=$(date +%s)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
docker build --network host --build-arg REVISION="$revision" -t "$image" . >"$state/build.log" 2>&1 ||
  { tail -40 "$state/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s; image size $(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.1f MiB", $1 / 1048576 }')"

port=$(( 20000 + RANDOM % 20000 ))
container=$(docker run -d --read-only -p "127.0.0.1:$port:9720" "$image")
echo "== scrape /metrics on 127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.2; done
body=$(curl -fsS "http://127.0.0.1:$port/metrics")
grep -q '^poolwatch_pool_keys{pool="reference"} ' <<<"$body"
grep -q '^# TYPE poolwatch_frames_total counter' <<<"$body"
# The revision given to the build, in build_info and in the image's label.
grep -q "^poolwatch_build_info{.*revision=\"$revision\"" <<<"$body" ||
  { echo "build_info does not report revision $revision:"; grep build_info <<<"$body"; exit 1; }
label=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$image")
[[ "$label" == "$revision" ]] || { echo "image label revision '$label', not $revision"; exit 1; }
# Captured, then matched: `cmd | grep -q` fails under pipefail when grep exits first (SIGPIPE).
user=$(docker inspect -f '{{.Config.User}}' "$container")
[[ "$user" == 65532:65532 ]] || { echo "runs as '$user', not 65532:65532"; exit 1; }

echo "== wait for HEALTHCHECK"
status=""
for _ in $(seq 60); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$container")
  [[ "$status" == healthy ]] && break
  sleep 0.5
done
[[ "$status" == healthy ]] || { echo "health: $status"; docker logs "$container"; exit 1; }

echo "== an untagged leak is named by its call stack in the release image"
# The image's binary keeps its symbol table (strip --strip-debug): /debug names the function.
config="$state/leak.json"
cat >"$config" <<'JSON'
{"pool": {"name": "reference", "stack_sampling": 1},
 "workload": {"scenario": "leak", "leak_site": ""}}
JSON
chmod 644 "$config"
leak_port=$(( port + 1 ))
leaker=$(docker run -d --read-only -p "127.0.0.1:$leak_port:9720" \
  -v "$config:/etc/poolwatchd/leak.json:ro" "$image" --config /etc/poolwatchd/leak.json)
function_name=""
for _ in $(seq 50); do
  health=$(curl -fsS "http://127.0.0.1:$leak_port/debug/health" 2>/dev/null || true)
  function_name=$(jq -r '.pools[0].call_stacks.top[0].function // empty' <<<"$health" 2>/dev/null || true)
  [[ -n "$function_name" ]] && break
  sleep 0.2
done
docker rm -f "$leaker" >/dev/null
echo "top stack: $function_name"
[[ "$function_name" == *"ReferenceWorkload::LeakHeldBuffers"* ]] || { echo "$health"; exit 1; }

echo "== docker stop (SIGTERM, 10 s timeout)"
start=$(date +%s%N)
docker stop -t 10 "$container" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
echo "stopped in ${elapsed_ms} ms, exit code $code"
[[ "$code" == 0 && $elapsed_ms -lt 10000 ]]
logs=$(docker logs "$container" 2>&1)
grep -q 'received SIGTERM, stopping' <<<"$logs" || { echo "$logs"; exit 1; }
echo "container test passed"

#!/usr/bin/env bash
# Runs README's two commands the way a user on a fresh Debian bookworm machine runs them: each
# in a container of its own from debian:bookworm-slim (debootstrap minbase: no compiler, no apt
# lists), on a clean clone of HEAD, as root, on the host's network (apt needs the mirror).
#   1. ./scripts/run.sh must install, build and serve poolwatchd's metrics on :9720, and stop
#      with exit 0 on SIGTERM.
#   2. ./scripts/test.sh --quick must install the test dependencies and pass; then
#      scripts/fuzz.sh 5, the one later stage that installs more (clang's libFuzzer runtime).
#      The stages left (clang-tidy, the Release, ASan and TSan builds) install nothing, and the
#      container stage needs an engine of its own: CI runs them on its machine.
# Not in CI (about 15 minutes on 2 cores); run it after changing a dependency or a script.
# Needs root and :9720 free. Stops what it started: the containers, and the engine if it
# started one.
#   scripts/fresh-machine-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/docker-engine.sh
work=$(mktemp -d)
containers=()

cleanup() {
  local rc=$?
  for container in "${containers[@]}"; do docker rm -f "$container" >/dev/null 2>&1 || true; done
  # The clones hold what the containers built as root; nothing in them is mounted.
  rm -rf "$work"
  docker_engine_down
  exit $rc
}
trap cleanup EXIT

if curl -s -o /dev/null -m 2 http://127.0.0.1:9720/; then
  echo "something already answers on :9720; stop it first" >&2
  exit 1
fi
docker_engine_up
docker_base_image

# A fresh machine per command: a clean clone of HEAD, mounted at /src.
fresh_machine() {
  local name=$1
  shift
  git clone -q . "$work/$name"
  docker run -d --network host --shm-size 1g -v "$work/$name:/src" -w /src \
    debian:bookworm-slim "$@"
}

echo "== ./scripts/run.sh on a fresh machine"
start=$SECONDS
containers+=("$(fresh_machine run ./scripts/run.sh)")
run=${containers[-1]}
body=""
while ((SECONDS - start < 1200)); do
  body=$(curl -fsS -m 2 http://127.0.0.1:9720/metrics 2>/dev/null || true)
  [[ -n "$body" ]] && break
  [[ $(docker inspect -f '{{.State.Running}}' "$run") == true ]] || break
  sleep 2
done
[[ -n "$body" ]] || { docker logs "$run" 2>&1 | tail -40; echo "no metrics on :9720" >&2; exit 1; }
grep -q '^poolwatch_frames_total{loop="main"} ' <<<"$body"
grep -q '^poolwatch_pool_keys{pool="reference"} ' <<<"$body"
echo "serving after $((SECONDS - start)) s (install, build, start)"
docker stop -t 10 "$run" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$run")
[[ "$code" == 0 ]] || { docker logs "$run" 2>&1 | tail -20; echo "exit code $code" >&2; exit 1; }
echo "stopped on SIGTERM with exit code 0"

echo "== ./scripts/test.sh --quick, then scripts/fuzz.sh 5, on a fresh machine"
start=$SECONDS
containers+=("$(fresh_machine test bash -c './scripts/test.sh --quick && scripts/fuzz.sh 5')")
test=${containers[-1]}
code=$(docker wait "$test")
docker logs "$test" 2>&1 | grep -E '^(== |install-deps:|100% tests passed|Done )|tests failed' || true
[[ "$code" == 0 ]] || { docker logs "$test" 2>&1 | tail -60; echo "exit code $code" >&2; exit 1; }
echo "passed in $((SECONDS - start)) s"
echo "fresh-machine test passed"

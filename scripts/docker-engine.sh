# shellcheck shell=bash
# Sourced by scripts/container-test.sh and scripts/fresh-machine-test.sh: a Docker engine to
# talk to, and the debian:bookworm-slim base image. Needs root.
#   docker_engine_up     starts a private engine if none answers (sets DOCKER_HOST)
#   docker_engine_down   stops it again, by pid, if docker_engine_up started it
#   docker_base_image    makes debian:bookworm-slim with debootstrap (minbase, no apt lists)
#                        from the mirror this machine's apt sources name, unless it exists
# The engine's data and the base image stay in $docker_state between runs on this machine.

docker_state=/var/lib/poolwatch-ci
docker_exec_root=/run/poolwatch-docker
docker_started_engine=false

docker_engine_up() {
  mkdir -p "$docker_state"  # the logs go here, also when an engine already answers
  docker info >/dev/null 2>&1 && return 0
  echo "== starting a private Docker engine"
  command -v dockerd >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  }
  mkdir -p "$docker_state/docker" "$docker_exec_root"
  local socket=$docker_exec_root/docker.sock
  dockerd --data-root "$docker_state/docker" --exec-root "$docker_exec_root" -H "unix://$socket" \
    --pidfile "$docker_exec_root/dockerd.pid" --iptables=false >"$docker_state/dockerd.log" 2>&1 &
  docker_started_engine=true
  export DOCKER_HOST=unix://$socket
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null
}

docker_engine_down() {
  $docker_started_engine || return 0
  kill "$(cat "$docker_exec_root/dockerd.pid")" 2>/dev/null || true
  for _ in $(seq 50); do [[ -e "$docker_exec_root/dockerd.pid" ]] || break; sleep 0.2; done
  umount "$docker_exec_root/netns/default" 2>/dev/null || true
  ip link del docker0 2>/dev/null || true
}

docker_base_image() {
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 && return 0
  echo "== making debian:bookworm-slim with debootstrap"
  command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  # The mirror this machine already uses, read from its apt sources (never written down here).
  local mirror rootfs
  mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [[ -n "$mirror" ]] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$docker_state/debootstrap.log" 2>&1
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
}

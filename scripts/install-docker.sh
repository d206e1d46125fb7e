#!/usr/bin/env bash
# Makes a Docker engine answer on this machine, idempotently:
#   - if `docker info` already works: nothing to do;
#   - otherwise install docker.io from Debian (apt-get update first when needed),
#     start dockerd in the background (log: $DOCKERD_LOG) and wait for it (deadline
#     $DOCKERD_WAIT seconds); on failure print the tail of the dockerd log and exit 1.
# Options dockerd gets here: overlay2 storage (works in this VM; override with
# DOCKERD_STORAGE_DRIVER=vfs if overlay is refused), default iptables/bridge, and
# `--ip 127.0.0.1` so that a published port (`-p 5432`, testcontainers' exposed ports)
# binds loopback unless the caller names another address (DOCKERD_PUBLISH_IP= to change).
# Extra flags: DOCKERD_ARGS="...".
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

say() { echo "install-docker: $*" >&2; }

if docker info >/dev/null 2>&1; then
  say "docker engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

# A client may already be at /usr/local/bin/docker with no engine: what we need is dockerd.
if ! command -v dockerd >/dev/null 2>&1; then
  say "installing docker.io from apt"
  if ! $SUDO apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
fi
command -v dockerd >/dev/null 2>&1 || { say "dockerd not found after installing docker.io"; exit 1; }

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $DOCKERD_LOG)"
  args=(--storage-driver "${DOCKERD_STORAGE_DRIVER:-overlay2}")
  [ -n "${DOCKERD_PUBLISH_IP-127.0.0.1}" ] && args+=(--ip "${DOCKERD_PUBLISH_IP-127.0.0.1}")
  # shellcheck disable=SC2206
  [ -n "${DOCKERD_ARGS:-}" ] && args+=(${DOCKERD_ARGS})
  $SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid: dockerd must outlive this script and its process group.
  $SUDO setsid nohup dockerd "${args[@]}" >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

deadline=$(( $(date +%s) + DOCKERD_WAIT ))
until docker info >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    say "dockerd did not answer within ${DOCKERD_WAIT}s; last lines of $DOCKERD_LOG:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd exited; last lines of $DOCKERD_LOG:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
say "docker engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null), storage $(docker info --format '{{.Driver}}' 2>/dev/null))"

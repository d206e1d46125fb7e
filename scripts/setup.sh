#!/usr/bin/env bash
# Installs everything pytest-commons' main job and its tests need, on a fresh Debian/Ubuntu
# machine: the database servers for the local backend, the Python packages, and (unless
# COMMONS_SKIP_DOCKER=1) a Docker engine with locally built test images. Idempotent: a second
# run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
for pkg in redis-server mariadb-server rabbitmq-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts the packaged servers where it can; the plugin runs its own, so stop those.
# (Not rabbitmq-server: its init script starts the system epmd, on every interface, to stop it.)
for svc in redis-server mariadb postgresql; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done

# Toxiproxy for the faults fixture's toxiproxy engine (the built-in engine needs nothing): built
# from the Go module proxy; its binary is named `server`, installed as toxiproxy-server on PATH.
TOXIPROXY_VERSION=v2.5.0
if ! command -v toxiproxy-server >/dev/null; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi
  if ! command -v go >/dev/null; then
    echo "setup: apt-get install golang-go (to build Toxiproxy)"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends golang-go >/dev/null
  fi
  echo "setup: go install github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  gobin="$(mktemp -d)"
  GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  $SUDO install -m 0755 "$gobin/server" /usr/local/bin/toxiproxy-server
  rm -rf "$gobin"
fi

echo "setup: pip install -e .[all,dev]"
python -m pip install -q --disable-pip-version-check -e ".[all,dev]"

# The real MockServer beside the project's engine (needs Java; Maven Central): the pinned jar
# into the cache. Without Java the engine serves as before.
if command -v java >/dev/null; then
  echo "setup: pytest-commons fetch mockserver"
  python -m pytest_commons.cli fetch mockserver
fi
# Apache Kafka for the local backend (jars from Maven Central, checked against pinned SHA-256
# sums; needs Java 17+ to run). Without it the local backend serves Kafka with Tansu.
echo "setup: pytest-commons fetch kafka"
python -m pytest_commons.cli fetch kafka \
  || echo "setup: warning: Apache Kafka could not be fetched; the local Kafka backend uses Tansu"

if [ "${COMMONS_SKIP_DOCKER:-0}" != "1" ] && [ -f containers/build.sh ]; then
  echo "setup: Docker engine and test images (COMMONS_SKIP_DOCKER=1 skips this)"
  bash containers/build.sh
fi
echo "setup: done"

#!/usr/bin/env bash
# Builds pytest-commons' Docker test images locally (no registry is reachable on CI here):
#
#   pytest-commons/debian:bookworm     debootstrap --variant=minbase rootfs, `docker import`ed
#   pytest-commons/postgres:15         containers/postgres
#   pytest-commons/mariadb:10.11       containers/mariadb
#   pytest-commons/redis:7             containers/redis
#   pytest-commons/kafka:tansu         containers/kafka
#   pytest-commons/kafka:4.1.1         containers/kafka-apache (+ Apache Kafka's pinned jars,
#                                      staged from `pytest-commons fetch kafka`)
#   pytest-commons/localstack:moto     containers/localstack
#   pytest-commons/mockserver:engine   containers/mockserver (+ the engine's source, staged)
#   pytest-commons/mockserver:5.15.0   containers/mockserver-java (+ the pinned MockServer jar
#                                      from the cache, staged; `pytest-commons fetch mockserver`)
#   pytest-commons/rabbitmq:3.10       containers/rabbitmq
#
# Idempotent and fast when nothing changed: every image carries the label
# org.pytest-commons.context-hash (sha256 of its build context, plus the base image's id for
# the server images); an image whose tag exists with a matching label is skipped.
#
#   containers/build.sh                 # all images
#   containers/build.sh postgres redis  # only these (the base is always ensured)
#   FORCE=1 containers/build.sh         # rebuild even when the hash matches
#   DEBIAN_MIRROR=http://... containers/build.sh   # override the mirror
#
# See docs/docker-images.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

LABEL=org.pytest-commons.context-hash
BASE_TAG=pytest-commons/debian:bookworm
SUITE=bookworm
ALL_IMAGES=(postgres mariadb redis kafka kafka-apache localstack mockserver mockserver-java rabbitmq)
declare -A TAGS=(
  [postgres]=pytest-commons/postgres:15
  [mariadb]=pytest-commons/mariadb:10.11
  [redis]=pytest-commons/redis:7
  [kafka]=pytest-commons/kafka:tansu
  [kafka-apache]=pytest-commons/kafka:4.1.1
  [localstack]=pytest-commons/localstack:moto
  [mockserver]=pytest-commons/mockserver:engine
  [mockserver-java]=pytest-commons/mockserver:5.15.0
  [rabbitmq]=pytest-commons/rabbitmq:3.10
)

say() { echo "containers/build.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }
image_size() { docker image inspect --format '{{ .Size }}' "$1" | awk '{ printf "%d MB", $1 / 1e6 }'; }

# The Debian mirror this machine's apt already uses (deb822 "URIs:" or one-line "deb URI").
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local files=() f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && files+=("$f")
  done
  uri=$( { grep -hE '^\s*URIs:' "${files[@]}" 2>/dev/null | awk '{ for (i = 2; i <= NF; i++) print $i }'
           grep -hE '^\s*deb\s' "${files[@]}" 2>/dev/null | sed -E 's/\[[^]]*\]//' | awk '{ print $2 }'
         } | grep -E '/debian/?$' | grep -v -- '-security' | head -n 1)
  if [ -z "$uri" ]; then
    say "no Debian mirror in this machine's apt sources: set DEBIAN_MIRROR=<the mirror's URL>"
    exit 1
  fi
  echo "$uri"
}

# sha256 over the names and contents of the files in a build context (sorted, stable).
context_hash() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# TLS-intercepting egress: pip inside the images must trust the same CAs as this host.
host_ca_files() {
  ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
}

build_base() {
  local start mirror hash rootfs
  start=$(now)
  mirror=$(debian_mirror)
  hash=$( { echo "minbase $SUITE $mirror v1"; cat "$ROOT/containers/build.sh" | sed -n '/^build_base()/,/^}/p'
            for f in $(host_ca_files); do sha256sum "$f"; done; } | sha256sum | cut -c1-16)
  if [ "${FORCE:-0}" != 1 ] && [ "$(image_label "$BASE_TAG")" = "$hash" ]; then
    printf '%-32s up to date   %5ss  %s\n' "$BASE_TAG" "$(elapsed "$start")" "$(image_size "$BASE_TAG")"
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    say "installing debootstrap"
    $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  # RAM-backed scratch dir when there is one: debootstrap is file-heavy.
  local scratch=/var/tmp
  [ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
  rootfs=$(mktemp -d "$scratch/pytest-commons-rootfs.XXXXXX")
  ROOTFS=$rootfs
  say "debootstrap --variant=minbase $SUITE from $mirror (≈40 s)"
  if ! $SUDO debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1
  fi
  rm -f "$rootfs.log"
  # Container-friendly defaults, as Docker's official debian image has them.
  $SUDO tee "$rootfs/etc/apt/sources.list" >/dev/null <<SRC
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb ${mirror%/debian*}/debian-security $SUITE-security main
SRC
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$rootfs/usr/sbin/policy-rc.d" >/dev/null
  $SUDO chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  $SUDO tee "$rootfs/etc/apt/apt.conf.d/docker-minimal" >/dev/null <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT
  $SUDO tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker-minimal" >/dev/null <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
  local ca
  for ca in $(host_ca_files); do
    $SUDO mkdir -p "$rootfs/usr/local/share/ca-certificates"
    $SUDO cp "$ca" "$rootfs/usr/local/share/ca-certificates/"
  done
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    $SUDO mkdir -p "$rootfs/etc/ssl/certs"
    $SUDO cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  fi
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*
  $SUDO tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change "LABEL $LABEL=$hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    - "$BASE_TAG" >/dev/null
  $SUDO rm -rf "$rootfs"; ROOTFS=""
  printf '%-32s built        %5ss  %s\n' "$BASE_TAG" "$(elapsed "$start")" "$(image_size "$BASE_TAG")"
}

# Images that ship project code get a staged copy of the context with that code under src/
# (the hash then covers the code too). mockserver: the engine (standard library only).
stage_context() {
  local name=$1 dir="$ROOT/containers/$1" staged jar jars
  if [ "$name" = mockserver-java ]; then
    staged="$STAGE_ROOT/$name"
    rm -rf "$staged"; mkdir -p "$staged"
    cp -a "$dir/." "$staged/"
    jar=$(python -m pytest_commons.cli fetch mockserver | sed -n 's/^mockserver: //p')
    cp "$jar" "$staged/"
    echo "$staged"
    return
  fi
  if [ "$name" = kafka-apache ]; then
    # the jars the local backend runs, checked against their pinned SHA-256 sums
    jars=$(python -c 'from pytest_commons.plugin.settings import Settings
from pytest_commons.services.kafka import dist as kafka_dist
print(kafka_dist.fetch(Settings.from_env().cache_dir(), log=lambda line: None))') \
      || { say "pytest-commons fetch kafka failed: cannot build ${TAGS[$name]}"; exit 1; }
    staged="$STAGE_ROOT/$name"
    rm -rf "$staged"; mkdir -p "$staged"
    cp -a "$dir/." "$staged/"
    cp -a "$jars" "$staged/jars"
    echo "$staged"
    return
  fi
  if [ "$name" != mockserver ]; then echo "$dir"; return; fi
  staged="$STAGE_ROOT/$name"
  rm -rf "$staged"; mkdir -p "$staged"
  cp -a "$dir/." "$staged/"
  # the engine (standard library only) and what importing it runs: the package roots and the
  # services' catalogue entries (plain data)
  local pkg="$staged/src/pytest_commons" svc
  mkdir -p "$pkg/core" "$pkg/services"
  cp "$ROOT/pytest_commons/__init__.py" "$pkg/"
  cp "$ROOT/pytest_commons/core/__init__.py" "$ROOT/pytest_commons/core/config.py" "$pkg/core/"
  cp "$ROOT/pytest_commons/services/__init__.py" "$pkg/services/"
  for svc in "$ROOT"/pytest_commons/services/*/; do
    mkdir -p "$pkg/services/$(basename "$svc")"
    cp "$svc/__init__.py" "$pkg/services/$(basename "$svc")/"
  done
  cp -a "$ROOT/pytest_commons/services/mockserver/engine" "$pkg/services/mockserver/"
  find "$staged/src" -name '__pycache__' -prune -exec rm -rf {} +
  echo "$staged"
}

build_image() {
  local name=$1 tag=${TAGS[$1]} dir start hash log
  start=$(now)
  dir=$(stage_context "$name")
  [ -f "$dir/Dockerfile" ] || { say "no $dir/Dockerfile"; exit 1; }
  hash=$( { context_hash "$dir"; docker image inspect --format '{{ .Id }}' "$BASE_TAG"; } | sha256sum | cut -c1-16)
  if [ "${FORCE:-0}" != 1 ] && [ "$(image_label "$tag")" = "$hash" ]; then
    printf '%-32s up to date   %5ss  %s\n' "$tag" "$(elapsed "$start")" "$(image_size "$tag")"
    return
  fi
  log=$(mktemp /tmp/pytest-commons-build-"$name".XXXXXX.log)
  if ! DOCKER_BUILDKIT=0 docker build --label "$LABEL=$hash" -t "$tag" "$dir" >"$log" 2>&1; then
    say "docker build of $tag failed; last lines of $log:"
    tail -n 30 "$log" >&2
    exit 1
  fi
  rm -f "$log"
  printf '%-32s built        %5ss  %s\n' "$tag" "$(elapsed "$start")" "$(image_size "$tag")"
}

ROOTFS=""
STAGE_ROOT=$(mktemp -d /tmp/pytest-commons-contexts.XXXXXX)
trap '[ -n "$ROOTFS" ] && $SUDO rm -rf "$ROOTFS" "$ROOTFS.log"; rm -rf "$STAGE_ROOT"' EXIT
bash "$ROOT/scripts/install-docker.sh"
images=("$@")
[ ${#images[@]} -eq 0 ] && images=("${ALL_IMAGES[@]}")
for name in "${images[@]}"; do
  [ -n "${TAGS[$name]:-}" ] || { say "unknown image '$name' (known: ${ALL_IMAGES[*]})"; exit 2; }
done
build_base
for name in "${images[@]}"; do
  build_image "$name"
done
# Dangling layers of superseded builds.
docker image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true

#!/usr/bin/env bash
set -Eeo pipefail
# `docker run img --flag` or `docker run img /path/redis.conf` -> redis-server ...
if [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi

if [ "$1" = redis-server ]; then
  shift
  # Defaults first: later arguments (the user's) win.
  defaults=(--protected-mode no --bind 0.0.0.0 --port 6379 --dir /data --daemonize no)
  if [ "${1%.conf}" != "${1:-}" ] && [ -n "${1:-}" ]; then
    conf=$1; shift
    set -- redis-server "$conf" "${defaults[@]}" "$@"
  else
    set -- redis-server "${defaults[@]}" "$@"
  fi
  if [ "$(id -u)" = 0 ]; then
    chown redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"

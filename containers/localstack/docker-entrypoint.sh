#!/usr/bin/env bash
# LocalStack contract on moto: every service on 0.0.0.0:$GATEWAY_PORT (default 4566, LocalStack's
# edge port; EDGE_PORT is accepted too); "Ready." is logged once the server answers HTTP, which
# is what testcontainers' LocalStackContainer waits for. SERVICES is accepted and ignored (moto
# serves all of its services). AWS_DEFAULT_REGION is the default region.
# State: POST /moto-api/reset wipes everything (global).
set -Eeo pipefail

if [ "${1:-}" = moto_server ] && [ "$#" -eq 1 ]; then
  port=${GATEWAY_PORT:-${EDGE_PORT:-4566}}
  [ -n "${SERVICES:-}" ] && echo "SERVICES=$SERVICES (moto serves all its services; ignored)"
  setpriv --reuid=65534 --regid=65534 --clear-groups moto_server -H 0.0.0.0 -p "$port" &
  pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
  python3 - "$port" "$pid" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("moto_server exited before it answered")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1).read()
        break
    except Exception:
        time.sleep(0.02)
else:
    sys.exit("moto_server did not answer within 120 s")
PY
  echo "Ready."
  wait "$pid"
  exit $?
fi
exec "$@"

#!/usr/bin/env bash
# Starts `tansu broker` with in-memory storage, listening on $KAFKA_LISTENER
# (default tcp://0.0.0.0:9092), as nobody. Logs "ready in <n>ms" once it accepts connections.
#
# The advertised listener (what the broker tells clients to connect to in metadata) must be
# the address the *client* reaches -- with a published port: tcp://127.0.0.1:<host port>.
# It comes from, in this order:
#   KAFKA_ADVERTISED_LISTENER       tcp://host:port (or host:port), when the host port is known
#                                   before the start (fixed published port);
#   KAFKA_ADVERTISED_LISTENER_FILE  a path: the entrypoint waits (KAFKA_WAIT_SECONDS, default
#                                   120) until that file exists and is non-empty, then reads the
#                                   listener from it -- write it with `docker exec` once the
#                                   published port is known (the trick testcontainers'
#                                   KafkaContainer uses);
#   default                         tcp://127.0.0.1:9092 (right for -p 127.0.0.1:9092:9092 and
#                                   for --network host).
# Other env: KAFKA_CLUSTER_ID (tansu_cluster), KAFKA_STORAGE_ENGINE (memory://tansu/).
# Any other command (`docker run img tansu topic list ...`, `bash`) runs as given.
set -Eeo pipefail

if [ "$#" -eq 0 ] || { [ "$1" = tansu ] && [ "$#" -eq 1 ]; } || [ "${1:0:1}" = '-' ]; then
  [ "${1:-}" = tansu ] && shift
  advertised=${KAFKA_ADVERTISED_LISTENER:-}
  if [ -z "$advertised" ] && [ -n "${KAFKA_ADVERTISED_LISTENER_FILE:-}" ]; then
    echo "waiting for the advertised listener in $KAFKA_ADVERTISED_LISTENER_FILE"
    deadline=$(( SECONDS + ${KAFKA_WAIT_SECONDS:-120} ))
    until [ -s "$KAFKA_ADVERTISED_LISTENER_FILE" ]; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo >&2 "error: $KAFKA_ADVERTISED_LISTENER_FILE did not appear within ${KAFKA_WAIT_SECONDS:-120}s"
        exit 1
      fi
      sleep 0.01
    done
    read -r advertised < "$KAFKA_ADVERTISED_LISTENER_FILE"
  fi
  advertised=${advertised:-tcp://127.0.0.1:9092}
  case "$advertised" in *://*) ;; *) advertised="tcp://$advertised" ;; esac
  set -- tansu broker \
    --cluster-id "${KAFKA_CLUSTER_ID:-tansu_cluster}" \
    --listener-url "${KAFKA_LISTENER:-tcp://0.0.0.0:9092}" \
    --advertised-listener-url "$advertised" \
    --storage-engine "${KAFKA_STORAGE_ENGINE:-memory://tansu/}" \
    "$@"
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
  fi
fi
exec "$@"

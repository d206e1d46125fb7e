#!/usr/bin/env bash
# Starts Apache Kafka in KRaft mode the way the official apache/kafka image does:
#
# - no KAFKA_* configuration at all: a single broker+controller with the official defaults
#   (node 1, PLAINTEXT_HOST on 0.0.0.0:9092 advertised as localhost:9092, CLUSTER_ID
#   5L6g3nShT-eMCtK--X86sw, replication factors 1, no initial rebalance delay);
# - otherwise every KAFKA_<NAME> variable becomes a line of server.properties: the prefix is
#   dropped, the rest lower-cased, and "___" → "-", "__" → "_", "_" → "." (KAFKA_NODE_ID →
#   node.id, KAFKA_ADVERTISED_LISTENERS → advertised.listeners). Not converted: KAFKA_VERSION,
#   KAFKA_HEAP_OPTS, KAFKA_LOG4J_OPTS, KAFKA_OPTS, KAFKA_JMX_OPTS, KAFKA_JVM_PERFORMANCE_OPTS,
#   KAFKA_GC_LOG_OPTS, KAFKA_LOG4J_ROOT_LOGLEVEL, KAFKA_LOG4J_LOGGERS, KAFKA_TOOLS_LOG4J_LOGLEVEL;
# - KAFKA_LISTENERS, when unset, is KAFKA_ADVERTISED_LISTENERS with every host → 0.0.0.0;
# - KAFKA_LOG_DIRS defaults to /var/lib/kafka/data; the storage is formatted with $CLUSTER_ID
#   before the first start; a file /mnt/shared/config/server.properties is used as the base.
# The JVM gets KAFKA_HEAP_OPTS (default -Xmx512m -Xms128m), KAFKA_JVM_PERFORMANCE_OPTS and
# KAFKA_OPTS. The server runs as nobody. Any other command runs as given.
set -Eeo pipefail

if [ "$#" -ne 0 ] && [ "$1" != kafka ]; then
  exec "$@"
fi

config=/opt/kafka/config/server.properties
configured=$(env | grep -E '^KAFKA_' | grep -vE '^KAFKA_(VERSION|HEAP_OPTS?|LOG4J_OPTS|OPTS|JMX_OPTS|JVM_PERFORMANCE_OPTS|GC_LOG_OPTS|LOG4J_ROOT_LOGLEVEL|LOG4J_LOGGERS|TOOLS_LOG4J_LOGLEVEL)=' || true)
if [ -z "$configured" ] && [ ! -f /mnt/shared/config/server.properties ]; then
  echo "no KAFKA_* configuration: the official image's single-node defaults"
  export KAFKA_NODE_ID=1 KAFKA_PROCESS_ROLES=broker,controller
  export KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT
  export KAFKA_LISTENERS=PLAINTEXT://localhost:29092,CONTROLLER://localhost:29093,PLAINTEXT_HOST://0.0.0.0:9092
  export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://localhost:29092,PLAINTEXT_HOST://localhost:9092
  export KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0
  export KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1
  export KAFKA_CONTROLLER_QUORUM_VOTERS=1@localhost:29093 KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT
  export KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER
fi
export CLUSTER_ID=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
export KAFKA_LOG_DIRS=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
if [ -z "${KAFKA_LISTENERS:-}" ] && [ -n "${KAFKA_ADVERTISED_LISTENERS:-}" ] \
   && [ "${KAFKA_PROCESS_ROLES:-}" != controller ]; then
  export KAFKA_LISTENERS
  KAFKA_LISTENERS=$(echo "$KAFKA_ADVERTISED_LISTENERS" | sed -e 's|://[^:]*:|://0.0.0.0:|g')
fi

if [ -f /mnt/shared/config/server.properties ]; then
  cp /mnt/shared/config/server.properties "$config"
else
  : > "$config"
fi
env | grep -E '^KAFKA_' \
  | grep -vE '^KAFKA_(VERSION|HEAP_OPTS?|LOG4J_OPTS|OPTS|JMX_OPTS|JVM_PERFORMANCE_OPTS|GC_LOG_OPTS|LOG4J_ROOT_LOGLEVEL|LOG4J_LOGGERS|TOOLS_LOG4J_LOGLEVEL)=' \
  | while IFS='=' read -r name value; do
      key=${name#KAFKA_}
      key=$(echo "$key" | tr '[:upper:]' '[:lower:]' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
      printf '%s=%s\n' "$key" "$value"
    done >> "$config"

java_opts=(${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true} ${KAFKA_OPTS:-}
           -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp '/opt/kafka/libs/*')
run_as=()
if [ "$(id -u)" = 0 ]; then
  mkdir -p ${KAFKA_LOG_DIRS//,/ }
  chown -R 65534:65534 ${KAFKA_LOG_DIRS//,/ } /opt/kafka/config
  run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
"${run_as[@]}" java "${java_opts[@]}" kafka.tools.StorageTool format --ignore-formatted \
  -t "$CLUSTER_ID" -c "$config"
exec "${run_as[@]}" java "${java_opts[@]}" kafka.Kafka "$config"

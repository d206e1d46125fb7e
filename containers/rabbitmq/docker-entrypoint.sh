#!/usr/bin/env bash
set -Eeo pipefail
if [ "$1" = rabbitmq-server ]; then
  conf=/etc/rabbitmq/rabbitmq.conf
  {
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    echo "loopback_users = none"
    echo "log.console = true"
    echo "log.file = false"
    echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
    echo "default_user_tags.administrator = true"
  } > "$conf"
  chmod 600 "$conf"
  chown rabbitmq:rabbitmq "$conf"
  unset RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS
  export HOME=/var/lib/rabbitmq
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
  fi
  exec /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"

#!/usr/bin/env bash
# The official mariadb image's contract, reduced to what tests use. Every variable is read as
# MARIADB_<X> first, then MYSQL_<X>:
#   ROOT_PASSWORD (or ALLOW_EMPTY_ROOT_PASSWORD=1 / RANDOM_ROOT_PASSWORD=1), DATABASE, USER,
#   PASSWORD, ROOT_HOST (default %), INITDB_SKIP_TZINFO; /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh run against
#   $DATABASE. Listens on 0.0.0.0:3306.
set -Eeo pipefail

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') 0 [Note] [Entrypoint]: $*"; }
env_of() {  # env_of NAME [default] -> $MARIADB_NAME, else $MYSQL_NAME, else default
  local m="MARIADB_$1" y="MYSQL_$1"
  if [ -n "${!m:-}" ]; then printf '%s' "${!m}"; elif [ -n "${!y:-}" ]; then printf '%s' "${!y}"; else printf '%s' "${2:-}"; fi
}
sql_str() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_id() { printf '`%s`' "${1//\`/\`\`}"; }

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  DATADIR=/var/lib/mysql
  SOCKET=/run/mysqld/mysqld.sock
  mkdir -p "$DATADIR" /run/mysqld
  [ "$(id -u)" = 0 ] && chown mysql:mysql "$DATADIR" /run/mysqld
  # The image ships a datadir made by mariadb-install-db at build time (saves ≈1 s per start);
  # the marker says "installed, not yet configured".
  FRESH="$DATADIR/.pytest-commons-fresh"
  if [ ! -d "$DATADIR/mysql" ] || [ -f "$FRESH" ]; then
    ROOT_PASSWORD=$(env_of ROOT_PASSWORD)
    DATABASE=$(env_of DATABASE)
    USER_NAME=$(env_of USER)
    USER_PASSWORD=$(env_of PASSWORD)
    ROOT_HOST=$(env_of ROOT_HOST %)
    if [ -z "$ROOT_PASSWORD" ] && [ -z "$(env_of ALLOW_EMPTY_ROOT_PASSWORD)" ] \
       && [ -z "$(env_of RANDOM_ROOT_PASSWORD)" ] && [ -z "$(env_of ALLOW_EMPTY_PASSWORD)" ]; then
      echo >&2 "error: database is uninitialized and password option is not specified"
      echo >&2 "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
      exit 1
    fi
    if [ -n "$(env_of RANDOM_ROOT_PASSWORD)" ] && [ -z "$ROOT_PASSWORD" ]; then
      ROOT_PASSWORD=$(head -c 18 /dev/urandom | base64)
      echo "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
    fi

    if [ -f "$FRESH" ]; then
      log "Using the database files initialized at build time"
    else
      log "Initializing database files"
      mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --rpm --cross-bootstrap >/dev/null
      if [ -z "$(env_of INITDB_SKIP_TZINFO)" ]; then
        { echo "USE mysql;"; mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null; } \
          | mariadbd --no-defaults --user=mysql --datadir="$DATADIR" --bootstrap >/dev/null
      fi
      log "Database files initialized"
    fi

    log "Starting temporary server"
    "$@" --user=mysql --skip-networking --socket="$SOCKET" --wsrep-on=OFF &
    tmp_pid=$!
    for _ in $(seq 1 300); do
      mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
      kill -0 "$tmp_pid" 2>/dev/null || { echo >&2 "temporary server failed to start"; exit 1; }
      sleep 0.05
    done
    log "Temporary server started."

    client=(mariadb --protocol=socket --socket="$SOCKET" -uroot --binary-mode)
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      echo "DELETE FROM mysql.user WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_str "$ROOT_PASSWORD");"
      if [ "$ROOT_HOST" != localhost ]; then
        echo "CREATE USER 'root'@$(sql_str "$ROOT_HOST") IDENTIFIED BY $(sql_str "$ROOT_PASSWORD");"
        echo "GRANT ALL ON *.* TO 'root'@$(sql_str "$ROOT_HOST") WITH GRANT OPTION;"
        echo "GRANT PROXY ON ''@'%' TO 'root'@$(sql_str "$ROOT_HOST") WITH GRANT OPTION;"
      fi
      echo "DROP DATABASE IF EXISTS test;"
      if [ -n "$DATABASE" ]; then
        echo "CREATE DATABASE IF NOT EXISTS $(sql_id "$DATABASE");"
      fi
      if [ -n "$USER_NAME" ] && [ "$USER_NAME" != root ]; then
        echo "CREATE USER $(sql_str "$USER_NAME")@'%' IDENTIFIED BY $(sql_str "$USER_PASSWORD");"
        [ -n "$DATABASE" ] && echo "GRANT ALL ON $(sql_id "$DATABASE").* TO $(sql_str "$USER_NAME")@'%';"
      fi
      echo "FLUSH PRIVILEGES;"
    } | "${client[@]}"
    # From here on the root password is set.
    client+=(--password="$ROOT_PASSWORD")
    [ -n "$DATABASE" ] && client+=("$DATABASE")

    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh)     log "$0: running $f"; . "$f" ;;
        *.sql)    log "$0: running $f"; "${client[@]}" < "$f" ;;
        *.sql.gz) log "$0: running $f"; gunzip -c "$f" | "${client[@]}" ;;
        *.sql.xz) log "$0: running $f"; xzcat "$f" | "${client[@]}" ;;
        *)        log "$0: ignoring $f" ;;
      esac
    done

    log "Stopping temporary server"
    # SIGTERM + wait: `mariadb-admin shutdown` polls the pid file once a second (+0.9 s).
    kill -TERM "$tmp_pid"
    wait "$tmp_pid" || true
    rm -f "$FRESH"
    log "Temporary server stopped"
    echo
    log "MariaDB init process done. Ready for start up."
    echo
  fi
  set -- "$@" --user=mysql
fi

exec "$@"

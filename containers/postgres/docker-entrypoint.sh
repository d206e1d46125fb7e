#!/usr/bin/env bash
# The official postgres image's contract, reduced to what tests use:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER
#   (default postgres), POSTGRES_DB (default $POSTGRES_USER), POSTGRES_INITDB_ARGS,
#   POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh.
# Local (unix socket) connections are trusted, TCP needs the password; listens on 0.0.0.0:5432.
set -Eeo pipefail

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S.%3N UTC') [entrypoint] $*"; }

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

# The image carries a cluster initialised at build time for one superuser name (marker file
# .pytest-commons-baked-user). It is used as is when POSTGRES_USER matches and nothing asks
# for other initdb options; otherwise it is discarded and initdb runs as in the official image.
BAKED="$PGDATA/.pytest-commons-baked-user"
if [ "$1" = postgres ] && [ -f "$BAKED" ]; then
  if [ "${POSTGRES_USER:-postgres}" != "$(cat "$BAKED")" ] || [ -n "${POSTGRES_INITDB_ARGS:-}" ] \
     || [ "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" != scram-sha-256 ]; then
    find "$PGDATA" -mindepth 1 -delete
  fi
fi

if [ "$1" = postgres ] && { [ ! -s "$PGDATA/PG_VERSION" ] || [ -f "$BAKED" ]; }; then
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    echo >&2 "Error: Database is uninitialized and superuser password is not specified."
    echo >&2 "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)."
    exit 1
  fi
  q_id() { local s=${1//\"/\"\"}; printf '"%s"' "$s"; }
  q_str() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }
  single=()
  if [ -f "$BAKED" ]; then
    log "using the cluster initialised at build time (user $POSTGRES_USER, database $POSTGRES_DB)"
    single+=("ALTER ROLE $(q_id "$POSTGRES_USER") PASSWORD $(q_str "${POSTGRES_PASSWORD:-}");")
    # The baked cluster has a database named like its superuser: rename (cheap) or drop it.
    if [ "$POSTGRES_DB" = postgres ]; then
      single+=("DROP DATABASE $(q_id "$POSTGRES_USER");")
    elif [ "$POSTGRES_DB" != "$POSTGRES_USER" ]; then
      single+=("ALTER DATABASE $(q_id "$POSTGRES_USER") RENAME TO $(q_id "$POSTGRES_DB");")
    fi
    rm -f "$BAKED"
  else
    log "initdb (user $POSTGRES_USER, database $POSTGRES_DB)"
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --no-sync \
      --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS >/dev/null
    rm -f "$pwfile"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
fsync = off
synchronous_commit = off
full_page_writes = off
jit = off
CONF
    if [ "$POSTGRES_DB" != postgres ]; then
      single+=("CREATE DATABASE $(q_id "$POSTGRES_DB") OWNER $(q_id "$POSTGRES_USER");")
    fi
  fi
  if [ ${#single[@]} -gt 0 ]; then
    # Single-user mode: no temporary server (and nothing on TCP) before the real start.
    # -j: a statement ends at ";" + empty line, so values may contain newlines.
    printf '%s\n\n' "${single[@]}" | postgres --single -j -D "$PGDATA" -c fsync=off postgres >/dev/null
  fi
  shopt -s nullglob
  initfiles=(/docker-entrypoint-initdb.d/*)
  if [ ${#initfiles[@]} -gt 0 ]; then
    # Like the official image: a temporary server on the unix socket only.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    export PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" PGHOST=/var/run/postgresql
    for f in "${initfiles[@]}"; do
      case "$f" in
        *.sh)     log "running $f"; . "$f" ;;
        *.sql)    log "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc -q -f "$f" ;;
        *.sql.gz) log "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --no-psqlrc -q ;;
        *)        log "ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGUSER PGDATABASE PGHOST
  fi
  echo
  echo 'PostgreSQL init process complete; ready for start up.'
  echo
fi

exec "$@"

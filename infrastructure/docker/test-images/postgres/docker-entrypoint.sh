#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# TEST IMAGE entrypoint: initialises the data directory on first start the way the
# official image does (superuser POSTGRES_USER with POSTGRES_PASSWORD, database
# POSTGRES_DB, scram-sha-256 for TCP), then runs postgres in the foreground.
set -euo pipefail
# Sockets in /tmp: podman mounts its own tmpfs over /run in a read-only container, which
# hides the /var/run/postgresql tmpfs of the compose file (Docker does not).
export PGHOST=/tmp
sock=(-c unix_socket_directories=/tmp)
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "$#" -gt 0 ] && [ "$1" = postgres ]; then shift; fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    pw=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pw" --auth-local=trust \
        --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' ${sock[*]}" -w start >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d postgres \
            -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "initialised $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "${sock[@]}" "$@"

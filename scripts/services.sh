#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Local PostgreSQL and Redis for running Almanac on a developer machine.
#
#   scripts/services.sh start  STATE_DIR   start both (idempotent), write STATE_DIR/services.env
#   scripts/services.sh stop   STATE_DIR   stop both
#   scripts/services.sh status STATE_DIR   print their state; exit 0 only if both run
#
# PostgreSQL: data in STATE_DIR/pg (initdb on first use, superuser and database
# `almanac`, trust auth on loopback), listening on 127.0.0.1:${ALMANAC_DEV_PG_PORT:-55432}
# only, unix socket in STATE_DIR. Redis: 127.0.0.1:${ALMANAC_DEV_REDIS_PORT:-56379},
# appendonly, data in STATE_DIR/redis. Logs: STATE_DIR/postgres.log, STATE_DIR/redis.log.
# Run as root, PostgreSQL runs as the `postgres` user, which then owns STATE_DIR.
#
# Then: set -a; . STATE_DIR/services.env; set +a; build/almanac api
set -euo pipefail

usage() {
    echo "usage: scripts/services.sh start|stop|status STATE_DIR" >&2
    exit 64
}

[ $# -eq 2 ] || usage
cmd=$1
case "$cmd" in start | stop | status) ;; *) usage ;; esac
[ -n "$2" ] || usage
if [ ! -d "$2" ]; then
    if [ "$cmd" != start ]; then
        echo "postgres: stopped"
        echo "redis: stopped"
        [ "$cmd" = stop ] && exit 0 || exit 3
    fi
    mkdir -p "$2"
fi
state=$(cd "$2" && pwd)

pg_port=${ALMANAC_DEV_PG_PORT:-55432}
redis_port=${ALMANAC_DEV_REDIS_PORT:-56379}

pg_bin=${ALMANAC_PG_BIN:-}
if [ -z "$pg_bin" ]; then
    best=0
    for d in /usr/lib/postgresql/*/bin; do # the highest installed major version
        v=${d#/usr/lib/postgresql/}
        v=${v%/bin}
        if [[ $v =~ ^[0-9]+$ ]] && [ -x "$d/postgres" ] && [ "$v" -gt "$best" ]; then
            best=$v
            pg_bin=$d
        fi
    done
fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
    echo "services.sh: PostgreSQL server binaries not found (set ALMANAC_PG_BIN)" >&2
    exit 1
fi

pgdata=$state/pg
pglog=$state/postgres.log
redis_dir=$state/redis
redis_log=$state/redis.log
redis_pidfile=$state/redis.pid
redis_portfile=$state/redis.port

# Run a PostgreSQL tool as the postgres user when we are root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    [ -f "$pgdata/PG_VERSION" ] && as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1
}

# Port of the running postmaster (line 4 of postmaster.pid), else the configured one.
pg_actual_port() {
    if pg_running && [ -f "$pgdata/postmaster.pid" ]; then
        sed -n 4p "$pgdata/postmaster.pid"
    else
        echo "$pg_port"
    fi
}

redis_pid() {
    [ -f "$redis_pidfile" ] || return 1
    local pid
    pid=$(cat "$redis_pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

redis_actual_port() {
    if redis_pid >/dev/null && [ -f "$redis_portfile" ]; then cat "$redis_portfile"; else echo "$redis_port"; fi
}

wait_until() { # timeout_s description command...
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "services.sh: $what not ready after ${timeout}s" >&2
            return 1
        fi
        sleep 0.2
    done
}

start_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        # The postgres user writes the data dir, the log and the socket in STATE_DIR.
        chown postgres: "$state"
        if ! runuser -u postgres -- test -w "$state"; then
            echo "services.sh: user postgres cannot reach $state (a parent dir is not traversable); pick another STATE_DIR" >&2
            exit 1
        fi
    fi
    if [ ! -f "$pgdata/PG_VERSION" ]; then
        echo "services.sh: initdb $pgdata"
        rm -rf "$pgdata"
        as_pg "$pg_bin/initdb" -D "$pgdata" -U almanac --auth-local=trust --auth-host=trust \
            -E UTF8 --locale=C >>"$pglog" 2>&1 || {
            echo "services.sh: initdb failed, see $pglog" >&2
            exit 1
        }
        echo "CREATE DATABASE almanac;" | as_pg "$pg_bin/postgres" --single -D "$pgdata" postgres >>"$pglog" 2>&1 || {
            echo "services.sh: creating database almanac failed, see $pglog" >&2
            exit 1
        }
    fi
    if pg_running; then
        echo "postgres: already running on port $(pg_actual_port)"
    else
        touch "$pglog"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$pglog"
        as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pglog" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$state'" start >/dev/null || {
            echo "services.sh: postgres failed to start, see $pglog:" >&2
            tail -n 20 "$pglog" >&2 || true
            exit 1
        }
        echo "postgres: started on port $pg_port"
    fi
    wait_until 60 postgres pg_isready -q -h 127.0.0.1 -p "$(pg_actual_port)" -U almanac -d almanac
}

start_redis() {
    if redis_pid >/dev/null; then
        echo "redis: already running on port $(redis_actual_port)"
    else
        mkdir -p "$redis_dir"
        rm -f "$redis_pidfile"
        redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
            --dir "$redis_dir" --appendonly yes \
            --daemonize yes --pidfile "$redis_pidfile" --logfile "$redis_log" || {
            echo "services.sh: redis failed to start, see $redis_log" >&2
            exit 1
        }
        echo "$redis_port" >"$redis_portfile"
        wait_until 30 "redis pidfile" test -s "$redis_pidfile" || {
            tail -n 20 "$redis_log" >&2 || true
            exit 1
        }
        echo "redis: started on port $redis_port"
    fi
    wait_until 30 redis redis_ping "$(redis_actual_port)" || {
        tail -n 20 "$redis_log" >&2 || true
        exit 1
    }
}

redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

write_env() {
    local tmp=$state/services.env.tmp
    {
        echo "ALMANAC_DATABASE_URL=postgresql://almanac@127.0.0.1:$(pg_actual_port)/almanac"
        echo "ALMANAC_REDIS_URL=redis://127.0.0.1:$(redis_actual_port)/0"
    } >"$tmp"
    mv "$tmp" "$state/services.env"
}

stop_pg() {
    if pg_running; then
        as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null
        echo "postgres: stopped"
    else
        echo "postgres: not running"
    fi
}

stop_redis() {
    local pid
    if pid=$(redis_pid); then
        kill "$pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "services.sh: redis (pid $pid) did not stop, killing it" >&2
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        rm -f "$redis_pidfile"
        echo "redis: stopped"
    else
        echo "redis: not running"
    fi
}

case "$cmd" in
start)
    start_pg
    start_redis
    write_env
    echo "wrote $state/services.env"
    ;;
stop)
    stop_pg
    stop_redis
    ;;
status)
    rc=0
    if pg_running; then echo "postgres: running on port $(pg_actual_port)"; else echo "postgres: stopped"; rc=3; fi
    if redis_pid >/dev/null; then echo "redis: running on port $(redis_actual_port)"; else echo "redis: stopped"; rc=3; fi
    exit $rc
    ;;
esac

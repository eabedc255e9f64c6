# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by almanac-backup.sh and almanac-restore.sh: where the commands run.
#
# ALMANAC_BACKUP_MODE
#   compose (default)  the Compose deployment: PostgreSQL tools run in its postgres
#                      container, `almanac` in its api container, through
#                      `<engine> exec -i` (never a TTY: a TTY corrupts binary output).
#                      The containers are found by their Compose labels:
#                      ALMANAC_COMPOSE_PROJECT (default: the directory name Compose uses,
#                      "docker"), services ALMANAC_BACKUP_DB_SERVICE (postgres) and
#                      ALMANAC_BACKUP_APP_SERVICE (api); ALMANAC_CONTAINER_ENGINE docker
#                      or podman (default: docker when installed, else podman). Or name
#                      the containers: ALMANAC_BACKUP_DB_CONTAINER, ALMANAC_BACKUP_APP_CONTAINER.
#   local              the tools on this host: pg_dump, pg_restore and psql connect with
#                      libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE, and
#                      PGPASSFILE or PGPASSWORD: never a password in argv), and
#                      $ALMANAC_BIN (default almanac) reads its ALMANAC_* settings. For
#                      Kubernetes jobs and for tests.
#   prepared           backup only, for Kubernetes, where the almanac image has no shell
#                      and the PostgreSQL image no almanac: the PostgreSQL tools as in
#                      local mode, and what `almanac` would say read from
#                      ALMANAC_BACKUP_PREPARED, a directory an init container filled
#                      with `almanac snapshot save --out DIR/vectors.snapshot --meta
#                      DIR/meta.json` (infrastructure/k8s/components/backup).
# ALMANAC_BACKUP_DATABASE_URL (local and prepared modes): a postgresql:// URL of the form
#   Almanac's ALMANAC_DATABASE_URL takes (user@host:port/database?sslmode=...), which
#   sets libpq's PGUSER, PGHOST, PGPORT, PGDATABASE and the sslmode, sslrootcert,
#   connect_timeout of its query; the password stays in PGPASSWORD or PGPASSFILE. The
#   Kubernetes CronJob passes the deployment's own ALMANAC_DATABASE_URL.
# Nothing here prints a setting's value; the database's password never leaves its
# container in compose mode (the tools there connect over the local socket).

set -euo pipefail
umask 077

mode=${ALMANAC_BACKUP_MODE:-compose}
die() { # code, message
    echo "almanac-backup: error: $2" >&2
    exit "$1"
}
note() { echo "almanac-backup: $*" >&2; }

engine() {
    if [ -n "${ALMANAC_CONTAINER_ENGINE:-}" ]; then
        echo "$ALMANAC_CONTAINER_ENGINE"
    elif command -v docker >/dev/null 2>&1; then
        echo docker
    else
        echo podman
    fi
}

container_of() { # service, override
    if [ -n "$2" ]; then
        echo "$2"
        return
    fi
    local project=${ALMANAC_COMPOSE_PROJECT:-docker} name
    name=$($(engine) ps --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -n 1)
    [ -n "$name" ] || die 69 "no running container of service '$1' in Compose project '$project' (set ALMANAC_COMPOSE_PROJECT)"
    echo "$name"
}

case $mode in
compose)
    db_container=$(container_of "${ALMANAC_BACKUP_DB_SERVICE:-postgres}" "${ALMANAC_BACKUP_DB_CONTAINER:-}")
    app_container=$(container_of "${ALMANAC_BACKUP_APP_SERVICE:-api}" "${ALMANAC_BACKUP_APP_CONTAINER:-}")
    ;;
local) ;;
prepared)
    prepared=${ALMANAC_BACKUP_PREPARED:?ALMANAC_BACKUP_PREPARED must name the directory of the init container}
    [ -f "$prepared/meta.json" ] || die 1 "$prepared/meta.json is missing: the snapshot init container did not finish"
    ;;
*) die 64 "ALMANAC_BACKUP_MODE must be compose, local or prepared" ;;
esac

# libpq's variables from ALMANAC_BACKUP_DATABASE_URL (above): the PostgreSQL tools take
# a URL only as an argument, and these run as shell commands of their own.
pg_env_from_url() { # url
    local rest=$1 query="" auth hostport kv
    case $rest in
    postgresql://* | postgres://*) rest=${rest#*://} ;;
    *) die 64 "ALMANAC_BACKUP_DATABASE_URL must be a postgresql:// URL" ;;
    esac
    case $rest in *%*) die 64 "ALMANAC_BACKUP_DATABASE_URL: percent-encoding is not supported; set libpq's PG* variables instead" ;; esac
    case $rest in *\?*) query=${rest#*\?} rest=${rest%%\?*} ;; esac
    case $rest in */*) export PGDATABASE=${rest#*/} ;; esac
    hostport=${rest%%/*}
    case $hostport in *@*)
        auth=${hostport%@*} hostport=${hostport##*@}
        case $auth in *:*) die 64 "ALMANAC_BACKUP_DATABASE_URL must not hold a password (PGPASSWORD, PGPASSFILE)" ;; esac
        export PGUSER=$auth
        ;;
    esac
    case $hostport in *:*) export PGPORT=${hostport##*:} hostport=${hostport%:*} ;; esac
    [ -z "$hostport" ] || export PGHOST=$hostport
    local IFS='&'
    for kv in $query; do
        case $kv in
        sslmode=*) export PGSSLMODE=${kv#*=} ;;
        sslrootcert=*) export PGSSLROOTCERT=${kv#*=} ;;
        connect_timeout=*) export PGCONNECT_TIMEOUT=${kv#*=} ;;
        *) die 64 "ALMANAC_BACKUP_DATABASE_URL: the parameter '${kv%%=*}' is not supported here" ;;
        esac
    done
}
if [ -n "${ALMANAC_BACKUP_DATABASE_URL:-}" ]; then
    [ "$mode" != compose ] || die 64 "ALMANAC_BACKUP_DATABASE_URL is for the local and prepared modes"
    pg_env_from_url "$ALMANAC_BACKUP_DATABASE_URL"
fi

# in_db 'shell command': runs in the database's environment, with PGUSER and PGDATABASE
# set; stdin and stdout pass through untouched.
in_db() {
    if [ "$mode" != compose ]; then
        sh -c "$1"
    else
        # shellcheck disable=SC2016 # expanded inside the container
        # The server's own socket (the official image's, or /tmp), else TCP on loopback;
        # the password, when asked for, is read inside the container.
        $(engine) exec -i "$db_container" sh -c \
            'export PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
             if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE"); else PGPASSWORD=${POSTGRES_PASSWORD:-}; fi
             for d in /var/run/postgresql /tmp; do [ -n "${PGHOST:-}" ] || [ ! -S "$d/.s.PGSQL.5432" ] || PGHOST=$d; done
             export PGPASSWORD PGHOST="${PGHOST:-127.0.0.1}"; '"$1"
    fi
}

# in_app almanac-arguments...: `almanac` with the deployment's settings.
in_app() {
    if [ "$mode" = prepared ]; then
        case "$*" in
        "version --json" | "snapshot info") cat "$prepared/meta.json" ;;
        "snapshot save")
            cat "$prepared/vectors.snapshot"
            cat "$prepared/meta.json" >&2
            ;;
        *) die 64 "almanac $* cannot run in prepared mode" ;;
        esac
    elif [ "$mode" = local ]; then
        "${ALMANAC_BIN:-almanac}" "$@"
    else
        $(engine) exec -i "$app_container" almanac "$@"
    fi
}

# A value of our own flat JSON: json_get file-or-text key -> the number or string.
json_get() {
    printf '%s' "$1" | tr -d '\n' | sed -n "s/.*\"$2\": *\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" | head -n 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

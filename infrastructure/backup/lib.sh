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
*) die 64 "ALMANAC_BACKUP_MODE must be compose or local" ;;
esac

# in_db 'shell command': runs in the database's environment, with PGUSER and PGDATABASE
# set; stdin and stdout pass through untouched.
in_db() {
    if [ "$mode" = local ]; then
        sh -c "$1"
    else
        # shellcheck disable=SC2016 # expanded inside the container
        $(engine) exec -i "$db_container" sh -c \
            'export PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"; '"$1"
    fi
}

# in_app almanac-arguments...: `almanac` with the deployment's settings.
in_app() {
    if [ "$mode" = local ]; then
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

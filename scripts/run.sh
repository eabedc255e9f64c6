#!/usr/bin/env bash
# Runs Almanac locally: installs what is missing, builds, starts PostgreSQL and Redis under
# .state/ on loopback ports, then the api in the foreground. Ctrl-C stops it all.
#
# Qdrant is not packaged for Debian, so the local run goes without it unless
# ALMANAC_QDRANT_URL is set: search is keyword only then, as the logs and /ready say.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=${ALMANAC_STATE_DIR:-$root/.state}

scripts/deps.sh
ALM_TESTS=0 scripts/build.sh
mkdir -p "$state"
scripts/services.sh start "$state"

# A development JWT secret, random and kept across restarts so tokens stay valid.
if [ ! -s "$state/jwt_secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/jwt_secret")
fi

set -a
# shellcheck disable=SC1091
. "$state/services.env"
set +a
export ALMANAC_ENV=${ALMANAC_ENV:-development}
export ALMANAC_LISTEN=${ALMANAC_LISTEN:-127.0.0.1:8000}
export ALMANAC_JWT_SECRET_FILE=$state/jwt_secret
unset ALMANAC_JWT_SECRET

pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/services.sh stop "$state" || true
}
trap stop INT TERM EXIT

build/almanac api &
pids+=($!)

echo "almanac: api on http://$ALMANAC_LISTEN (health: /health, readiness: /ready); Ctrl-C stops" >&2
wait -n "${pids[@]}"

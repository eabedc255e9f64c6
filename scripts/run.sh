#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs Almanac locally: installs what is missing, builds, starts PostgreSQL and Redis under
# .state/ on loopback ports, migrates the database, then runs the api, a worker and the
# beat in the foreground. Ctrl-C stops it all.
#
# Qdrant is not packaged for Debian, so the local run goes without it unless
# ALMANAC_QDRANT_URL is set: search is keyword only then, as the logs and /ready say.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=${ALMANAC_STATE_DIR:-$root/.state}
unset ALMANAC_STATE_DIR # this script's, not a service setting (they warn about unknown ones)

scripts/deps.sh
ALM_TESTS=0 scripts/build.sh
scripts/frontend.sh build
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
# The api listens on loopback only, behind our nginx, which sets X-Real-IP: sign-in
# limits then count per browser address rather than per nginx.
export ALMANAC_TRUST_PROXY=${ALMANAC_TRUST_PROXY:-true}
export ALMANAC_JWT_SECRET_FILE=$state/jwt_secret
unset ALMANAC_JWT_SECRET

# The services run in their own sessions (setsid), so that Ctrl-C reaches this script
# alone and each service gets exactly one SIGTERM: a graceful drain, not a fast exit.
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
    done
    scripts/services.sh stop "$state" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build/almanac migrate
# A first administrator, once, with a random password kept in the state folder.
if [ ! -s "$state/admin_password" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/admin_password")
    build/almanac user create --admin --email admin@localhost --password-file "$state/admin_password"
fi
ALMANAC_PROBE_LISTEN=127.0.0.1:8003 setsid build/almanac api &
pids+=($!)
ALMANAC_PROBE_LISTEN=127.0.0.1:8001 setsid build/almanac worker &
pids+=($!)
ALMANAC_PROBE_LISTEN=127.0.0.1:8002 setsid build/almanac beat &
pids+=($!)
# The web frontend: nginx (as a non-root user, its prefix under the state dir) serving
# frontend/dist and proxying /api/ to the api.
export ALMANAC_UI_LISTEN=${ALMANAC_UI_LISTEN:-127.0.0.1:8080}
ALMANAC_API_UPSTREAM=127.0.0.1:${ALMANAC_LISTEN##*:} setsid scripts/frontend.sh serve "$state/nginx" &
pids+=($!)

cat >&2 <<EOM
almanac: web UI on http://$ALMANAC_UI_LISTEN (nginx; /api/ goes to the api),
         api on http://$ALMANAC_LISTEN (health: /health, readiness: /ready; probes also on 127.0.0.1:8003),
         worker probes on 127.0.0.1:8001, beat probes on 127.0.0.1:8002.
         Sign in as admin@localhost with the password in $state/admin_password.
         Ctrl-C stops everything.
EOM
wait -n "${pids[@]}" || true

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds Almanac's web frontend and serves it with nginx (frontend/nginx/), proxying /api/
# to the api. Used by scripts/run.sh.
#
#   scripts/frontend.sh build        npm ci (when package-lock.json changed) + vite build -> frontend/dist/
#   scripts/frontend.sh serve DIR    render the nginx config into DIR and run nginx in the
#                                    foreground (exec: the caller's pid is nginx's master)
#
# serve takes the variables of frontend/nginx/render.sh (docs/frontend.md), e.g.
# ALMANAC_UI_LISTEN (127.0.0.1:8080), ALMANAC_API_UPSTREAM (127.0.0.1:8000),
# ALMANAC_MAX_UPLOAD_BYTES. nginx never runs as root: as root, it runs as www-data.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
    stamp=frontend/node_modules/.almanac-lock
    if [ ! -f "$stamp" ] || ! cmp -s frontend/package-lock.json "$stamp"; then
        npm --prefix frontend ci --no-audit --no-fund --loglevel=error
        cp frontend/package-lock.json "$stamp"
    fi
    npm --prefix frontend run build --silent
    ;;
serve)
    dir=${2:?usage: scripts/frontend.sh serve DIR}
    [ -f frontend/dist/index.html ] || { echo "frontend.sh: build first (scripts/frontend.sh build)" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    rm -rf "$dir/html"
    cp -r frontend/dist "$dir/html"
    : "${ALMANAC_NGINX_ACCESS_LOG:=$dir/access.log}"
    export ALMANAC_NGINX_ACCESS_LOG
    ALMANAC_UI_ROOT=$dir/html frontend/nginx/render.sh "$dir"
    run=()
    if [ "$(id -u)" -eq 0 ]; then
        chown -R www-data:www-data "$dir"
        run=(setpriv --reuid=www-data --regid=www-data --init-groups --)
    fi
    exec "${run[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e stderr -g 'daemon off;'
    ;;
*)
    echo "usage: scripts/frontend.sh build | serve DIR" >&2
    exit 64
    ;;
esac

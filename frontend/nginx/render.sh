#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Renders Almanac's nginx configuration into a folder: every *.template here goes through
# envsubst (only the ALMANAC_* variables listed below, so nginx's own $variables stay),
# the other *.conf files are copied as they are. Then run nginx with
#   nginx -p OUT -c OUT/nginx.conf -e stderr
# POSIX sh, for a container's entrypoint too. Variables and defaults: docs/frontend.md.
set -eu
out=${1:?usage: render.sh OUTPUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)

: "${ALMANAC_UI_LISTEN:=127.0.0.1:8080}"
: "${ALMANAC_UI_ROOT:=$(cd "$here/.." && pwd)/dist}"
: "${ALMANAC_API_UPSTREAM:=127.0.0.1:8000}"
: "${ALMANAC_MAX_UPLOAD_BYTES:=20971520}"
: "${ALMANAC_HTTP_TIMEOUT_S:=30}"
: "${ALMANAC_NGINX_MIME_TYPES:=/etc/nginx/mime.types}"
: "${ALMANAC_NGINX_ACCESS_LOG:=/dev/stdout}"
if [ -z "${ALMANAC_NGINX_RESOLVER:-}" ]; then
    # The first nameserver of this host (Docker's embedded DNS, 127.0.0.11, in a container).
    ALMANAC_NGINX_RESOLVER=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
    : "${ALMANAC_NGINX_RESOLVER:=127.0.0.1}"
fi
# Proxies in front of nginx (an Ingress controller, a load balancer) whose
# X-Forwarded-For names the real client: space-separated addresses or CIDRs. Empty: the
# peer's address is the client's (nothing in front, or a proxy that keeps it).
: "${ALMANAC_NGINX_REAL_IP_FROM:=}"
case $ALMANAC_MAX_UPLOAD_BYTES in
'' | *[!0-9]*) echo "render.sh: ALMANAC_MAX_UPLOAD_BYTES must be a number of bytes" >&2; exit 78 ;;
esac
case $ALMANAC_HTTP_TIMEOUT_S in
'' | *[!0-9]*) echo "render.sh: ALMANAC_HTTP_TIMEOUT_S must be a number of seconds" >&2; exit 78 ;;
esac
# Room for the multipart framing around a document of exactly the api's limit.
ALMANAC_NGINX_MAX_BODY=$((ALMANAC_MAX_UPLOAD_BYTES + 65536))
# A little more than the api keeps an idle connection, so the api closes first.
ALMANAC_NGINX_PROXY_TIMEOUT=$((ALMANAC_HTTP_TIMEOUT_S + 5))s
# A file (or /dev/stdout) in the `almanac` format, or `off`.
[ "$ALMANAC_NGINX_ACCESS_LOG" = off ] || ALMANAC_NGINX_ACCESS_LOG="$ALMANAC_NGINX_ACCESS_LOG almanac"
export ALMANAC_UI_LISTEN ALMANAC_UI_ROOT ALMANAC_API_UPSTREAM ALMANAC_NGINX_RESOLVER \
    ALMANAC_NGINX_MAX_BODY ALMANAC_NGINX_PROXY_TIMEOUT ALMANAC_NGINX_MIME_TYPES ALMANAC_NGINX_ACCESS_LOG

# shellcheck disable=SC2016 # envsubst's list of names: kept unexpanded on purpose
vars='${ALMANAC_UI_LISTEN} ${ALMANAC_UI_ROOT} ${ALMANAC_API_UPSTREAM} ${ALMANAC_NGINX_RESOLVER}
${ALMANAC_NGINX_MAX_BODY} ${ALMANAC_NGINX_PROXY_TIMEOUT} ${ALMANAC_NGINX_MIME_TYPES} ${ALMANAC_NGINX_ACCESS_LOG}'
mkdir -p "$out/temp"
for f in "$here"/*.template; do
    # shellcheck disable=SC2094 # reads the template, writes the file of another name
    envsubst "$vars" <"$f" >"$out/$(basename "$f" .template)"
done
for f in "$here"/*.conf; do
    cp "$f" "$out/"
done
# After the copies: real-ip.conf is generated, not a file of this folder.
: >"$out/real-ip.conf"
for cidr in $ALMANAC_NGINX_REAL_IP_FROM; do
    case $cidr in
    *[!0-9a-fA-F.:/]*) echo "render.sh: ALMANAC_NGINX_REAL_IP_FROM: '$cidr' is not an address or CIDR" >&2; exit 78 ;;
    esac
    printf 'set_real_ip_from %s;\n' "$cidr" >>"$out/real-ip.conf"
done
if [ -s "$out/real-ip.conf" ]; then
    printf 'real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n' >>"$out/real-ip.conf"
fi

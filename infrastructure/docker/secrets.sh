#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Creates and rotates the secret files of docker-compose.prod.yml, with the owner and
# modes the non-root services need, without ever printing a value or putting one in argv.
#
#   secrets.sh init [DIR]        create every missing secret with a random value
#   secrets.sh set NAME [DIR]    replace NAME with the value read from standard input
#                                (one line; e.g. a key your provider issued)
#   secrets.sh rotate NAME [DIR] replace NAME with a new random value
#   secrets.sh check [DIR]       verify names, owner and modes; exit 1 when wrong
#
# DIR defaults to ALMANAC_SECRETS_DIR, else ./secrets beside this script (where the
# compose file looks). Layout: DIR mode 0700 owned by the user running this (root on a
# Docker host), each file mode 0444. The directory keeps other host users out; the files
# are world-readable because Compose bind-mounts them unchanged (uid/gid/mode of a file
# secret are swarm-only) and four different non-root users read them in the containers
# (postgres/redis 999, qdrant 1000, almanac 10001); each container sees only its own.
# Files are written to a temporary name in DIR and renamed: never half-written.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
names="postgres_password redis_password qdrant_api_key jwt_secret"
cmd=${1:-}
case $cmd in
init | check) dir=${2:-${ALMANAC_SECRETS_DIR:-$here/secrets}} ;;
set | rotate)
    name=${2:?usage: secrets.sh $cmd NAME [DIR]}
    dir=${3:-${ALMANAC_SECRETS_DIR:-$here/secrets}}
    case " $names " in *" $name "*) ;; *) echo "secrets.sh: unknown secret '$name' (one of: $names)" >&2; exit 64 ;; esac
    ;;
*) echo "usage: secrets.sh init|check [DIR] | set|rotate NAME [DIR]" >&2; exit 64 ;;
esac

random_value() { # JWT: 48 random bytes in base64; the others: 32 bytes in hex
    if [ "$1" = jwt_secret ]; then openssl rand -base64 48 | tr -d '\n'; else openssl rand -hex 32; fi
}
write() { # name; the value on stdin
    tmp=$(mktemp "$dir/.$1.XXXXXX")
    cat >"$tmp"
    [ -s "$tmp" ] || { rm -f "$tmp"; echo "secrets.sh: $1: empty value refused" >&2; exit 65; }
    chmod 0444 "$tmp"
    mv -f "$tmp" "$dir/$1"
}

umask 077
case $cmd in
init)
    mkdir -p "$dir"
    chmod 0700 "$dir"
    for n in $names; do
        if [ -s "$dir/$n" ]; then
            chmod 0444 "$dir/$n"
            echo "secrets.sh: $n kept"
        else
            random_value "$n" | write "$n"
            echo "secrets.sh: $n created"
        fi
    done
    ;;
set)
    IFS= read -r value || [ -n "${value:-}" ] || { echo "secrets.sh: no value on standard input" >&2; exit 65; }
    printf '%s\n' "$value" | write "$name"
    unset value
    echo "secrets.sh: $name replaced"
    ;;
rotate)
    random_value "$name" | write "$name"
    echo "secrets.sh: $name replaced with a new random value"
    ;;
check)
    bad=0
    [ "$(stat -c %a "$dir")" = 700 ] || { echo "secrets.sh: $dir must be mode 0700 (is $(stat -c %a "$dir"))" >&2; bad=1; }
    for n in $names; do
        if [ ! -s "$dir/$n" ]; then echo "secrets.sh: $n is missing or empty" >&2; bad=1; continue; fi
        m=$(stat -c %a "$dir/$n")
        [ "$m" = 444 ] || { echo "secrets.sh: $n must be mode 0444 (is $m)" >&2; bad=1; }
    done
    [ $bad = 0 ] && echo "secrets.sh: $dir ok"
    exit $bad
    ;;
esac

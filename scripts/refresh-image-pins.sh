#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Pins every upstream image the production files name to the digest its tag points to
# now, keeping the tag beside it (docker.io/library/postgres:16.9-bookworm@sha256:...),
# in the Dockerfiles, the production compose file and the .env template. Run it where
# a registry is reachable (a release machine, CI with network), review the diff, commit.
#
#   scripts/refresh-image-pins.sh            # rewrites the files in place
#   scripts/refresh-image-pins.sh --check    # exit 1 if a reference is not pinned
#
# Only references on docker.io are resolved (Docker Hub's registry API: an anonymous
# pull token, then a HEAD of the manifest, whose Docker-Content-Digest is the digest of
# the multi-platform index that `docker pull` resolves). REGISTRY_URL and AUTH_URL change
# the endpoints (tests/integration/image_pins.test.mjs points them at a loopback
# stand-in); ALMANAC_PIN_ROOT the tree it works on. A tag that does not resolve stops the
# script before any file is written.
set -euo pipefail
root=${ALMANAC_PIN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
registry=${REGISTRY_URL:-https://registry-1.docker.io}
auth=${AUTH_URL:-https://auth.docker.io/token}
files=(infrastructure/docker/Dockerfile infrastructure/docker/Dockerfile.frontend
    infrastructure/docker/docker-compose.prod.yml infrastructure/.env.prod.template)
check=0
[ "${1:-}" = --check ] && check=1
# docker.io/<name>:<tag> with an optional @sha256:<digest>
ref_re='docker\.io/[a-z0-9._/-]+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?'

refs=$(cd "$root" && grep -ohE "$ref_re" "${files[@]}" | sort -u)
[ -n "$refs" ] || { echo "refresh-image-pins: no docker.io image reference found" >&2; exit 1; }

if [ $check = 1 ]; then
    bad=$(grep -vE '@sha256:[0-9a-f]{64}$' <<<"$refs" || true)
    [ -z "$bad" ] && { echo "refresh-image-pins: every reference is pinned"; exit 0; }
    mapfile -t unpinned <<<"$bad"
    printf 'not pinned: %s\n' "${unpinned[@]}" >&2
    exit 1
fi

digest_of() { # name tag -> sha256:... on stdout
    local name=$1 tag=$2 token digest
    case $name in */*) ;; *) name=library/$name ;; esac
    token=$(curl -fsS -m 20 "$auth?service=registry.docker.io&scope=repository:$name:pull" |
        node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(JSON.parse(d).token||JSON.parse(d).access_token))')
    digest=$(curl -fsS -m 20 -I -H "Authorization: Bearer $token" \
        -H 'Accept: application/vnd.oci.image.index.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$registry/v2/$name/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "refresh-image-pins: no digest for $name:$tag" >&2; return 1; }
    echo "$digest"
}

declare -A pinned
for ref in $refs; do
    base=${ref%@*}                    # docker.io/name:tag
    [ -n "${pinned[$base]:-}" ] && continue
    name=${base#docker.io/}
    tag=${name##*:}
    name=${name%:*}
    pinned[$base]="$base@$(digest_of "$name" "$tag")"
    echo "refresh-image-pins: ${pinned[$base]}"
done
# Every file is rewritten only after every tag resolved.
for f in "${files[@]}"; do
    for base in "${!pinned[@]}"; do
        esc=$(sed 's/[.[\*^$/]/\\&/g' <<<"$base")
        sed -i -E "s#${esc}(@sha256:[0-9a-f]{64})?#${pinned[$base]}#g" "$root/$f"
    done
done

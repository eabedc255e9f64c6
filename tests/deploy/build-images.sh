#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds every image the deployment test runs, with podman, from the Debian base that
# base-image.sh makes: the almanac and frontend images from their real Dockerfiles, and
# the test look-alikes of the upstream images (infrastructure/docker/test-images/).
# Layers are cached by podman between runs: a second run with unchanged sources takes
# seconds. Prints the image names it built as NAME=IMAGE lines on fd 3 when open.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
timg=$repo/infrastructure/docker/test-images
tag=${DEPLOY_TAG:-deploy-test}

build() { # image, context, extra args...
    local image=$1 ctx=$2 t0=$SECONDS
    shift 2
    if ! out=$(podman build --pull=never --format docker -q -t "$image" "$@" "$ctx" 2>&1); then
        printf '%s\n' "$out" | tail -40 >&2
        echo "build: $image FAILED" >&2
        return 1
    fi
    echo "build: $image ($((SECONDS - t0)) s)"
}

"$repo/tests/deploy/base-image.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build "localhost/almanac-test/postgres:$tag" "$timg/postgres" &
p1=$!
build "localhost/almanac-test/redis:$tag" "$timg/redis" &
p2=$!
wait $p1 && wait $p2

build "localhost/almanac-test/nginx:$tag" "$timg/nginx"

# The Qdrant stand-in: tests/lib, the test packages it imports, and the contract.
[ -d "$repo/tests/node_modules/ajv" ] || npm --prefix "$repo/tests" ci --no-audit --no-fund --loglevel=error
mkdir -p "$tmp/qdrant/tests/lib" "$tmp/qdrant/tests/deploy" "$tmp/qdrant/tests/contracts"
cp "$timg/qdrant-standin/Dockerfile" "$tmp/qdrant/"
cp "$repo/tests/lib/qdrant-standin.mjs" "$repo/tests/lib/httpstub.mjs" "$repo/tests/lib/services.mjs" "$tmp/qdrant/tests/lib/"
cp "$repo/tests/deploy/qdrant-standin-server.mjs" "$tmp/qdrant/tests/deploy/"
cp -a "$repo/tests/node_modules" "$tmp/qdrant/tests/node_modules"
cp "$repo/tests/contracts/qdrant-openapi-v1.19.json" "$tmp/qdrant/tests/contracts/"
# Same mtimes every run, so that podman's layer cache hits.
find "$tmp/qdrant" -exec touch -h -d @0 {} +
build "localhost/almanac-test/qdrant-standin:$tag" "$tmp/qdrant"

# The Dockerfile's base may be pinned by digest (scripts/refresh-image-pins.sh); the
# local base image is base-image.sh's, known here by its tag only.
build "localhost/almanac:$tag" "$repo" -f "$repo/infrastructure/docker/Dockerfile" \
    --build-arg BASE_IMAGE=docker.io/library/debian:bookworm-slim
# The frontend: built on this machine with the frontend's own commands, then packed by
# Dockerfile.frontend's `prebuilt` target (its default target builds in a node image,
# which cannot be pulled here).
fe=$repo/frontend
if [ ! -d "$fe/node_modules" ]; then
    npm --prefix "$fe" ci --no-audit --no-fund --loglevel=error || {
        echo "build: npm ci failed in frontend/ (lock file out of sync with package.json?); using npm install" >&2
        npm --prefix "$fe" install --no-audit --no-fund --loglevel=error
    }
fi
npm --prefix "$fe" run build --silent >/dev/null
build "localhost/almanac-frontend:$tag" "$repo" -f "$repo/infrastructure/docker/Dockerfile.frontend" \
    --target prebuilt --build-arg "NGINX_IMAGE=localhost/almanac-test/nginx:$tag"

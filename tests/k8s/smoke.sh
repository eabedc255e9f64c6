#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke run of the rendered all-in-one overlay with `podman kube play` (smoke.mjs says
# what is adapted for podman and why): builds the images (tests/deploy/build-images.sh,
# tag DEPLOY_TAG, default i14), plays the manifests on a network of its own (names
# prefixed SMOKE_ID, default i14; subnet SMOKE_SUBNET), signs in, uploads (up to the
# upload limit), searches and asks through the frontend, checks Qdrant's API key and the
# security contexts of every container, and removes everything. About 1.5 minutes with
# cached images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export DEPLOY_TAG=${DEPLOY_TAG:-i14}
for t in podman kubectl node openssl; do
    command -v "$t" >/dev/null || { echo "tests/k8s/smoke.sh: $t is required" >&2; exit 1; }
done
[ -d "$here/node_modules/kubernetes-models" ] || npm --prefix "$here" ci --no-audit --no-fund --loglevel=error
"$repo/tests/deploy/build-images.sh"
exec node "$here/smoke.mjs"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Kubernetes manifest checks: every overlay of infrastructure/k8s, alone and with its
# optional components, rendered with `kubectl kustomize`, validated strictly against the
# Kubernetes schemas (npm packages of this folder) and linted against the deployment
# rules (manifests.mjs); the frontend nginx's client address behind a proxy (realip.test.mjs).
# About 10 s. `--smoke` then runs smoke.sh (podman kube play of
# the all-in-one overlay; a few minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v kubectl >/dev/null || { echo "tests/k8s: kubectl (client, with kustomize v5) is required" >&2; exit 1; }
kv=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
[ "${kv:-0}" -ge 5 ] || { echo "tests/k8s: kubectl's kustomize is v${kv:-?}; v5 or later is needed (components)" >&2; exit 1; }
[ -d "$here/node_modules/kubernetes-models" ] ||
    npm --prefix "$here" ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v EBADENGINE || true
[ -d "$here/node_modules/kubernetes-models" ] || { echo "tests/k8s: npm ci failed" >&2; exit 1; }
node --test "$here/manifests.test.mjs" "$here/realip.test.mjs"
if [ "${1:-}" = --smoke ]; then
    "$here/smoke.sh"
fi

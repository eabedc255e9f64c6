#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Working set of every container of docker-compose.prod.yml under a stated load, the
# figures behind its reservations and limits (docs/deployment-runbook.md, "Resources").
#
#   bench/deploy-resources.sh        # as root; runs tests/deploy/run.sh (6 to 8 minutes)
#
# The load is the deployment test's "uploads at the limit" section: one document of
# exactly ALMANAC_MAX_UPLOAD_BYTES (20 MiB) and three concurrent 10 MiB ones uploaded
# through the frontend and ingested (~50,000 chunks), while a search runs every second;
# `podman stats` samples each container every second meanwhile (cgroup v1 keeps no peak).
# Idle is after start-up and a first small ingestion. Prints one table: idle, peak under
# load, and the compose file's reservation and limit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_require_tools podman podman-compose python3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
DEPLOY_PROJECT=${DEPLOY_PROJECT:-almanac-bench-$$} "$repo/tests/deploy/run.sh" >"$log" 2>&1 || {
    tail -40 "$log" >&2
    echo "bench: the deployment test failed; figures not taken" >&2
    exit 1
}
section() { sed -n "/^== $1/,/^== /p" "$log" | sed '1d;$d'; }
section 'idle memory' >"$log.idle"
section 'peak memory under load' >"$log.peak"
python3 - "$repo/infrastructure/docker/docker-compose.prod.yml" "$log.idle" "$log.peak" <<'PY'
import re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
idle = {l.split()[0]: " ".join(l.split()[1:2]) for l in open(sys.argv[2]) if l.strip()}
peak = {l.split()[0]: " ".join(l.split()[1:3]) for l in open(sys.argv[3]) if l.strip()}
print(f"{'service':10} {'idle':>10} {'peak (load)':>12} {'reservation':>12} {'limit':>8}")
for name, s in compose["services"].items():
    r = s["deploy"]["resources"]
    print(f"{name:10} {idle.get(name, '-'):>10} {peak.get(name, '-'):>12} "
          f"{r['reservations']['memory']:>12} {r['limits']['memory']:>8}")
PY
rm -f "$log.idle" "$log.peak"

#!/usr/bin/env bash
# The deployment test: infrastructure/docker/docker-compose.prod.yml started for real
# with podman and podman-compose, then used and broken on purpose.
#
#   tests/deploy/run.sh            # as root; about 3 minutes with cached images,
#                                  # 5 to 6 the first time (base image and builds)
#
# 1. builds the almanac image (infrastructure/docker/Dockerfile), the frontend image
#    (Dockerfile.frontend, --target prebuilt) and, for the upstream images that cannot
#    be pulled here, test look-alikes of PostgreSQL, Redis and nginx from Debian
#    packages and a STAND-IN FOR QDRANT (tests/lib/qdrant-standin.mjs in a node
#    container: not Qdrant), pointed to through the compose file's image variables
#    (infrastructure/docker/test-images/README.md);
# 2. writes an env file with random secrets and starts the production compose file,
#    in dependency order: podman-compose 1.0.3 ignores `depends_on` conditions and runs
#    health checks only when asked (`podman healthcheck run`), so this script waits for
#    each service's health check and for the migrations to exit 0 itself;
# 3. through the frontend's published port only: signs in (the user is made with
#    `almanac user create` in the api container), creates a knowledge base, uploads
#    documents, waits until they are ready, searches and finds them;
# 4. fault injection: Redis stopped -> /ready 503 within 6 s while the frontend still
#    serves, Redis started -> 200 without restarting anything; the worker SIGKILLed
#    during ingestion -> after its restart every document ends ready; the api sent
#    SIGTERM during a slow upload -> the upload completes;
# 5. a start with a missing secret -> refused with a clear message;
# 6. tears everything down, volumes included, whatever happened (trap);
# and prints each container's idle memory and the images' sizes.
#
# Needs: podman, podman-compose, runc, debootstrap, curl, node, openssl (installed with
# apt-get when missing). Builds are cached by podman between runs. Traffic goes only to
# 127.0.0.1 and the containers' own networks (image builds install Debian packages).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prod=$repo/infrastructure/docker/docker-compose.prod.yml
t0=$SECONDS
passed=0
failed=0
tag=${DEPLOY_TAG:-deploy-test}
project=almanac-deploy-$$

say() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - t0))"; }
pass() {
    passed=$((passed + 1))
    echo "ok   - $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}
check() { # description, command...
    local d=$1
    shift
    if "$@"; then pass "$d"; else fail "$d"; fi
}
now_ms() { date +%s%3N; }
cond() { eval "$1"; } # check "..." cond '[ ... ] && [ ... ]'


# ---------------------------------------------------------------- prerequisites
need=()
for t in podman podman-compose runc debootstrap curl openssl; do
    command -v "$t" >/dev/null || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman podman-compose runc debootstrap curl openssl uidmap slirp4netns \
        containernetworking-plugins netavark aardvark-dns >/dev/null
fi
# crun fails on these machines (setrlimit, hybrid cgroups): runc with cgroupfs works.
if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
fi

work=$(mktemp -d)
envfile=$work/env
compose_log=$work/compose.log

cn() { echo "${project}_$1_1"; }

compose() { # runs podman-compose with the env file's variables (it has no --env-file)
    (
        set -a
        # shellcheck disable=SC1090
        . "$envfile"
        set +a
        podman-compose -p "$project" -f "$prod" "$@"
    ) >>"$compose_log" 2>&1
}

teardown() {
    local rc=$?
    set +e
    say "teardown"
    if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for s in postgres redis qdrant migrate api worker beat frontend; do
            echo "--- last log lines of $s"
            podman logs --tail 15 "$(cn "$s")" 2>&1 | cut -c1-300
        done
    fi
    [ -s "$envfile" ] && compose down -v -t 2
    podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -t 1 >/dev/null 2>&1
    podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1
    podman volume ls -q | grep "^${project}_" | xargs -r podman volume rm -f >/dev/null 2>&1
    podman network ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman network rm -f >/dev/null 2>&1
    left=$(podman ps -aq --filter "label=io.podman.compose.project=$project" | wc -l)
    if [ "$left" -eq 0 ]; then echo "removed containers, volumes and networks of $project"; else echo "left $left containers"; fi
    rm -rf "$work"
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    printf '\ndeploy test took %d s\n' "$((SECONDS - t0))"
    printf 'deploy: %d passed, %d failed\n' "$passed" "$failed" # the closing line CI reads
    [ "$failed" -eq 0 ] || exit 1
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. images
say "images"
"$repo/tests/deploy/build-images.sh"
almanac_image=localhost/almanac:$tag
frontend_image=localhost/almanac-frontend:$tag

check "almanac image: every shared library resolves (ldd)" \
    bash -c "! podman run --rm --pull=never --entrypoint ldd $almanac_image /usr/local/bin/almanac | grep -q 'not found'"
check "almanac image: no compiler, no package lists" \
    podman run --rm --pull=never --entrypoint /bin/sh "$almanac_image" -c \
    '! command -v cc && ! command -v gcc && ! command -v make && [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null)" ]'
check "almanac image: runs as uid 10001 and has a HEALTHCHECK" bash -c \
    "[ \"\$(podman image inspect --format '{{.Config.User}}' $almanac_image)\" = 10001:10001 ] &&
     podman image inspect --format '{{json .Config.Healthcheck}}' $almanac_image | grep -q healthcheck"

# ---------------------------------------------------------------- 2. start
say "start the production compose file"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base=http://127.0.0.1:$port
umask 077
write_env() {
    cat >"$envfile" <<EOF
POSTGRES_PASSWORD=$(openssl rand -hex 24)
REDIS_PASSWORD=$(openssl rand -hex 24)
ALMANAC_JWT_SECRET=$(openssl rand -base64 48 | tr -d '\n')
ALMANAC_IMAGE=$almanac_image
FRONTEND_IMAGE=$frontend_image
POSTGRES_IMAGE=localhost/almanac-test/postgres:$tag
REDIS_IMAGE=localhost/almanac-test/redis:$tag
QDRANT_IMAGE=localhost/almanac-test/qdrant-standin:$tag
ALMANAC_PUBLISH_ADDRESS=127.0.0.1
ALMANAC_HTTP_PORT=$port
ALMANAC_QDRANT_API_KEY=
ALMANAC_EMBEDDINGS_URL=
ALMANAC_EMBEDDINGS_API_KEY=
ALMANAC_HEARTBEAT_MS=2000
ALMANAC_JOB_CLAIM_IDLE_MS=6000
EOF
}
write_env

wait_healthy() { # service, seconds
    local c deadline=$((SECONDS + $2))
    c=$(cn "$1")
    while [ $SECONDS -lt $deadline ]; do
        if podman healthcheck run "$c" >/dev/null 2>&1; then return 0; fi
        if [ "$(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null)" = exited ]; then
            podman start "$c" >/dev/null 2>&1 || true # as a restart policy would, give it another go
        fi
        sleep 1
    done
    return 1
}

ts=$SECONDS
compose up -d postgres redis qdrant
for s in postgres redis qdrant; do check "$s healthy" wait_healthy "$s" 90; done
compose up -d --no-deps migrate
mig_rc=$(timeout 120 podman wait "$(cn migrate)" 2>/dev/null || echo timeout)
check "migrate exited 0 (got $mig_rc)" [ "$mig_rc" = 0 ]
compose up -d --no-deps api worker beat
for s in api worker beat; do check "$s healthy" wait_healthy "$s" 60; done
compose up -d --no-deps frontend
check "frontend healthy" wait_healthy frontend 30
echo "stack up in $((SECONDS - ts)) s"

for s in postgres redis qdrant api worker beat frontend; do
    c=$(cn "$s")
    u=$(podman exec "$c" id -u 2>/dev/null || echo '?')
    ro=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")
    check "$s: non-root (uid $u), read-only root filesystem ($ro)" cond '[ "$u" != 0 ] && [ "$u" != "?" ] && [ "$ro" = true ]'
done
check "only the frontend publishes a port" bash -c \
    "[ \"\$(podman ps --filter label=io.podman.compose.project=$project --format '{{.Names}} {{.Ports}}' | grep -c ':[0-9]*->')\" = 1 ]"

# ---------------------------------------------------------------- 3. use it
say "sign in, upload, search (through the frontend's port only)"
http() { # method, path, [curl args...]; prints the body, then a line with the status
    local m=$1 p=$2
    shift 2
    curl -sS -m 30 -X "$m" -w '\n%{http_code}' "$@" "$base$p"
}
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }
jget() { node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{let v=JSON.parse(d);for(const k of process.argv[1].split("."))v=v?.[k];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"; }

check "frontend serves the site (/)" bash -c "curl -sf -m 5 $base/ | grep -qi '<html'"
check "frontend /healthz 200" curl -sf -m 5 -o /dev/null "$base/healthz"
check "api /ready 200 through the frontend (/api/ready)" curl -sf -m 5 -o /dev/null "$base/api/ready"

email=deploy-test@example.com
password=$(openssl rand -hex 16)
check "user created with almanac user create (in the api container)" cond \
    'printf "%s\n" "$password" | podman exec -i "$(cn api)" almanac user create --email "$email" >/dev/null'
r=$(http POST /api/v1/auth/login -H 'Content-Type: application/json' \
    --data "{\"email\":\"$email\",\"password\":\"$password\"}")
check "sign in: 200 (got $(status_of "$r"))" [ "$(status_of "$r")" = 200 ]
token=$(body_of "$r" | jget access_token)
auth=(-H "Authorization: Bearer $token")

r=$(http POST /api/v1/knowledge-bases "${auth[@]}" -H 'Content-Type: application/json' --data '{"name":"deploy test"}')
check "knowledge base created: 201 (got $(status_of "$r"))" [ "$(status_of "$r")" = 201 ]
kb=$(body_of "$r" | jget id)

upload() { # name, text -> document id
    local r
    r=$(printf '%s' "$2" | http POST "/api/v1/knowledge-bases/$kb/documents?filename=$1" "${auth[@]}" \
        -H 'Content-Type: text/markdown' --data-binary @-)
    [ "$(status_of "$r")" = 202 ] || { echo "upload $1: $(status_of "$r") $(body_of "$r" | head -c 300)" >&2; return 1; }
    body_of "$r" | jget id
}
count_status() { # status -> number of documents of the knowledge base in it
    http GET "/api/v1/knowledge-bases/$kb/documents?status=$1&limit=100" "${auth[@]}" | sed '$d' |
        node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>console.log(JSON.parse(d).documents.length))'
}
wait_all_ready() { # expected count, seconds
    local deadline=$((SECONDS + $2)) n
    while [ $SECONDS -lt $deadline ]; do
        n=$(count_status ready 2>/dev/null || echo 0)
        [ "$n" -ge "$1" ] && return 0
        sleep 1
    done
    echo "ready: $n of $1; failed: $(count_status failed 2>/dev/null)" >&2
    return 1
}

ids=()
for i in 1 2 3; do
    ids+=("$(upload "handbook-$i.md" "# Handbook $i

Employees of team $i get twenty-five days of paid vacation, the zeppelin$i policy says.")")
done
check "3 documents uploaded: 202" [ ${#ids[@]} -eq 3 ]
check "every document ready" wait_all_ready 3 60
r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"query\":\"zeppelin2 vacation\",\"knowledge_base_ids\":[$kb]}")
first=$(body_of "$r" | jget results.0.document_id)
degraded=$(body_of "$r" | jget degraded)
check "search finds the document (got document $first, degraded=$degraded)" \
    cond '[ "$(status_of "$r")" = 200 ] && [ "$first" = "${ids[1]}" ] && [ "$degraded" = false ]'

# Idle memory, measured now that everything is up and has done some work.
sleep 3
mem_report=$(podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' \
    $(podman ps -q --filter "label=io.podman.compose.project=$project") 2>/dev/null | sed "s/^${project}_//; s/_1 / /" | sort)

# ---------------------------------------------------------------- 4. faults
say "fault: Redis stopped"
ready_status() { curl -s -m 8 -o /dev/null -w '%{http_code}' "$base/api/ready"; }
podman stop -t 5 "$(cn redis)" >/dev/null
t1=$(now_ms)
got=""
while [ $(($(now_ms) - t1)) -lt 10000 ]; do
    got=$(ready_status)
    [ "$got" = 503 ] && break
    sleep 0.2
done
el=$(($(now_ms) - t1))
check "/ready turned 503 in ${el} ms (at most 6000)" cond '[ "$got" = 503 ] && [ "$el" -le 6000 ]'
check "frontend still serves (/, /healthz) while Redis is down" bash -c \
    "curl -sf -m 5 -o /dev/null $base/ && curl -sf -m 5 -o /dev/null $base/healthz"
check "api liveness still passes while Redis is down" podman healthcheck run "$(cn api)"
podman start "$(cn redis)" >/dev/null
t1=$(now_ms)
while [ $(($(now_ms) - t1)) -lt 30000 ]; do
    got=$(ready_status)
    [ "$got" = 200 ] && break
    sleep 0.5
done
check "/ready 200 again $(($(now_ms) - t1)) ms after Redis started, nothing restarted" [ "$got" = 200 ]

say "fault: worker SIGKILLed during ingestion"
big=$(node -e 'let s="";for(let i=0;i<12000;i++)s+=`Paragraph ${i} about the quarterly kestrel${i%50} report and its many numbered findings.\n\n`;process.stdout.write(s)')
n0=3
n_up=0
busy=0
for i in $(seq 1 10); do
    upload "report-$i.md" "# Report $i

$big" >/dev/null && n_up=$((n_up + 1))
    if [ "$i" = 3 ]; then # the worker is busy with the first ones; more are queued after the kill
        busy=$(($(count_status pending) + $(count_status processing)))
        podman kill --signal KILL "$(cn worker)" >/dev/null
    fi
done
echo "killed the worker with $busy documents pending or processing; $n_up uploaded in all"
check "the worker was killed during ingestion ($busy documents not ready)" [ "$busy" -gt 0 ]
sleep 3
state=$(podman inspect --format '{{.State.Status}}' "$(cn worker)")
[ "$state" = running ] || podman start "$(cn worker)" >/dev/null
echo "worker after the kill: $state (restart policy), running again"
check "worker healthy after the restart" wait_healthy worker 60
check "every document ends ready after the worker's restart ($((n0 + n_up)) documents)" wait_all_ready $((n0 + n_up)) 150
check "no document failed" [ "$(count_status failed)" = 0 ]

say "fault: api SIGTERMed during a request"
slow_doc=$work/slow.md
node -e 'let s="# Slow upload\n\n";while(s.length<600000)s+="A slow upload body line about the albatross drain test.\n";process.stdout.write(s)' >"$slow_doc"
# nginx buffers a request body before it forwards it (proxy_request_buffering), so the
# api sees the upload when its last byte is in: 600 kB at 250 kB/s, SIGTERM after 1.2 s,
# and the api receives the request during its drain delay (ALMANAC_SHUTDOWN_DELAY_MS).
(curl -sS -m 60 --limit-rate 250k -o "$work/slow.out" -w '%{http_code}' -X POST \
    "${auth[@]}" -H 'Content-Type: text/markdown' --data-binary @"$slow_doc" \
    "$base/api/v1/knowledge-bases/$kb/documents?filename=slow.md" >"$work/slow.code" 2>"$work/slow.err") &
upload_pid=$!
sleep 1.2
t1=$(now_ms)
podman stop -t 30 "$(cn api)" >/dev/null
stop_ms=$(($(now_ms) - t1))
wait $upload_pid || true
code=$(cat "$work/slow.code" 2>/dev/null)
check "upload in flight when SIGTERM came completed: $code (api stopped after $stop_ms ms)" [ "$code" = 202 ]
check "api exited 0 after draining" [ "$(podman inspect --format '{{.State.ExitCode}}' "$(cn api)")" = 0 ]
podman start "$(cn api)" >/dev/null
check "api healthy again" wait_healthy api 60
t1=$(now_ms)
while [ $(($(now_ms) - t1)) -lt 30000 ]; do
    got=$(ready_status)
    [ "$got" = 200 ] && break
    sleep 0.5
done
check "frontend reaches the restarted api (/api/ready 200)" [ "$got" = 200 ]

# ---------------------------------------------------------------- 5. missing secret
say "start refused with a missing secret"
out=$(
    set -a
    . "$envfile"
    set +a
    unset ALMANAC_JWT_SECRET
    podman-compose -p "$project-refused" -f "$prod" up -d 2>&1
) && rc=0 || rc=$?
check "compose refuses to start without ALMANAC_JWT_SECRET (exit $rc)" \
    bash -c '[ "$1" -ne 0 ] && grep -q "ALMANAC_JWT_SECRET is required" <<<"$2"' _ "$rc" "$out"
check "nothing was started by the refused start" \
    [ "$(podman ps -aq --filter "label=io.podman.compose.project=$project-refused" | wc -l)" = 0 ]
out=$(podman run --rm --pull=never -e ALMANAC_DATABASE_URL=postgresql://almanac@postgres/almanac \
    -e ALMANAC_REDIS_URL=redis://redis:6379 -e ALMANAC_QDRANT_URL=http://qdrant:6333 \
    "$almanac_image" api 2>&1) && rc=0 || rc=$?
check "almanac api refuses to start without its secrets: exit $rc, says which" \
    bash -c '[ "$1" = 78 ] && grep -q ALMANAC_JWT_SECRET <<<"$2"' _ "$rc" "$out"
out=$(podman run --rm --pull=never -e ALMANAC_DATABASE_URL=postgresql://almanac@postgres/almanac \
    -e ALMANAC_DATABASE_PASSWORD=almanac-dev-password -e ALMANAC_REDIS_URL=redis://redis:6379 \
    -e ALMANAC_QDRANT_URL=http://qdrant:6333 \
    -e ALMANAC_JWT_SECRET=almanac-dev-jwt-secret-do-not-use-in-production \
    "$almanac_image" check-config 2>&1) && rc=0 || rc=$?
check "the development compose file's credentials are refused in production (exit $rc)" \
    bash -c '[ "$1" = 78 ] && grep -q "insecure" <<<"$2" && ! grep -q "almanac-dev-password" <<<"$2"' _ "$rc" "$out"

# ---------------------------------------------------------------- report
say "idle memory of each container (podman stats, after start-up and a first ingestion)"
printf '%s\n' "$mem_report"
say "image sizes"
for i in "$almanac_image" "$frontend_image" localhost/almanac-test/postgres:$tag \
    localhost/almanac-test/redis:$tag localhost/almanac-test/qdrant-standin:$tag; do
    printf '%-50s %s\n' "$i" "$(podman image inspect --format '{{.Size}}' "$i" | awk '{printf "%.1f MB", $1/1e6}')"
done

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
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
#    The almanac image must hold no shell, no package manager, no setuid file, and stay
#    under 50 MB; the Qdrant stand-in imposes the real unprivileged image's constraints
#    (uid 1000, storage, snapshots and init marker writable, nothing else) plus an API key;
# 2. makes the secret files with infrastructure/docker/secrets.sh (the production default:
#    Compose `secrets:`) and starts the production compose file in dependency order:
#    podman-compose 1.0.3 ignores `depends_on` conditions and runs health checks only
#    when asked (`podman healthcheck run`), so this script waits for each service's health
#    check and for the migrations to exit 0 itself; checks that no secret shows in
#    `podman inspect` or in the almanac processes' environment;
# 3. through the frontend's published port only: signs in (the user is made with
#    `almanac user create` in the api container), creates a knowledge base, uploads
#    Markdown, HTML and PDF documents, waits until they are ready, searches and finds them
#    (the PDF's passage on its page); then backs the system up while it serves, destroys
#    every service and volume, restores into fresh ones and finds the same system
#    (tests/deploy/backup-restore.sh);
# 4. fault injection: Redis stopped -> /ready 503 within 6 s while the frontend still
#    serves, Redis started -> 200 without restarting anything; the worker's process
#    killed from the host with SIGKILL (a crash) during ingestion -> the restart policy
#    restarts it and every document ends ready; the api sent SIGTERM during a slow upload
#    -> the upload completes; a container killed by the kernel's OOM killer (what
#    podman shows of it);
# 5. uploads at the limit through the frontend: one document of exactly
#    ALMANAC_MAX_UPLOAD_BYTES, one byte over (413), three concurrent 10 MiB ones, all
#    ingested; the worker's peak memory meanwhile;
# 6. operations as the runbook and the rotation guide write them (their podman variant):
#    a backup that restores, a JWT secret rotation that ends old tokens;
# 7. a start with missing or weak secrets -> refused with a clear message; environment
#    mode (docker-compose.prod.env.yml) starts data services, migrations and the api;
# 8. every message docs/deployment-troubleshooting.md quotes was seen in this run;
# then tears everything down, volumes included, whatever happened (trap), and prints
# each container's memory and the images' sizes.
#
# Needs: podman, podman-compose, runc, debootstrap, curl, node, openssl (installed with
# apt-get when missing). Builds are cached by podman between runs. Traffic goes only to
# 127.0.0.1 and the containers' own networks (image builds install Debian packages).
# shellcheck disable=SC2016 # check "..." cond '...': the condition is code evaluated
# later (cond), single-quoted so that it expands then, not when the check is written.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prod=$repo/infrastructure/docker/docker-compose.prod.yml
t0=$SECONDS
passed=0
failed=0
tag=${DEPLOY_TAG:-deploy-test}
# DEPLOY_PROJECT: a name of your own while iterating (two runs must not share one).
project=${DEPLOY_PROJECT:-almanac-deploy-$$}

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
for t in podman podman-compose runc debootstrap curl openssl gs; do
    command -v "$t" >/dev/null || need+=("$t")
done
# `init: true` makes podman run catatonit as each container's init.
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
        podman podman-compose runc debootstrap curl openssl uidmap slirp4netns \
        containernetworking-plugins netavark aardvark-dns catatonit python3-yaml ghostscript >/dev/null
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
secrets=$work/secrets
observed=$work/observed.txt # what the system printed, for the troubleshooting guide's check
: >"$observed"
observe() { cat >>"$observed"; }
cd "$work" # nothing this script runs writes into the repository

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
hostpid() { podman inspect --format '{{.State.Pid}}' "$(cn "$1")"; }
# uid of a container's main process, read on the host (the almanac image has no `id`).
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$(hostpid "$1")/status" 2>/dev/null || echo '?'; }

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
    podman rm -f -t 0 "$project-oom" >/dev/null 2>&1
    p="$project-env"
    podman ps -aq --filter "label=io.podman.compose.project=$p" | xargs -r podman rm -f -t 1 >/dev/null 2>&1
    podman volume ls -q | grep "^${p}_" | xargs -r podman volume rm -f >/dev/null 2>&1
    podman network ls -q --filter "label=io.podman.compose.project=$p" | xargs -r podman network rm -f >/dev/null 2>&1
    [ -z "${sampler:-}" ] || kill "$sampler" "$searcher" 2>/dev/null
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

# The image is FROM scratch: its file list, from an exported container.
podman rm -f "$project-probe" >/dev/null 2>&1 || true
podman create --name "$project-probe" --pull=never "$almanac_image" >/dev/null 2>&1
podman export "$project-probe" | tar -tvf - >"$work/almanac-files.txt"
podman rm -f "$project-probe" >/dev/null 2>&1
check "almanac image: no shell (sh, bash, dash, busybox)" \
    bash -c "! grep -Eq ' (usr/)?s?bin/(sh|bash|dash|busybox)$' '$work/almanac-files.txt'"
check "almanac image: no package manager (apt, dpkg), no package database" \
    bash -c "! grep -Eq '(bin/(apt|apt-get|dpkg)|var/lib/dpkg/)' '$work/almanac-files.txt'"
check "almanac image: no setuid or setgid file" \
    bash -c "! awk '\$1 ~ /^-/ && \$1 ~ /[sS]/' '$work/almanac-files.txt' | grep -q ."
check "almanac image: CA certificates, a passwd entry for uid 10001, the binary runs" \
    bash -c "grep -q 'etc/ssl/certs/ca-certificates.crt' '$work/almanac-files.txt' &&
             podman run --rm --pull=never $almanac_image version >/dev/null 2>&1"
size=$(podman image inspect --format '{{.Size}}' "$almanac_image")
check "almanac image: $((size / 1000000)) MB, at most 50 MB" [ "$size" -le 50000000 ]
check "almanac image: runs as uid 10001 and has an exec-form HEALTHCHECK (no shell)" bash -c \
    "[ \"\$(podman image inspect --format '{{.Config.User}}' $almanac_image)\" = 10001:10001 ] &&
     podman image inspect --format '{{json .Config.Healthcheck}}' $almanac_image | grep -q '\"CMD\",\"/usr/local/bin/almanac\",\"healthcheck\"'"

# The Qdrant stand-in fails where the real unprivileged image would (its checks must bite).
standin() { # podman run args...: prints the stand-in's output, returns its exit code
    timeout 60 podman run --rm --pull=never -e QDRANT__SERVICE__API_KEY=standin-check-key-0123456789 \
        "$@" "localhost/almanac-test/qdrant-standin:$tag" 2>&1 | grep -v 'level=' | head -3
    return "${PIPESTATUS[0]}"
}
out=$(standin --read-only --tmpfs /tmp -v "$project-sc1:/qdrant/storage" -v "$project-sc2:/qdrant/snapshots") && rc=0 || rc=$?
printf '%s\n' "$out" | observe
check "qdrant stand-in: read-only root without QDRANT_INIT_FILE_PATH on a volume -> refuses to start ($rc)" \
    bash -c '[ "$1" = 101 ] && grep -q "Failed to create init file indicator" <<<"$2"' _ "$rc" "$out"
out=$(standin --read-only --tmpfs /tmp -e QDRANT_INIT_FILE_PATH=/qdrant/storage/.qdrant-initialized) && rc=0 || rc=$?
check "qdrant stand-in: read-only root without storage volumes -> refuses to start ($rc)" [ "$rc" = 101 ]
out=$(standin --read-only --tmpfs /tmp -u 10001 -v "$project-sc1:/qdrant/storage" -v "$project-sc2:/qdrant/snapshots" \
    -e QDRANT_INIT_FILE_PATH=/qdrant/storage/.qdrant-initialized) && rc=0 || rc=$?
check "qdrant stand-in: another uid than 1000 -> refuses to start ($rc)" [ "$rc" = 101 ]
podman volume rm -f "$project-sc1" "$project-sc2" >/dev/null 2>&1 || true

# ---------------------------------------------------------------- 2. start
say "start the production compose file"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base=http://127.0.0.1:$port
umask 077
# Secrets as files, made as the runbook says; the env file holds no secret.
check "secrets.sh init makes the secret files with the documented modes" bash -c \
    "'$repo/infrastructure/docker/secrets.sh' init '$secrets' >/dev/null &&
     '$repo/infrastructure/docker/secrets.sh' check '$secrets' >/dev/null"
secret_values=("$(cat "$secrets/postgres_password")" "$(cat "$secrets/redis_password")" \
    "$(cat "$secrets/qdrant_api_key")" "$(cat "$secrets/jwt_secret")")
write_env() {
    cat >"$envfile" <<EOF
ALMANAC_SECRETS_DIR=$secrets
ALMANAC_IMAGE=$almanac_image
FRONTEND_IMAGE=$frontend_image
POSTGRES_IMAGE=localhost/almanac-test/postgres:$tag
REDIS_IMAGE=localhost/almanac-test/redis:$tag
QDRANT_IMAGE=localhost/almanac-test/qdrant-standin:$tag
ALMANAC_PUBLISH_ADDRESS=127.0.0.1
ALMANAC_HTTP_PORT=$port
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
    u=$(uid_of "$s")
    ro=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")
    check "$s: non-root (uid $u), read-only root filesystem ($ro)" cond '[ "$u" != 0 ] && [ "$u" != "?" ] && [ "$ro" = true ]'
done
check "qdrant runs as uid 1000 with its init marker on the storage volume" cond \
    '[ "$(uid_of qdrant)" = 1000 ] && podman exec "$(cn qdrant)" test -f /qdrant/storage/.qdrant-initialized'
qdrant_noauth=$(podman exec "$(cn qdrant)" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6333 && printf "GET /collections HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>&1 | tr -d '\r')
printf '%s\n' "$qdrant_noauth" | observe
check "qdrant refuses a request without the API key (401, Qdrant's message)" \
    bash -c 'grep -q "^HTTP/1.1 401" <<<"$1" && grep -q "Must provide an API key" <<<"$1"' _ "$qdrant_noauth"
leaks=0
for s in postgres redis qdrant migrate api worker beat frontend; do
    insp=$(podman inspect "$(cn "$s")")
    for v in "${secret_values[@]}"; do
        if grep -qF -- "$v" <<<"$insp"; then echo "a secret shows in podman inspect of $s" >&2; leaks=$((leaks + 1)); fi
    done
done
check "no secret value in podman inspect of any container" [ "$leaks" = 0 ]
leaks=0
for s in api worker beat redis; do
    envs=$(tr '\0' '\n' <"/proc/$(hostpid "$s")/environ")
    for v in "${secret_values[@]}"; do
        if grep -qF -- "$v" <<<"$envs"; then echo "a secret shows in /proc/PID/environ of $s" >&2; leaks=$((leaks + 1)); fi
    done
done
check "no secret value in the environment of api, worker, beat, redis-server" [ "$leaks" = 0 ]
# The troubleshooting guide's commands for a running service (no shell in the image).
check "podman exec ... almanac check-config in the api: configuration ok" bash -c \
    "podman exec $(cn api) almanac check-config 2>/dev/null | grep -q 'configuration ok (production)'"
check "podman exec ... almanac healthcheck in the worker probes its ALMANAC_HEALTHCHECK_URL" \
    podman exec "$(cn worker)" almanac healthcheck
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
# HTML goes through libxml2, whose ICU data the image replaces by an empty package.
r=$(printf '%s' '<!doctype html><html><head><title>Office</title></head><body><h1>Office</h1><p>The marmoset office opens at nine; caf&eacute; on floor two.</p></body></html>' |
    http POST "/api/v1/knowledge-bases/$kb/documents?filename=office.html" "${auth[@]}" \
        -H 'Content-Type: text/html; charset=utf-8' --data-binary @-)
html_id=$(body_of "$r" | jget id)
check "an HTML document uploaded: 202 (got $(status_of "$r"))" [ "$(status_of "$r")" = 202 ]
# A PDF goes through pdfinfo and pdftotext in the extraction sandbox: the image must carry
# them and their libraries, and libmagic's database (the type comes from the bytes).
printf '%s\n' '%!PS' '/Helvetica findfont 14 scalefont setfont' \
    '72 700 moveto (Page one of the deploy manual.) show showpage' \
    '72 700 moveto (The quokka archive is on page two.) show showpage' >"$work/manual.ps"
gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pdfwrite -sOutputFile="$work/manual.pdf" "$work/manual.ps"
r=$(http POST "/api/v1/knowledge-bases/$kb/documents?filename=manual.pdf" "${auth[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$work/manual.pdf")
# shellcheck disable=SC2034 # read by the cond condition below
pdf_id=$(body_of "$r" | jget id)
check "a PDF uploaded (declared as octet-stream): 202 (got $(status_of "$r"))" [ "$(status_of "$r")" = 202 ]
check "every document ready" wait_all_ready 5 60
r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"query\":\"quokka archive\",\"knowledge_base_ids\":[$kb]}")
check "search finds the PDF's text on page 2 (got $(body_of "$r" | jget results.0.document_id) $(body_of "$r" | jget results.0.location))" \
    cond '[ "$(body_of "$r" | jget results.0.document_id)" = "$pdf_id" ] && [ "$(body_of "$r" | jget results.0.location.number)" = 2 ]'
r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"query\":\"marmoset office\",\"knowledge_base_ids\":[$kb]}")
check "search finds the HTML document's text" [ "$(body_of "$r" | jget results.0.document_id)" = "$html_id" ]
r=$(http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"query\":\"zeppelin2 vacation\",\"knowledge_base_ids\":[$kb]}")
first=$(body_of "$r" | jget results.0.document_id)
degraded=$(body_of "$r" | jget degraded)
check "search finds the document (got document $first, degraded=$degraded)" \
    cond '[ "$(status_of "$r")" = 200 ] && [ "$first" = "${ids[1]}" ] && [ "$degraded" = false ]'

# Idle memory, measured now that everything is up and has done some work.
sleep 3
mem_report=""
for _ in 1 2 3; do
    # shellcheck disable=SC2046 # one argument per container id
    mem_report=$(podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' \
        $(podman ps -q --filter "label=io.podman.compose.project=$project") 2>/dev/null | sed "s/^${project}_//; s/_1 / /" | sort)
    [ -n "$mem_report" ] && break
    sleep 1
done

# ---------------------------------------------------------------- 3b. backup and restore
# The whole system backed up while it serves, destroyed, restored into fresh services
# (tests/deploy/backup-restore.sh, docs/backup-restore.md).
. "$repo/tests/deploy/backup-restore.sh"
backup_restore_round

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
curl -s -m 8 "$base/api/ready" | observe
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

say "fault: the worker crashes (SIGKILL from the host) during ingestion"
big=$(node -e 'let s="";for(let i=0;i<12000;i++)s+=`Paragraph ${i} about the quarterly kestrel${i%50} report and its many numbered findings.\n\n`;process.stdout.write(s)')
n0=5
n_up=0
busy=0
for i in $(seq 1 10); do
    upload "report-$i.md" "# Report $i

$big" >/dev/null && n_up=$((n_up + 1))
    if [ "$i" = 3 ]; then # the worker is busy with the first ones; more are queued after the kill
        busy=$(($(count_status pending) + $(count_status processing)))
        # A crash: SIGKILL from the host to the almanac process (the child of the
        # container's init when `init: true`), not `podman kill` (a user stop, which the
        # restart policy leaves alone).
        wpid=$(hostpid worker)
        child=$(pgrep -P "$wpid" | head -1 || true)
        restarts0=$(podman inspect --format '{{.RestartCount}}' "$(cn worker)")
        kill -9 "${child:-$wpid}"
    fi
done
echo "killed the worker with $busy documents pending or processing; $n_up uploaded in all"
check "the worker was killed during ingestion ($busy documents not ready)" [ "$busy" -gt 0 ]
restarted=""
for _ in $(seq 1 40); do
    if [ "$(podman inspect --format '{{.RestartCount}}' "$(cn worker)")" -gt "$restarts0" ] &&
        [ "$(podman inspect --format '{{.State.Status}}' "$(cn worker)")" = running ]; then
        restarted=yes
        break
    fi
    sleep 0.5
done
check "the restart policy restarted the crashed worker (RestartCount $restarts0 -> $(podman inspect --format '{{.RestartCount}}' "$(cn worker)"))" [ "$restarted" = yes ]
check "worker healthy after the restart" wait_healthy worker 60
check "every document ends ready after the worker's restart ($((n0 + n_up)) documents)" wait_all_ready $((n0 + n_up)) 150
check "no document failed" [ "$(count_status failed)" = 0 ]

say "fault: api SIGTERMed during a request"
slow_doc=$work/slow.md
node -e 'let s="# Slow upload\n\n";while(s.length<600000)s+="A slow upload body line about the albatross drain test.\n";process.stdout.write(s)' >"$slow_doc"
# nginx streams request bodies to the api (proxy_request_buffering off), so the api has
# the upload in flight when SIGTERM comes: 600 kB at 250 kB/s, SIGTERM after 1.2 s; the
# api finishes in-flight requests within ALMANAC_SHUTDOWN_TIMEOUT_MS.
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
r=$(http GET /api/v1/knowledge-bases "${auth[@]}")
body_of "$r" | observe
check "frontend answers 503 JSON while the api is stopped (got $(status_of "$r"))" [ "$(status_of "$r")" = 503 ]
podman start "$(cn api)" >/dev/null
check "api healthy again" wait_healthy api 60
t1=$(now_ms)
while [ $(($(now_ms) - t1)) -lt 30000 ]; do
    got=$(ready_status)
    [ "$got" = 200 ] && break
    sleep 0.5
done
check "frontend reaches the restarted api (/api/ready 200)" [ "$got" = 200 ]

say "fault: a container killed by the OOM killer"
# What an OOM kill looks like here: a container over its memory limit, from the test
# redis image (it has a shell; the almanac image has none). The troubleshooting guide
# says how to see one on Docker (OOMKilled) and on podman (exit 137, the kernel log).
podman run --name "$project-oom" --pull=never --memory 32m --memory-swap 32m \
    --entrypoint /bin/sh "localhost/almanac-test/redis:$tag" \
    -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}' >/dev/null 2>&1 || true
oom_exit=$(podman inspect --format '{{.State.ExitCode}}' "$project-oom")
oom_flag=$(podman inspect --format '{{.State.OOMKilled}}' "$project-oom")
echo "OOM-killed container: exit code $oom_exit, podman inspect .State.OOMKilled=$oom_flag"
check "a process over the container's memory limit is killed: exit code 137 (got $oom_exit)" [ "$oom_exit" = 137 ]
oom_id=$(podman inspect --format '{{.Id}}' "$project-oom")
# The kernel names the container's cgroup (libpod-<id>) in its oom-kill line.
kernel_log=$(dmesg 2>/dev/null | grep -F "$oom_id" -B2 -A2 | tail -20 || true)
if dmesg >/dev/null 2>&1; then
    printf '%s\n' "$kernel_log" | observe
    check "the kernel log records the OOM kill of this container (dmesg: oom-kill ... $(cut -c1-12 <<<"$oom_id"))" \
        grep -q 'oom-kill\|Memory cgroup out of memory' <<<"$kernel_log"
else
    echo "dmesg is not readable here: the kernel log check is left out"
fi
podman inspect --format '{{.State.OOMKilled}} {{.State.ExitCode}}' "$project-oom" | observe
podman rm -f "$project-oom" >/dev/null 2>&1 || true

# ---------------------------------------------------------------- 5. uploads at the limit
say "uploads at the limit through the frontend"
limit=20971520 # ALMANAC_MAX_UPLOAD_BYTES, the compose file's default
gen_doc() { # file, bytes: Markdown of exactly that many bytes
    node -e 'const [f,n]=process.argv.slice(1);const line="Plain paragraph about the osprey limit test and its many words.\n";let s="# Limit\n\n";s+=line.repeat(Math.ceil((n-s.length)/line.length));require("fs").writeFileSync(f,s.slice(0,+n))' "$1" "$2"
}
up_file() { # file, name -> prints "status size_bytes"
    curl -sS -m 120 -o "$work/$2.out" -w '%{http_code}' -X POST "${auth[@]}" -H 'Content-Type: text/markdown' \
        --data-binary @"$1" "$base/api/v1/knowledge-bases/$kb/documents?filename=$2" >"$work/$2.code" 2>"$work/$2.err"
    printf '%s %s\n' "$(cat "$work/$2.code")" "$(jget size_bytes <"$work/$2.out" 2>/dev/null)"
}
gen_doc "$work/limit.md" "$limit"
gen_doc "$work/over.md" "$((limit + 1))"
gen_doc "$work/ten.md" 10485760
# The stated load of the resource figures (docs/deployment-runbook.md, bench/deploy-resources.sh):
# these four uploads ingested while a search runs every second; every container's memory
# sampled each second meanwhile (podman stats; cgroup v1 keeps no peak of its own).
# shellcheck disable=SC2046 # one argument per container id
(while :; do podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' \
    $(podman ps -q --filter "label=io.podman.compose.project=$project") 2>/dev/null; sleep 1; done >"$work/mem-samples.txt") &
sampler=$!
(while :; do http POST /api/v1/search "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"query\":\"osprey limit words\",\"knowledge_base_ids\":[$kb]}" >/dev/null 2>&1; sleep 1; done) &
searcher=$!
got=$(up_file "$work/limit.md" limit.md)
check "a document of exactly $limit bytes uploads through the frontend: 202, size_bytes $limit (got $got)" [ "$got" = "202 $limit" ]
got=$(up_file "$work/over.md" over.md)
observe <"$work/over.md.out"
check "one byte over the limit: 413 JSON from the api (got ${got% *})" \
    bash -c '[ "$1" = 413 ] && grep -q "\"error\"" "$2"' _ "${got% *}" "$work/over.md.out"
pids=()
for i in 1 2 3; do
    cp "$work/ten.md" "$work/ten-$i.md"
    printf '\nCopy %s.\n' "$i" >>"$work/ten-$i.md"
    up_file "$work/ten-$i.md" "ten-$i.md" >"$work/ten-$i.got" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ok=0
codes=""
for i in 1 2 3; do
    code=$(cut -d' ' -f1 "$work/ten-$i.got")
    codes="$codes $code"
    [ "$code" = 202 ] && ok=$((ok + 1))
    if [ "$code" != 202 ]; then
        printf "ten-%s.md: " "$i"
        head -c 300 "$work/ten-$i.md.out"
        echo
        # What nginx saw of the api for it, and what the api logged meanwhile.
        podman logs --since 5m "$(cn frontend)" 2>&1 | grep "ten-$i.md" | cut -c1-400
        podman logs --since 5m "$(cn api)" 2>&1 | grep -v '"level":"debug"' | grep -i 'warn\|error\|ten-' | tail -n 12 | cut -c1-400
    fi
done
check "three concurrent 10 MiB uploads through the frontend: $ok of 3 answered 202 (got$codes)" [ "$ok" = 3 ]
podman logs --since 5m "$(cn frontend)" 2>&1 | grep -c 'No space left\|client_body_temp\|a client request body is buffered' >"$work/fe-buffered" || true
check "nginx buffered no request body to its tmpfs" [ "$(cat "$work/fe-buffered")" = 0 ]
total=$((n0 + n_up + 1 + 4))
check "the limit-size and 10 MiB documents are ingested ($total documents ready)" wait_all_ready "$total" 300
kill "$sampler" "$searcher" 2>/dev/null || true
peaks=$(node -e 'const u={B:1,kB:1e3,KB:1e3,MB:1e6,GB:1e9,KiB:1024,MiB:1048576,GiB:1073741824};const m={};for(const l of require("fs").readFileSync(process.argv[1],"utf8").split("\n")){const x=l.match(/^(\S+) ([\d.]+)([A-Za-z]+) \//);if(!x)continue;const n=x[1].replace(process.argv[2]+"_","").replace(/_1$/,"");m[n]=Math.max(m[n]||0,x[2]*(u[x[3]]||1))}for(const [n,v] of Object.entries(m).sort())console.log(n,(v/1048576).toFixed(0)+" MiB")' "$work/mem-samples.txt" "$project")
echo "peak memory per container (1 s samples) while ingesting them and searching:"
printf '%s\n' "$peaks"

# ---------------------------------------------------------------- 6. operations
say "operations as the runbook writes them (podman variants)"
# Backup (runbook 5): `podman exec -i`, never podman-compose exec (a TTY, echoed input).
podman exec -i "$(cn postgres)" pg_dump -U almanac -Fc almanac >"$work/almanac.dump" 2>"$work/dump.err" && rc=0 || rc=$?
check "backup: pg_dump through podman exec -i exits 0 and writes a custom-format dump (PGDMP, $(wc -c <"$work/almanac.dump") bytes)" \
    bash -c '[ "$1" = 0 ] && [ "$(head -c 5 "$2")" = PGDMP ]' _ "$rc" "$work/almanac.dump"
check "backup holds no secret" bash -c '! grep -qaF -- "$1" "$2"' _ "${secret_values[0]}" "$work/almanac.dump"
podman exec -i "$(cn postgres)" createdb -U almanac almanac_restore_check
podman exec -i "$(cn postgres)" pg_restore -U almanac -d almanac_restore_check --no-owner <"$work/almanac.dump" 2>"$work/restore.err" && rc=0 || rc=$?
n_live=$(podman exec -i "$(cn postgres)" psql -U almanac -d almanac -Atc 'SELECT count(*) FROM documents')
n_rest=$(podman exec -i "$(cn postgres)" psql -U almanac -d almanac_restore_check -Atc 'SELECT count(*) FROM documents')
check "the dump restores (pg_restore exit $rc): $n_rest documents restored of $n_live" \
    cond '[ "$rc" = 0 ] && [ -n "$n_rest" ] && [ "$n_rest" = "$n_live" ]'
podman exec -i "$(cn postgres)" dropdb -U almanac almanac_restore_check

# JWT secret rotation (secrets-rotation.md): new file, restart the api (a restart
# re-reads a file secret), old tokens end.
"$repo/infrastructure/docker/secrets.sh" rotate jwt_secret "$secrets" >/dev/null
podman restart -t 30 "$(cn api)" >/dev/null
check "api healthy after the rotation restart" wait_healthy api 60
for _ in $(seq 1 30); do [ "$(ready_status)" = 200 ] && break; sleep 0.5; done
r=$(http GET "/api/v1/knowledge-bases" "${auth[@]}")
check "after rotating the JWT secret an old token is refused: 401 (got $(status_of "$r"))" [ "$(status_of "$r")" = 401 ]
r=$(http POST /api/v1/auth/login -H 'Content-Type: application/json' \
    --data "{\"email\":\"$email\",\"password\":\"$password\"}")
token=$(body_of "$r" | jget access_token)
auth=(-H "Authorization: Bearer $token")
r=$(http GET "/api/v1/knowledge-bases" "${auth[@]}")
check "a token signed after the rotation works: 200 (got $(status_of "$r"))" [ "$(status_of "$r")" = 200 ]

# A changed .env setting (runbook 5, the podman variant): podman-compose's `up -d api`
# leaves an existing container as it is, so remove that one container first.
pg_id0=$(podman inspect --format '{{.Id}}' "$(cn postgres)")
sed -i 's/^ALMANAC_HEARTBEAT_MS=.*/ALMANAC_HEARTBEAT_MS=2500/' "$envfile"
podman rm -f -t 30 "$(cn api)" >/dev/null 2>&1
compose up -d api
check "recreate: the api runs with the changed setting" bash -c \
    "podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' $(cn api) | grep -qx ALMANAC_HEARTBEAT_MS=2500"
check "recreate: PostgreSQL was left alone (same container)" \
    [ "$(podman inspect --format '{{.Id}}' "$(cn postgres)")" = "$pg_id0" ]
check "api healthy after the recreate" wait_healthy api 60

# Redis password rotation (secrets-rotation.md): new file, restart redis and its clients.
"$repo/infrastructure/docker/secrets.sh" rotate redis_password "$secrets" >/dev/null
podman restart -t 30 "$(cn redis)" "$(cn api)" "$(cn worker)" "$(cn beat)" >/dev/null
check "redis healthy with the rotated password" wait_healthy redis 60
got=""
for _ in $(seq 1 60); do got=$(ready_status); [ "$got" = 200 ] && break; sleep 0.5; done
check "/ready 200 after the Redis password rotation" [ "$got" = 200 ]
# Right after the restarts the api may still be connecting (a 503 "try again"), which a
# client retries.
for _ in 1 2 3 4 5; do
    upload "after-rotation.md" "# After the rotation

The heron rotation note." >/dev/null && break
    sleep 2
done
check "an upload after the rotation is ingested" wait_all_ready "$((total + 1))" 60

# ---------------------------------------------------------------- 7. refused secrets
say "start refused with missing or weak secrets"
out=$(podman run --rm --pull=never -e ALMANAC_DATABASE_URL=postgresql://almanac@postgres/almanac \
    -e ALMANAC_REDIS_URL=redis://redis:6379 -e ALMANAC_QDRANT_URL=http://qdrant:6333 \
    "$almanac_image" api 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | observe
check "almanac api refuses to start without its secrets: exit $rc, says which" \
    bash -c '[ "$1" = 78 ] && grep -q ALMANAC_JWT_SECRET <<<"$2" && grep -q ALMANAC_DATABASE_PASSWORD <<<"$2" &&
             grep -q ALMANAC_REDIS_PASSWORD <<<"$2" && grep -q ALMANAC_QDRANT_API_KEY <<<"$2"' _ "$rc" "$out"
printf 'abc\n' >"$work/weak"
chmod 444 "$work/weak"
out=$(podman run --rm --pull=never -v "$work/weak:/run/secrets/weak:ro" -v "$secrets:/run/s:ro" \
    -e ALMANAC_DATABASE_URL=postgresql://almanac@postgres/almanac -e ALMANAC_DATABASE_PASSWORD_FILE=/run/secrets/weak \
    -e ALMANAC_REDIS_URL=redis://redis:6379 -e ALMANAC_REDIS_PASSWORD_FILE=/run/s/redis_password \
    -e ALMANAC_QDRANT_URL=http://qdrant:6333 -e ALMANAC_QDRANT_API_KEY_FILE=/run/s/qdrant_api_key \
    -e ALMANAC_JWT_SECRET_FILE=/run/s/jwt_secret "$almanac_image" check-config 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | observe
check "a 3-byte database password from a file is refused in production (exit $rc)" \
    bash -c '[ "$1" = 78 ] && grep -q "ALMANAC_DATABASE_PASSWORD: must be at least 16 bytes" <<<"$2" && ! grep -q abc <<<"$2"' _ "$rc" "$out"
out=$(podman run --rm --pull=never -e ALMANAC_DATABASE_URL=postgresql://almanac@postgres/almanac \
    -e ALMANAC_DATABASE_PASSWORD=almanac-dev-password -e ALMANAC_REDIS_URL=redis://redis:6379 \
    -e ALMANAC_REDIS_PASSWORD=almanac-dev-redis-password -e ALMANAC_QDRANT_URL=http://qdrant:6333 \
    -e ALMANAC_QDRANT_API_KEY=qdrant-key-0123456789abcdef \
    -e ALMANAC_JWT_SECRET=almanac-dev-jwt-secret-do-not-use-in-production \
    "$almanac_image" check-config 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | observe
check "the development compose file's credentials are refused in production (exit $rc)" \
    bash -c '[ "$1" = 78 ] && grep -q "insecure" <<<"$2" && ! grep -q "almanac-dev-password" <<<"$2"' _ "$rc" "$out"
# The redis and qdrant commands refuse a missing secret in environment mode's way.
out=$(podman run --rm --pull=never --entrypoint /bin/sh "localhost/almanac-test/redis:$tag" -c \
    "$(python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["redis"]["command"][0].replace("$$","$"))' "$prod")" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | observe
check "redis refuses to start without its password (exit $rc)" [ "$rc" = 78 ]

# ---------------------------------------------------------------- 7b. environment mode
say "environment mode (docker-compose.prod.env.yml, the documented alternative)"
# A second project beside the first: secrets from variables, the file secrets pointed
# at /dev/null. Data services, migrations and the api; the trade-off it documents (the
# values show in inspect) is checked too.
envproject=$project-env
envmode_env=$work/env-mode
{
    grep -v '^ALMANAC_SECRETS_DIR=\|^ALMANAC_HTTP_PORT=' "$envfile"
    echo "POSTGRES_PASSWORD=$(openssl rand -hex 24)"
    echo "REDIS_PASSWORD=$(openssl rand -hex 24)"
    echo "QDRANT_API_KEY=$(openssl rand -hex 24)"
    echo "ALMANAC_JWT_SECRET=$(openssl rand -base64 48 | tr -d '\n')"
} >"$envmode_env"
envcompose() {
    (
        set -a
        # shellcheck disable=SC1090
        . "$envmode_env"
        set +a
        podman-compose -p "$envproject" -f "$prod" -f "$repo/infrastructure/docker/docker-compose.prod.env.yml" "$@"
    ) >>"$compose_log" 2>&1
}
envcn() { echo "${envproject}_$1_1"; }
env_healthy() { # service, seconds
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        podman healthcheck run "$(envcn "$1")" >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}
envcompose up -d postgres redis qdrant
for s in postgres redis qdrant; do check "environment mode: $s healthy" env_healthy "$s" 90; done
envcompose up -d migrate
mig_rc=$(timeout 120 podman wait "$(envcn migrate)" 2>/dev/null || echo timeout)
check "environment mode: migrate exited 0 (got $mig_rc)" [ "$mig_rc" = 0 ]
envcompose up -d api
env_api_ok() {
    env_healthy api 60 &&
        podman exec "$(envcn api)" almanac check-config 2>/dev/null | grep -q 'configuration ok (production)'
}
check "environment mode: api healthy, configuration ok (production)" env_api_ok
pw=$(sed -n 's/^POSTGRES_PASSWORD=//p' "$envmode_env")
check "environment mode: the trade-off it documents, the password shows in podman inspect" \
    bash -c 'podman inspect "$1" | grep -qF -- "$2"' _ "$(envcn api)" "$pw"
unset pw
envcompose down -v -t 2 || true
{
    podman ps -aq --filter "label=io.podman.compose.project=$envproject" | xargs -r podman rm -f -t 1
    podman volume ls -q | grep "^${envproject}_" | xargs -r podman volume rm -f
    podman network ls -q --filter "label=io.podman.compose.project=$envproject" | xargs -r podman network rm -f
} >/dev/null 2>&1 || true

# ---------------------------------------------------------------- 8. the guide
say "every message the troubleshooting guide quotes was printed in this run"
for s in postgres redis qdrant migrate api worker beat frontend; do
    podman logs "$(cn "$s")" 2>&1 | observe
done
guide=$repo/docs/deployment-troubleshooting.md
# The guide's "Messages" table: its first column quotes what the system prints, in
# backticks ("…" between or inside them stands for a part that varies); each must have
# been printed in this run, its parts in order. The crash-loop message, which this run
# does not produce, must at least be in the source the guide names.
guide_check() { # observed-file guide -> prints "quoted missing", the missing ones on stderr
    node -e '
const fs = require("fs");
const [obsFile, guideFile, repo] = process.argv.slice(1);
const obs = fs.readFileSync(obsFile, "utf8");
const guide = fs.readFileSync(guideFile, "utf8");
const section = guide.split(/^## Messages$/m)[1].split(/^## /m)[0];
const inOrder = (text, msg) => {
  let at = 0;
  for (const part of msg.split("…").map((x) => x.trim()).filter(Boolean)) {
    const i = text.indexOf(part, at);
    if (i < 0) return false;
    at = i + part.length;
  }
  return true;
};
let quoted = 0, missing = 0;
for (const line of section.split("\n")) {
  if (!line.startsWith("| `")) continue;
  const cell = line.split(" | ")[0].slice(2);
  const msg = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]).join(" … ");
  quoted++;
  if (!inOrder(obs, msg)) { missing++; console.error("not printed in this run: " + msg); }
}
for (const m of section.matchAll(/`([^`]+)` on a job in the dead\s+letters/g)) {
  quoted++;
  const src = fs.readFileSync(repo + "/src/worker.c", "utf8").replace(/%lld/g, "…");
  if (!inOrder(src, m[1])) { missing++; console.error("not in src/worker.c: " + m[1]); }
}
console.log(quoted, missing);' "$observed" "$guide" "$repo"
}
read -r n_quoted missing < <(guide_check)
check "the troubleshooting guide's $n_quoted quoted messages were all printed in this run ($missing not)" \
    cond '[ "$n_quoted" -ge 10 ] && [ "$missing" = 0 ]'

# ---------------------------------------------------------------- report
say "idle memory of each container (podman stats, after start-up and a first ingestion)"
printf '%s\n' "$mem_report"
say "peak memory under load (a 20 MiB and three 10 MiB documents ingested, one search a second)"
printf '%s\n' "${peaks:-not measured}"
say "image sizes"
for i in "$almanac_image" "$frontend_image" localhost/almanac-test/postgres:$tag \
    localhost/almanac-test/redis:$tag localhost/almanac-test/qdrant-standin:$tag; do
    printf '%-50s %s\n' "$i" "$(podman image inspect --format '{{.Size}}' "$i" | awk '{printf "%.1f MB", $1/1e6}')"
done

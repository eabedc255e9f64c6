#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HTTP throughput of `almanac api` against nginx serving a fixed JSON body of the same size.
#
# Starts throw-away PostgreSQL and Redis (so /ready answers 200 from its cache), the api and
# an nginx on free loopback ports, then runs wrk against each target after a warm-up run.
# Prints requests/s, p99 latency and the ratio to nginx, plus the api's resident memory idle
# after start and at its peak after the load, next to a baseline program that loads the same
# shared libraries (bench/rss_floor.c). Then the front door under hostile clients
# (bench/front_door.mjs): /health and /ready (interleaved, each on a fresh connection)
# p50/p99 on the probe listener idle, with BENCH_SLOW_CONNECTIONS slow connections held open
# on the public port, and with those plus 200 unauthenticated 20 MiB uploads at once, each
# with its ratio to the idle figure of the same run; and the api's peak RSS during the flood.
# The same figures go to ${BENCH_OUT:-/tmp}/http-latest.json. Everything started here is
# stopped on exit.
#
# Environment:
#   ALMANAC_BIN            binary to measure (default: build/almanac, built if missing)
#   BENCH_DURATION         wrk duration per target (default 10s)
#   BENCH_WARMUP           wrk warm-up duration per target (default 3s)
#   BENCH_CONNECTIONS      wrk connections (default 64)
#   BENCH_THREADS          wrk threads (default 2)
#   BENCH_OUT              directory of http-latest.json (default /tmp)
#   ALMANAC_READY_CACHE_MS readiness cache TTL handed to the api (its default when unset)
#   BENCH_SLOW_CONNECTIONS slow connections held on the public port (default 2000; the api
#                          gets ALMANAC_HTTP_MAX_CONNECTIONS=4096 so that all are held)
#   BENCH_PROBES           probes per path and latency figure (default 500)
#
# Targets (from the performance issue): /health at least 0.8x nginx; idle RSS under 8 MB.
# From the front-door issue: /health and /ready p99 under 100 ms with the slow connections
# and the flood; RSS under 64 MB during the flood.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-3s}
conns=${BENCH_CONNECTIONS:-64}
wthreads=${BENCH_THREADS:-2}
out_dir=${BENCH_OUT:-/tmp}
pg_bin=${ALMANAC_PG_BIN:-/usr/lib/postgresql/15/bin}
ncpu=$(nproc)

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_tools wrk nginx redis-server curl ss readelf cc pkg-config node
[ -x "$pg_bin/postgres" ] || {
    echo "bench: no PostgreSQL binaries in $pg_bin (set ALMANAC_PG_BIN)" >&2
    exit 1
}

bin=${ALMANAC_BIN:-$root/build/almanac}
if [ ! -x "$bin" ]; then
    if [ -n "${ALMANAC_BIN:-}" ]; then
        echo "bench: ALMANAC_BIN=$bin is not executable" >&2
        exit 1
    fi
    echo "bench: building $bin"
    cmake -S "$root" -B "$root/build" -DALM_TESTS=OFF >/dev/null
    cmake --build "$root/build" -j"$ncpu" >/dev/null
fi

tmp=$(mktemp -d /tmp/almanac-bench.XXXXXX)
# PostgreSQL and nginx workers may run as other users when we are root: let them in.
chmod 711 "$tmp"
api_pid="" nginx_pid="" pg_started="" redis_started="" slow_pid="" flood_pid=""

# PostgreSQL refuses to run as root; as root it runs as the postgres user.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
fi

cleanup() {
    local rc=$?
    set +e
    [ -n "$flood_pid" ] && kill "$flood_pid" 2>/dev/null && wait "$flood_pid" 2>/dev/null
    [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null && wait "$slow_pid" 2>/dev/null
    [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    if [ -n "$redis_started" ] && [ -s "$tmp/redis.pid" ]; then
        kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    fi
    [ -n "$pg_started" ] && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -m immediate \
        stop >/dev/null 2>&1
    if [ $rc -ne 0 ]; then
        for f in migrate.log api.log nginx-error.log pg.log redis.log; do
            [ -s "$tmp/$f" ] && { echo "--- $f (tail)" >&2; tail -n 20 "$tmp/$f" >&2; }
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on; ports are tried from a random start so that
# concurrent runs rarely race for the same one.
used_ports=" "
free_port() {
    local p=$((20000 + RANDOM % 30000))
    while [ -n "$(ss -Htan "sport = :$p")" ] || [[ "$used_ports" == *" $p "* ]]; do
        p=$((p + 1))
        [ $p -lt 60000 ] || p=20000
    done
    used_ports+="$p "
    echo "$p"
}

# Waits up to 15 s for a command to succeed.
wait_for() {
    local what=$1
    shift
    for _ in $(seq 150); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: $what did not come up" >&2
    return 1
}

# ---------------------------------------------------------------- dependencies

pg_port=$(free_port)
mkdir -p "$tmp/pg"
[ ${#as_pg[@]} -eq 0 ] || chown postgres: "$tmp/pg"
"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/pg/data" -U almanac --auth=trust -E UTF8 \
    --no-sync >"$tmp/pg.log" 2>&1
pg_started=1
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $pg_port -k $tmp/pg -c fsync=off" start >>"$tmp/pg.log" 2>&1
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U almanac almanac >>"$tmp/pg.log" 2>&1

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp" >/dev/null
redis_started=1
wait_for "redis" test -s "$tmp/redis.pid"

# ---------------------------------------------------------------- almanac api

api_port=$(free_port)
export ALMANAC_DATABASE_URL="postgresql://almanac@127.0.0.1:$pg_port/almanac"
export ALMANAC_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export ALMANAC_LISTEN="127.0.0.1:$api_port"
probe_port=$(free_port)
export ALMANAC_PROBE_LISTEN="127.0.0.1:$probe_port"
export ALMANAC_ENV=development
export ALMANAC_LOG_LEVEL=info
slow_n=${BENCH_SLOW_CONNECTIONS:-2000}
probe_n=${BENCH_PROBES:-500}
export ALMANAC_HTTP_MAX_CONNECTIONS=4096
unset ALMANAC_QDRANT_URL # Qdrant then reports "warn", which still answers 200
# Readiness includes the schema: apply the migrations first (binaries that have them).
if "$bin" --help 2>&1 | grep -q '^ *migrate '; then
    "$bin" migrate >"$tmp/migrate.log" 2>&1
fi
"$bin" api >"$tmp/api.log" 2>&1 &
api_pid=$!
api_url="http://127.0.0.1:$api_port"
wait_for "almanac api" curl -fsS "$api_url/health"
# The first refresh connects to both dependencies; /ready must be 200 to be worth measuring.
wait_for "almanac /ready 200" curl -fsS "$api_url/ready"
sleep 1
rss_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$api_pid/status"; }
idle_rss_kb=$(rss_kb VmRSS)
idle_rollup=$(grep -E '^(Rss|Pss_Anon|Pss_File|Anonymous):' "/proc/$api_pid/smaps_rollup" |
    awk '{ printf "%s %s kB; ", $1, $2 }')

# ---------------------------------------------------------------- memory baseline

# Most of a process's resident memory here is pages of the shared libraries it maps.
# bench/rss_floor.c, linked against exactly the libraries the binary lists, measures what
# those cost by themselves: once only loaded, once initialised as the api uses them.
floor_bin="$tmp/rss_floor"
mapfile -t needed < <(readelf -d "$bin" | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $NF); print "-l:" $NF }')
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -O2 $(pkg-config --cflags libpq hiredis libcurl) "$root/bench/rss_floor.c" -o "$floor_bin" \
    -Wl,--no-as-needed "${needed[@]}"
floor_rss_kb() {
    local pid
    rm -f "$tmp/floor.in" "$tmp/floor.out"
    mkfifo "$tmp/floor.in"
    "$floor_bin" "$@" <"$tmp/floor.in" >"$tmp/floor.out" &
    pid=$!
    exec 4>"$tmp/floor.in" # it waits for end of input: keep the fifo open while measuring
    wait_for "rss_floor $1" grep -q ready "$tmp/floor.out"
    sleep 1
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status"
    exec 4>&-
    wait "$pid"
}
floor_load_kb=$(floor_rss_kb load)
floor_init_kb=$(floor_rss_kb init "$ALMANAC_DATABASE_URL" 127.0.0.1 "$redis_port")

# ---------------------------------------------------------------- nginx baseline

# The same body bytes as our /health (its size is what matters), and the same extra
# headers, so that both sides write equally large answers.
health_body=$(curl -fsS "$api_url/health")
nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
nginx_user=""
[ "$(id -u)" -ne 0 ] || nginx_user="user nobody nogroup;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes $ncpu;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        location = /health {
            default_type application/json;
            add_header X-Request-Id \$request_id;
            add_header Cache-Control no-store;
            add_header X-Content-Type-Options nosniff;
            return 200 '$health_body';
        }
    }
}
EOF
nginx -p "$tmp/nginx" -e "$tmp/nginx-error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port"
wait_for "nginx" curl -fsS "$nginx_url/health"
nginx_body=$(curl -fsS "$nginx_url/health")
[ ${#nginx_body} -eq ${#health_body} ] || {
    echo "bench: nginx body is ${#nginx_body} bytes, ours ${#health_body}" >&2
    exit 1
}

# ---------------------------------------------------------------- load

# Latency in ms from wrk's "1.23ms" / "456.78us" / "1.02s".
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

declare -A rps p99 errs
run_wrk() {
    local name=$1 url=$2 report
    wrk -t"$wthreads" -c"$conns" -d"$warmup" "$url" >/dev/null
    report=$(wrk -t"$wthreads" -c"$conns" -d"$duration" --timeout 5s --latency "$url")
    echo "$report" >"$tmp/wrk-$name.txt"
    rps[$name]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$report")
    p99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$report")")
    # Non-2xx answers and socket errors both make a figure meaningless: count them.
    errs[$name]=$(awk '/Non-2xx/ { n += $NF }
        /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
        END { print n + 0 }' <<<"$report")
}

targets=(nginx health ready)
declare -A urls=([nginx]="$nginx_url/health" [health]="$api_url/health" [ready]="$api_url/ready")
declare -A labels=([nginx]="nginx fixed JSON" [health]="almanac /health"
    [ready]="almanac /ready (cached)")
for t in "${targets[@]}"; do
    run_wrk "$t" "${urls[$t]}"
done
peak_rss_kb=$(rss_kb VmHWM)
after_rss_kb=$(rss_kb VmRSS)
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$api_pid/status")

# ---------------------------------------------------------------- hostile clients

front="$root/bench/front_door.mjs"
probe_urls=("http://127.0.0.1:$probe_port/health" "http://127.0.0.1:$probe_port/ready")
probe_paths=(health ready)
# each: {"health": {"n","p50_ms","p99_ms","max_ms","errors"}, "ready": {...}}
jget() { node -e 'const v = process.argv[2].split(".").reduce((o, k) => o?.[k], JSON.parse(process.argv[1])); console.log(typeof v === "object" ? JSON.stringify(v) : v ?? 0)' "$1" "$2"; }
probe_idle=$(node "$front" probe "$probe_n" "${probe_urls[@]}")
mkfifo "$tmp/slow.in"
node "$front" slow "$api_port" "$slow_n" <"$tmp/slow.in" >"$tmp/slow.out" 2>&1 &
slow_pid=$!
exec 5>"$tmp/slow.in" # the holder stops when this closes
wait_for "$slow_n slow connections" grep -q '^ready' "$tmp/slow.out"
probe_slow=$(node "$front" probe "$probe_n" "${probe_urls[@]}")
public_slow=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api_url/health" || true)
rss_slow_kb=$(rss_kb VmRSS)
node "$front" flood "$api_port" /api/v1/knowledge-bases/1/documents 200 $((20 * 1024 * 1024)) \
    "$api_pid" >"$tmp/flood.out" &
flood_pid=$!
probe_flood=$(node "$front" probe "$probe_n" "${probe_urls[@]}")
wait "$flood_pid"
flood_pid=""
flood=$(cat "$tmp/flood.out")
held=$(awk '/^open/ { n = $2 } END { print n + 0 }' "$tmp/slow.out")
exec 5>&-
wait "$slow_pid" || true
slow_pid=""
refused=$(curl -fsS "http://127.0.0.1:$probe_port/metrics" | awk '/^almanac_http_refused_total/ { printf "%s ", $0 }')

# ---------------------------------------------------------------- report

ratio() { awk -v a="$1" -v b="${rps[nginx]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "wrk -t$wthreads -c$conns -d$duration on $ncpu CPUs (warm-up $warmup); cache ${ALMANAC_READY_CACHE_MS:-default} ms"
printf '%-26s %14s %12s %10s %8s\n' target requests/s "p99 (ms)" "x nginx" errors
for t in "${targets[@]}"; do
    printf '%-26s %14s %12s %10s %8s\n' "${labels[$t]}" "${rps[$t]}" "${p99[$t]}" \
        "$(ratio "${rps[$t]}")" "${errs[$t]}"
done
echo
echo "api RSS idle after start: $(mb "$idle_rss_kb") MB (target < 8 MB)"
echo "  smaps_rollup: $idle_rollup"
echo "  baseline, the same shared libraries in a program doing nothing else (bench/rss_floor.c):"
echo "    only loaded: $(mb "$floor_load_kb") MB; initialised like the api (libcurl with its TLS"
echo "    library, one PostgreSQL and one Redis connection): $(mb "$floor_init_kb") MB"
echo "  api beyond that baseline: $(mb $((idle_rss_kb - floor_init_kb))) MB"
echo "api RSS after load: $(mb "$after_rss_kb") MB, peak (VmHWM): $(mb "$peak_rss_kb") MB; $threads threads"

echo
echo "front door: /health and /ready on the probe listener, $probe_n probes each, interleaved,"
echo "fresh connection per probe; x idle: over the idle figure of that path in this run"
printf '%-52s %-8s %9s %9s %9s %7s %10s %10s\n' condition path "p50 (ms)" "p99 (ms)" "max (ms)" \
    errors "p50 x idle" "p99 x idle"
x_idle() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
probe_row() {
    local p
    for p in "${probe_paths[@]}"; do
        printf '%-52s %-8s %9s %9s %9s %7s %10s %10s\n' "$1" "/$p" "$(jget "$2" "$p.p50_ms")" \
            "$(jget "$2" "$p.p99_ms")" "$(jget "$2" "$p.max_ms")" "$(jget "$2" "$p.errors")" \
            "$(x_idle "$(jget "$2" "$p.p50_ms")" "$(jget "$probe_idle" "$p.p50_ms")")" \
            "$(x_idle "$(jget "$2" "$p.p99_ms")" "$(jget "$probe_idle" "$p.p99_ms")")"
    done
}
probe_row "idle server" "$probe_idle"
probe_row "$slow_n slow connections on the public port" "$probe_slow"
probe_row "same + 200 unauthenticated 20 MiB uploads at once" "$probe_flood"
echo "  public /health with the slow connections held: HTTP $public_slow; still open at the end: $held"
echo "  flood answers: $(jget "$flood" statuses | tr -d '\n'); api RSS idle $(mb "$idle_rss_kb") MB, with the slow connections $(mb "$rss_slow_kb") MB, peak during the flood $(mb "$(jget "$flood" rss_peak_kb)") MB (target < 64 MB)"
echo "  $refused"

health_ratio=$(ratio "${rps[health]}")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t + 0) ? "true" : "false" }'; }
mkdir -p "$out_dir"
{
    printf '{\n  "when": "%s",\n  "cpus": %s,\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ncpu"
    printf '  "wrk": {"threads": %s, "connections": %s, "duration": "%s", "warmup": "%s"},\n' \
        "$wthreads" "$conns" "$duration" "$warmup"
    printf '  "targets": [\n'
    sep=""
    for t in "${targets[@]}"; do
        printf '%s    {"name": "%s", "url_path": "%s", "requests_per_s": %s, "p99_ms": %s, ' \
            "$sep" "$t" "/${urls[$t]#http://*/}" "${rps[$t]}" "${p99[$t]}"
        printf '"ratio_to_nginx": %s, "errors": %s}' "$(ratio "${rps[$t]}")" "${errs[$t]}"
        sep=$',\n'
    done
    printf '\n  ],\n'
    printf '  "rss_kb": {"idle": %s, "after_load": %s, "peak": %s},\n' "$idle_rss_kb" \
        "$after_rss_kb" "$peak_rss_kb"
    printf '  "rss_floor_kb": {"libraries_loaded": %s, "libraries_initialised": %s},\n' \
        "$floor_load_kb" "$floor_init_kb"
    printf '  "api_threads": %s,\n' "$threads"
    printf '  "front_door": {"slow_connections": %s, "probe_idle": %s, "probe_slow": %s, ' \
        "$slow_n" "$probe_idle" "$probe_slow"
    printf '"probe_slow_and_flood": %s, "flood": %s, "public_health_status": "%s", ' \
        "$probe_flood" "$flood" "$public_slow"
    printf '"rss_kb_slow": %s},\n' "$rss_slow_kb"
    printf '  "goals": {"health_ratio_min": 0.8, "health_ratio_met": %s, ' \
        "$(verdict "$health_ratio" 0.8)"
    printf '"idle_rss_kb_max": 8192, "idle_rss_met": %s, ' "$(verdict 8192 "$idle_rss_kb")"
    printf '"probe_p99_ms_max": 100, "health_probe_p99_met": %s, "ready_probe_p99_met": %s, ' \
        "$(verdict 100 "$(jget "$probe_flood" health.p99_ms)")" \
        "$(verdict 100 "$(jget "$probe_flood" ready.p99_ms)")"
    printf '"flood_rss_kb_max": 65536, "flood_rss_met": %s}\n}\n' \
        "$(verdict 65536 "$(jget "$flood" rss_peak_kb)")"
} >"$out_dir/http-latest.json"
echo "results: $out_dir/http-latest.json"

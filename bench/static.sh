#!/usr/bin/env bash
# bench/static.sh — static files against nginx, and the cost of response compression.
#
#   bash bench/static.sh
#
# One run, one worker each, server pinned to CPU 0 and wrk to CPU 1, everything on loopback:
#   1. a 4 KiB file, keep-alive, `wrk -t1 -c64`: wsrun req/s / nginx req/s;
#   2. a 100 MiB file, `wrk -t1 -c8`: wsrun bytes/s / nginx bytes/s, and each worker's peak RSS
#      (VmHWM) before and after (it must not grow with the file);
#   3. a 20 KB JSON response from a Python app (`bench/apps/json20k.py`), requests sending
#      `Accept-Encoding: gzip`: wsrun with `compression = ["gzip"]` (its memo of compressed
#      bodies on, as by default, and off: `compression_cache = 0`) / `compression = []`, for a
#      body built once (`/json`: the compressor's cost against almost nothing), one built by
#      `json.dumps` on every request (`/built`, as an API endpoint does; the same bytes each
#      time) and one that differs on every request (`/unique`: a counter in it, so the memo
#      never hits and every response is compressed).
# nginx is Debian's (installed with apt-get when missing): `worker_processes 1`, `sendfile on`,
# `tcp_nopush on`, access log off, `keepalive_requests` raised so wrk's connections stay open.
# Every row runs ROUNDS times, its two sides alternating; the report gives medians.
# Environment: ROUNDS [3]  DURATION [10]  WARMUP [2]  PORT_NGINX [18480]  PORT_WSRUN [18481, and the next two]
#              JSON_ONLY (only the JSON rows, no nginx)  SKIP_INSTALL, SKIP_BUILD [unset]
#              WSRUN_BIN [target/release/wsrun]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
PORT_NGINX=${PORT_NGINX:-18480}
PORT_WSRUN=${PORT_WSRUN:-18481}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
STARTED=$SECONDS

make_work wsrun-static
if [[ -z ${SKIP_INSTALL:-} ]]; then
    apt_install_missing nginx=/usr/sbin/nginx wrk=wrk curl=curl procps=pgrep
fi
if [[ -z ${SKIP_BUILD:-} ]]; then
    cargo_build 0
fi
[[ -x $WSRUN_BIN ]] || die "no wsrun binary at $WSRUN_BIN"
setup_pinning wrk

PUBLIC="$WORK/public"
mkdir -p "$PUBLIC" "$WORK/nginx"
head -c 4096 /dev/urandom >"$PUBLIC/small.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$PUBLIC/big.bin"

cat >"$WORK/nginx.conf" <<CONF
user root root;
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT_NGINX;
        root $PUBLIC;
    }
}
CONF

# wsrun.toml for the static rows, and for the JSON rows with `compression = $1` and the
# [server] line $2.
wsrun_config() {
    cat <<CONF
[server]
compression = $1
$2

[[route]]
prefix = "/json"
python = "json20k:app"

[[route]]
prefix = "/built"
python = "json20k:built"

[[route]]
prefix = "/unique"
python = "json20k:unique"

[[route]]
prefix = "/"
static = "$PUBLIC"
CONF
}

# Waits (at most 5 s) until process $1 leads its own group: right after start_group the child
# may not have called setsid yet, and wait_port would take the empty group for a dead server.
group_started() {
    local i
    for ((i = 0; i < 50; i++)); do
        [[ $(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ') == "$1" ]] && return 0
        sleep 0.1
    done
    return 1
}

# The only child of process $1 (a worker), or $1 itself (nginx's worker, wsrun's worker).
worker_of() {
    local child
    child=$(pgrep -P "$1" | head -n 1 || true)
    echo "${child:-$1}"
}
peak_rss_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# wrk over $2 seconds at URL $1 with extra arguments "${@:3}"; prints wrk's output.
load() {
    local url=$1 secs=$2
    shift 2
    "${PIN_CLIENT[@]}" wrk -t1 -d"${secs}s" "$@" "$url"
}
rps_of() { awk '/^Requests\/sec/ { print $2 }'; }
# wrk's Transfer/sec in bytes.
bytes_per_sec_of() {
    awk '/^Transfer\/sec/ {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
        m = (u == "KB") ? 1024 : (u == "MB") ? 1048576 : (u == "GB") ? 1073741824 : 1
        printf "%.0f\n", v * m }'
}

# Runs the static rows against the server listening on $1; sets SMALL (req/s) and BIG (B/s).
static_rows() {
    local port=$1 out
    load "http://127.0.0.1:$port/small.bin" "$WARMUP" -c64 >/dev/null
    out=$(load "http://127.0.0.1:$port/small.bin" "$DURATION" -c64)
    SMALL=$(rps_of <<<"$out")
    log "  port $port, 4 KiB: $SMALL req/s $(wrk_note "$out")"
    out=$(load "http://127.0.0.1:$port/big.bin" "$DURATION" -c8)
    BIG=$(bytes_per_sec_of <<<"$out")
    log "  port $port, 100 MiB: $BIG B/s $(wrk_note "$out")"
}

if [[ -z ${JSON_ONLY:-} ]]; then
    log "nginx: $(/usr/sbin/nginx -v 2>&1)"
    start_group "$WORK/nginx.log" "${PIN_SERVER[@]}" /usr/sbin/nginx -c "$WORK/nginx.conf"
    NGINX_PID=$STARTED_PID
    group_started "$NGINX_PID" || true
    wait_port "$NGINX_PID" "$PORT_NGINX" || die "nginx did not start: $(tail -n 5 "$WORK/nginx.log")"
fi

# Starts wsrun on port $2 with `compression = $1` and the [server] line $3; sets WSRUN_PID.
start_wsrun() {
    wsrun_config "$1" "${3:-}" >"$WORK/wsrun-$2.toml"
    start_group "$WORK/wsrun-$2.log" "${PIN_SERVER[@]}" "$WSRUN_BIN" -c "$WORK/wsrun-$2.toml" \
        --pythonpath "$BENCH_DIR/apps" --bind "127.0.0.1:$2" --workers 1
    group_started "$STARTED_PID" || true
    wait_port "$STARTED_PID" "$2" || die "wsrun did not start: $(tail -n 5 "$WORK/wsrun-$2.log")"
    WSRUN_PID=$STARTED_PID
}
log "wsrun: $WSRUN_BIN"
GZIP_PORT=$PORT_WSRUN PLAIN_PORT=$((PORT_WSRUN + 1)) NOMEMO_PORT=$((PORT_WSRUN + 2))
start_wsrun '["gzip"]' "$GZIP_PORT" && GZIP_PID=$WSRUN_PID
start_wsrun '[]' "$PLAIN_PORT" && PLAIN_PID=$WSRUN_PID
start_wsrun '["gzip"]' "$NOMEMO_PORT" 'compression_cache = 0' && NOMEMO_PID=$WSRUN_PID

# One wrk run of the JSON route $2 on port $1 with `Accept-Encoding: gzip`; prints req/s.
json_rps() {
    local out
    load "http://127.0.0.1:$1$2" "$WARMUP" -c64 -H 'Accept-Encoding: gzip' >/dev/null
    out=$(load "http://127.0.0.1:$1$2" "$DURATION" -c64 -H 'Accept-Encoding: gzip')
    log "  $2 on port $1: $(rps_of <<<"$out") req/s $(wrk_note "$out")"
    rps_of <<<"$out"
}

# Every row alternates its two sides, ROUNDS times, so drift on this shared machine hits both.
declare -a N_SMALLS W_SMALLS N_BIGS W_BIGS
declare -A JSON_RPS # "route side" -> the rounds' req/s, space-separated
JSON_ROUTES=(/json /built /unique)
declare -A SIDE_PORT=([on]=$GZIP_PORT [nomemo]=$NOMEMO_PORT [off]=$PLAIN_PORT)
if [[ -z ${JSON_ONLY:-} ]]; then
    N_RSS_BEFORE=$(peak_rss_kib "$(worker_of "$NGINX_PID")")
    W_RSS_BEFORE=$(peak_rss_kib "$(worker_of "$GZIP_PID")")
fi
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    if [[ -z ${JSON_ONLY:-} ]]; then
        static_rows "$PORT_NGINX" && N_SMALLS+=("$SMALL") N_BIGS+=("$BIG")
        static_rows "$GZIP_PORT" && W_SMALLS+=("$SMALL") W_BIGS+=("$BIG")
    fi
    for route in "${JSON_ROUTES[@]}"; do
        for side in on nomemo off; do
            JSON_RPS["$route $side"]+="$(json_rps "${SIDE_PORT[$side]}" "$route") "
        done
    done
done
if [[ -z ${JSON_ONLY:-} ]]; then
    N_RSS_AFTER=$(peak_rss_kib "$(worker_of "$NGINX_PID")")
    W_RSS_AFTER=$(peak_rss_kib "$(worker_of "$GZIP_PID")")
    stop_server "$NGINX_PID"
fi
GZIP_SIZE=$(curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$GZIP_PORT/json" | wc -c)
stop_server "$GZIP_PID"
stop_server "$PLAIN_PID"
stop_server "$NOMEMO_PID"

med() { printf '%s\n' "$@" | median; }
# One report row for JSON route $1 ($2 describes it): medians per side and the two ratios.
json_row() {
    local on nomemo off
    # shellcheck disable=SC2086 # the rounds are space-separated on purpose
    on=$(med ${JSON_RPS["$1 on"]}) nomemo=$(med ${JSON_RPS["$1 nomemo"]}) off=$(med ${JSON_RPS["$1 off"]})
    echo "| $2 | $on | $nomemo | $off | $(ratio "$on" "$off") | $(ratio "$nomemo" "$off") |"
}
REPORT="$WORK/static.md"
{
    echo "## bench/static.sh, $(date -u '+%Y-%m-%d %H:%M') UTC, medians of $ROUNDS alternating rounds of ${DURATION} s"
    echo
    echo "Machine: $(machine); $PINNING."
    echo
    if [[ -z ${JSON_ONLY:-} ]]; then
        N_SMALL=$(med "${N_SMALLS[@]}") W_SMALL=$(med "${W_SMALLS[@]}")
        N_BIG=$(med "${N_BIGS[@]}" | cut -d. -f1) W_BIG=$(med "${W_BIGS[@]}" | cut -d. -f1)
        echo "| row | nginx | wsrun | wsrun / nginx |"
        echo "| --- | ---: | ---: | ---: |"
        echo "| 4 KiB file, wrk -c64, req/s | $N_SMALL | $W_SMALL | $(ratio "$W_SMALL" "$N_SMALL") |"
        echo "| 100 MiB file, wrk -c8, MB/s | $((N_BIG / 1000000)) | $((W_BIG / 1000000)) | $(ratio "$W_BIG" "$N_BIG") |"
        echo "| worker peak RSS before -> after all rounds, KiB | $N_RSS_BEFORE -> $N_RSS_AFTER | $W_RSS_BEFORE -> $W_RSS_AFTER | |"
        echo
    fi
    echo "| 20 KB JSON (Python), Accept-Encoding: gzip, req/s | gzip on | gzip on, no memo | compression off | on / off | no memo / off |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    json_row /json "a body built once (\`/json\`, $GZIP_SIZE B gzipped)"
    json_row /built "\`json.dumps\` per request, same bytes (\`/built\`)"
    json_row /unique "a counter in it, never the same bytes (\`/unique\`)"
    echo
    [[ -n ${JSON_ONLY:-} ]] || echo "Per round: ${N_SMALLS[*]} / ${W_SMALLS[*]} (4 KiB nginx / wsrun); ${N_BIGS[*]} / ${W_BIGS[*]} (100 MiB B/s)."
    for route in "${JSON_ROUTES[@]}"; do
        echo "Per round, $route on / no memo / off: ${JSON_RPS["$route on"]}/ ${JSON_RPS["$route nomemo"]}/ ${JSON_RPS["$route off"]}"
    done
    total_time $((SECONDS - STARTED))
} >"$REPORT"
mkdir -p "$BENCH_DIR/results"
cp "$REPORT" "$BENCH_DIR/results/static-$(date -u +%Y%m%d_%H%M).md"
show_report "$REPORT"

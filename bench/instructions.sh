#!/usr/bin/env bash
# bench/instructions.sh — instructions per request of a WSGI server's worker, by callgrind.
#
#   bash bench/instructions.sh [SCENARIO] [SERVER ...]     # defaults: flask, "wsrun bjoern"
#
# For each server: start it with one worker under `valgrind --tool=callgrind`, load it with
# `wrk -t1 -cCONNECTIONS`, zero the worker's counters after WARMUP seconds, dump them
# SECONDS_COUNTED seconds later (the same load and connections throughout), and print (bench/callgrind_share.py) the instructions the
# worker ran per request, their split by object (libpython, the server, libc, ...) and the
# server's own share with its top functions. The profile stays in ${TMPDIR:-/tmp} for
# `callgrind_annotate`, as bench/profile.sh keeps its perf data.
#
# Why beside bench/profile.sh: perf samples CPU time, which moves by a point between runs on
# this shared machine; callgrind counts instructions, which do not depend on what else the
# machine is doing, so a change of a few hundred instructions per request is visible. It does
# not count the kernel, nor the cycles an instruction waits on a cache miss: the two profiles
# answer different questions, and the issue's "share of a worker's CPU" is perf's.
#
# CONNECTION_CLOSE=1 sends every request with `Connection: close`: a new connection a request,
# as from a proxy that does not keep upstream connections alive (nginx's default), so the
# figures include each connection's set-up and teardown.
#
# CACHE_SIM=1 adds callgrind's cache simulation (about twice as slow): the first-level
# instruction and data misses per request, and the server's share of them.
#
# Environment: SECONDS_COUNTED [15]  WARMUP [5]  CONNECTIONS [64]  BASE_PORT [18280]  TOP [12]
#   CACHE_SIM [0]  CONNECTION_CLOSE [0]  WSRUN_BIN [target/release/wsrun]
# Needs: valgrind, wrk, and bench/.venv from core.sh (run `bash bench/core.sh` once).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"
COUNTED="${SECONDS_COUNTED:-15}"
WARMUP="${WARMUP:-5}"
CONNECTIONS="${CONNECTIONS:-64}"
BASE_PORT="${BASE_PORT:-18280}"
TOP="${TOP:-12}"

SCENARIO="${1:-flask}"
shift || true
SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(wsrun bjoern)

app_scenario "$SCENARIO"
for tool in valgrind callgrind_control wrk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install valgrind wrk)"
done
[[ -x $VENV/bin/python ]] || die "no $VENV: run bash bench/core.sh once to make it"
SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
make_work wsrun-instructions

# Sets CMD to serve $TARGET with server $1 on port $2, under callgrind (children traced, so a
# pre-forking server's worker writes its own file).
server_cmd() {
    local grind=(valgrind --tool=callgrind --trace-children=yes
        "--callgrind-out-file=$WORK/$1.callgrind.%p")
    [[ ${CACHE_SIM:-0} == 1 ]] && grind+=(--cache-sim=yes)
    case $1 in
        wsrun) CMD=(env "PYTHONPATH=$SITE_PACKAGES" "${grind[@]}" "$WSRUN_BIN" "$TARGET"
            --pythonpath "$APPS_DIR" --bind "127.0.0.1:$2" --workers 1 --state-dir "$WORK/state") ;;
        bjoern) CMD=("${grind[@]}" "$VENV/bin/python" "$BENCH_DIR/run_bjoern.py" "$TARGET"
            127.0.0.1 "$2" "$APPS_DIR") ;;
        granian) CMD=("${grind[@]}" "$VENV/bin/granian" --interface wsgi --host 127.0.0.1
            --port "$2" --workers 1 --log-level warning --working-dir "$APPS_DIR" "$TARGET") ;;
        *) die "unknown server $1 (known: wsrun bjoern granian)" ;;
    esac
}

count_once() {
    local name=$1 port=$2 pid url worker requests profile
    server_cmd "$name" "$port"
    start_group "$WORK/$name.log" "${CMD[@]}"
    pid=$STARTED_PID
    # Under callgrind an import takes tens of seconds: wait up to three minutes.
    wait_until "$pid" 1800 http_answers "$port" ||
        { tail -n 5 "$WORK/$name.log" >&2; die "$name did not start"; }
    url="http://127.0.0.1:$port$PATH_QUERY"
    # One load for the warm-up and the count: the counted requests ride on connections opened
    # before the counters were zeroed, as in a long keep-alive run (a second wrk would open
    # CONNECTIONS new ones inside the count, and a connection's set-up is not a request's).
    local total=$((WARMUP + COUNTED + 3))
    local close=()
    [[ ${CONNECTION_CLOSE:-0} == 1 ]] && close=(-H "Connection: close")
    wrk -t1 "-c$CONNECTIONS" "-d${total}s" "${close[@]}" "$url" >"$WORK/$name.wrk" 2>&1 &
    local load=$!
    sleep "$WARMUP"
    worker=$(busiest "$pid")
    callgrind_control --zero "$worker" >/dev/null 2>&1
    sleep "$COUNTED"
    callgrind_control --dump "$worker" >/dev/null 2>&1
    wait "$load" || true
    # For a server with no per-request marker (callgrind_share.py), wrk's count over the
    # counted share of the run stands in.
    requests=$(awk -v part="$COUNTED" -v whole="$total" \
        '/requests in/ { printf "%d", $1 * part / whole }' "$WORK/$name.wrk")
    stop_server "$pid"
    echo "$name ($SCENARIO, worker pid $worker) $(wrk_note "$(cat "$WORK/$name.wrk")")"
    profile=$(ls -t "$WORK/$name.callgrind.$worker".* | head -n 1)
    "$VENV/bin/python" "$BENCH_DIR/callgrind_share.py" "$profile" "$requests" "$name" "$TOP"
    cp "$profile" "${TMPDIR:-/tmp}/wsrun-instructions-$name-$SCENARIO.callgrind"
    echo "  callgrind data: ${TMPDIR:-/tmp}/wsrun-instructions-$name-$SCENARIO.callgrind"
}

port=$BASE_PORT
for name in "${SERVERS[@]}"; do
    port=$((port + 1))
    count_once "$name" "$port"
done

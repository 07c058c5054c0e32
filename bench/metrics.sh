#!/usr/bin/env bash
# bench/metrics.sh — what the admin listener's metrics cost on the request path: one wsrun
# binary, hello world with `--admin` on against off, rounds interleaved (off on, on off, ...:
# the order flips every round so neither side always runs first on this noisy machine).
#
#   bash bench/metrics.sh [hello|wasm|flask]
#
# One worker, server pinned to CPU 0 and wrk to CPU 1 (`wrk -t1 -c64`), as in ab.sh. Each
# "on" round ends with a scrape of /metrics, checking that the requests were counted (the
# hello route's 200s at least as many as wrk reported). Prints each round's req/s and the
# median on/off ratio (the target: >= 0.97).
# PROFILE=1 adds one "on" run under `perf record` (cpu-clock samples of the worker, DURATION
# s) and prints the share of the worker's samples in the metrics code (`wsrun::metrics::`
# symbols: `WorkerMetrics::request_done` and friends are kept out of line for this), next to
# the top symbols, so the cost can be read as a share of the worker's CPU.
# Environment: ROUNDS [8]  DURATION [8]  WARMUP [2]  CONNECTIONS [64]  PORT [18480]
#   PROFILE [0]  WSRUN_BIN [target/release/wsrun]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

SCENARIO=${1:-hello}
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18480}
ADMIN_PORT=$((PORT + 1))
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

case $SCENARIO in
    hello) ARGS=(hello:app --pythonpath "$BENCH_DIR/apps") URL_PATH=/ ;;
    wasm) ARGS=(--wasm "/=$ROOT/handlers/hello.wasm") URL_PATH=/ ;;
    flask) ARGS=(flask_json:app --pythonpath "$BENCH_DIR/apps") URL_PATH='/users/7?q=a' ;;
    *) die "unknown scenario $SCENARIO (hello, wasm or flask)" ;;
esac
SERVER_ENV=()
if [[ $SCENARIO == flask ]]; then
    [[ -x $VENV/bin/python ]] || die "bench/.venv is missing: run bash bench/core.sh once"
    SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    SERVER_ENV=(env "PYTHONPATH=$SITE_PACKAGES" "VIRTUAL_ENV=$VENV")
fi
[[ -x $WSRUN_BIN ]] || die "no binary at $WSRUN_BIN (cargo build --release -p wsrun)"
command -v wrk >/dev/null || die "wrk is not installed"
command -v curl >/dev/null || die "curl is not installed"
make_work wsrun-metrics
setup_pinning wrk

# One round with the admin listener $1 (on|off); prints its req/s.
one_round() {
    local mode=$1 pid out rps total counted admin=()
    [[ $mode == on ]] && admin=(--admin "127.0.0.1:$ADMIN_PORT")
    start_group "$WORK/server.log" "${SERVER_ENV[@]}" "${PIN_SERVER[@]}" "$WSRUN_BIN" \
        "${ARGS[@]}" "${admin[@]}" --bind "127.0.0.1:$PORT" --workers 1
    pid=$STARTED_PID
    wait_port "$pid" "$PORT" || die "server did not start: $(tail -n 5 "$WORK/server.log")"
    "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "http://127.0.0.1:$PORT$URL_PATH" >/dev/null
    out=$("${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$PORT$URL_PATH")
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    if [[ $mode == on ]]; then
        total=$(awk '/requests in/ { print $1 }' <<<"$out")
        counted=$(curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
            awk '/^wsrun_http_requests_total\{route="\/",tenant="",code="200"\}/ { print $2 }')
        awk -v c="${counted:-0}" -v t="${total:-0}" 'BEGIN { exit !(c >= t && t > 0) }' ||
            die "metrics counted ${counted:-nothing} of at least $total requests"
    fi
    stop_server "$pid"
    echo "${rps:-0}"
}

# One "on" run under perf record; prints the metrics symbols' share and the top symbols.
profile_on() {
    local pid worker data="$WORK/on.perf"
    command -v perf >/dev/null || die "perf is not installed"
    start_group "$WORK/server.log" "${SERVER_ENV[@]}" "${PIN_SERVER[@]}" "$WSRUN_BIN" \
        "${ARGS[@]}" --admin "127.0.0.1:$ADMIN_PORT" --bind "127.0.0.1:$PORT" --workers 1
    pid=$STARTED_PID
    wait_port "$pid" "$PORT" || die "server did not start: $(tail -n 5 "$WORK/server.log")"
    "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"$((WARMUP + DURATION + 2))s" \
        "http://127.0.0.1:$PORT$URL_PATH" >"$WORK/on.wrk" 2>&1 &
    local load=$!
    sleep "$WARMUP"
    worker=$(pgrep -n -P "$pid")
    perf record -e cpu-clock -F 4999 -g -o "$data" -p "$worker" -- sleep "$DURATION" >/dev/null 2>&1
    wait "$load" || true
    stop_server "$pid"
    echo "profile (admin on, worker $worker): $(awk '/^Requests\/sec:/ { print $2 }' "$WORK/on.wrk") req/s under perf"
    perf report -i "$data" --no-children --sort sym -g none 2>/dev/null >"$WORK/on.report"
    awk '/%/ && /metrics::/ { s = $1; sub("%", "", s); total += s; print "    " $0 }
        END { printf "  metrics code: %.2f%% of the worker'"'"'s samples\n", total }' "$WORK/on.report"
    echo "  top symbols:"
    awk '/%/ && /\[/ { print "    " $0 }' "$WORK/on.report" | head -n 12
    cp "$data" "${TMPDIR:-/tmp}/wsrun-metrics-on.perf"
    echo "  perf data: ${TMPDIR:-/tmp}/wsrun-metrics-on.perf"
}

ratios=()
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
        off=$(one_round off)
        on=$(one_round on)
    else
        on=$(one_round on)
        off=$(one_round off)
    fi
    ratio=$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
    ratios+=("$ratio")
    log "round $round  $SCENARIO  off $off  on $on  on/off $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | median 3)
echo "$SCENARIO: median on/off over $ROUNDS interleaved rounds: $median ($PINNING)"
[[ ${PROFILE:-0} == 1 ]] && profile_on
exit 0

#!/usr/bin/env bash
# bench/ab.sh — A/B two wsrun binaries on the same scenario, rounds interleaved (A B A B ...),
# so that this noisy machine's drift lands on both sides. Use it to tell a regression from noise
# after a change on the request path: build the old commit in a worktree, then
#
#   bash bench/ab.sh OLD_BIN NEW_BIN [hello|echo|wasm|wasm-warm|wasm-python|flask|django]
#
# flask and django need bench/.venv (made by bench/core.sh) for their packages.
# One worker each, server pinned to CPU 0 and wrk to CPU 1 (`wrk -t1 -c64`), as in core.sh and
# wasm.sh. Prints each round's req/s and the server's CPU a request (user + system time of its
# processes over the run), then the median ratios NEW/OLD of both: where wrk's core is the
# limit (TLS, a connection a request) req/s cannot move, and the CPU a request tells.
# CONNECTION_CLOSE=1 sends every request with `Connection: close` (a new connection each, as
# from a proxy that does not keep upstream connections alive: nginx's default).
# BIND_HOST=0.0.0.0 binds the servers to the wildcard address (wsrun's default) instead of
# 127.0.0.1; the load still goes to 127.0.0.1.
# wasm-warm is wasm with the route at `requests_per_instance = 1000` (warm instances).
# TLS=1 serves and loads over TLS (a self-signed P-256 certificate made here, as tls.sh does).
# Environment: ROUNDS [6]  DURATION [8]  WARMUP [2]  CONNECTIONS [64]  PORT [18380]
#   CONNECTION_CLOSE [0]  BIND_HOST [127.0.0.1]  TLS [0]
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

USAGE="usage: bash bench/ab.sh OLD_BIN NEW_BIN [hello|echo|wasm|wasm-warm|wasm-python|flask|django]"
OLD_BIN=${1:?$USAGE}
NEW_BIN=${2:?$USAGE}
SCENARIO=${3:-hello}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18380}
BIND_HOST=${BIND_HOST:-127.0.0.1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

case $SCENARIO in
    hello) ARGS=(hello:app --pythonpath "$BENCH_DIR/apps") WRK_ARGS=() ;;
    echo) ARGS=(echo:app --pythonpath "$BENCH_DIR/apps") WRK_ARGS=(-s "$BENCH_DIR/post10k.lua") ;;
    wasm) ARGS=(--wasm "/=$ROOT/handlers/hello.wasm") WRK_ARGS=() ;;
    wasm-warm) ARGS=() WRK_ARGS=() ;; # its config file is written below, in the work directory
    # componentize-py's 18 MB component (handlers/other/build.sh); its compiled code is cached
    # in handlers/other/.wsrun, shared by both binaries (the pool settings do not change code)
    wasm-python) ARGS=(--wasm "/=$ROOT/handlers/other/python.wasm" --state-dir "$ROOT/handlers/other/.wsrun") WRK_ARGS=() ;;
    flask) ARGS=(flask_json:app --pythonpath "$BENCH_DIR/apps") WRK_ARGS=() URL_PATH='/users/7?q=a' ;;
    django) ARGS=(django_app:app --pythonpath "$BENCH_DIR/apps") WRK_ARGS=() URL_PATH='/hello/?name=wsrun' ;;
    *) die "unknown scenario $SCENARIO (hello, echo, wasm, wasm-warm, wasm-python, flask or django)" ;;
esac
URL_PATH=${URL_PATH:-/}
[[ ${CONNECTION_CLOSE:-0} == 1 ]] && WRK_ARGS+=(-H "Connection: close")
SERVER_ENV=()
if [[ $SCENARIO == flask || $SCENARIO == django ]]; then
    [[ -x $VENV/bin/python ]] || die "bench/.venv is missing: run bash bench/core.sh once"
    SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    SERVER_ENV=(env "PYTHONPATH=$SITE_PACKAGES" "VIRTUAL_ENV=$VENV")
fi
command -v wrk >/dev/null || die "wrk is not installed"
make_work wsrun-ab
setup_pinning wrk
if [[ $SCENARIO == wasm-warm ]]; then
    printf '[[route]]\nprefix = "/"\nwasm = "%s"\nrequests_per_instance = 1000\n' \
        "$ROOT/handlers/hello.wasm" >"$WORK/warm.toml"
    ARGS=(-c "$WORK/warm.toml")
fi
SCHEME=http
if [[ ${TLS:-0} == 1 ]]; then
    command -v openssl >/dev/null || die "openssl is not installed"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    ARGS+=(--certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem")
    SCHEME=https
fi

# Runs binary $1 for one round; prints its req/s and its CPU microseconds a request.
one_round() {
    local bin=$1 pid rps ticks
    start_group "$WORK/server.log" "${SERVER_ENV[@]}" "${PIN_SERVER[@]}" "$bin" "${ARGS[@]}" \
        --bind "$BIND_HOST:$PORT" --workers 1
    pid=$STARTED_PID
    wait_port "$pid" "$PORT" || die "server did not start: $(tail -n 5 "$WORK/server.log")"
    "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${WRK_ARGS[@]}" \
        "$SCHEME://127.0.0.1:$PORT$URL_PATH" >/dev/null
    ticks=$(group_cpu_ticks "$pid")
    rps=$("${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${WRK_ARGS[@]}" \
        "$SCHEME://127.0.0.1:$PORT$URL_PATH" | awk '/^Requests\/sec/ { print $2 }')
    ticks=$(($(group_cpu_ticks "$pid") - ticks))
    stop_server "$pid"
    awk -v r="${rps:-0}" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$DURATION" \
        'BEGIN { printf "%s %.2f\n", r, (r > 0 ? 1e6 * t / hz / (r * s) : 0) }'
}

ratios=()
cpu_ratios=()
for round in $(seq 1 "$ROUNDS"); do
    result=$(one_round "$OLD_BIN")
    read -r old old_us <<<"$result"
    result=$(one_round "$NEW_BIN")
    read -r new new_us <<<"$result"
    ratio=$(awk -v a="$old" -v b="$new" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
    cpu_ratio=$(awk -v a="$old_us" -v b="$new_us" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
    ratios+=("$ratio")
    cpu_ratios+=("$cpu_ratio")
    log "round $round  $SCENARIO  old $old  new $new  new/old $ratio" \
        " (CPU a request: old ${old_us} us, new ${new_us} us, new/old $cpu_ratio)"
done
median=$(printf '%s\n' "${ratios[@]}" | median 3)
cpu_median=$(printf '%s\n' "${cpu_ratios[@]}" | median 3)
echo "$SCENARIO$([[ ${TLS:-0} == 1 ]] && echo " over TLS"): median new/old over $ROUNDS interleaved rounds: $median" \
    "(req/s; CPU a request new/old: $cpu_median)"

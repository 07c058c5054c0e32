#!/usr/bin/env bash
# bench/slow_clients.sh — a normal client's service while slow clients hold connections:
# wsrun against Granian, hello world, one worker each.
#
# Rows (issue 17: with 10,000 slow connections against one worker, every normal request
# succeeds, p99 under 50 ms):
#   slowloris  slowhttptest -H: CONNS connections trickling their heads (a header line every
#              10 s), opened at RATE per second
#   slowbody   slowhttptest -B: CONNS connections trickling a declared 8 KiB body
# While the attack holds its connections, wrk -t1 -c8 --latency measures a normal client for
# DURATION s: req/s, p99 latency, non-2xx responses and socket errors. The server keeps its
# defaults (wsrun: the connection cap follows the open-file limit, and at the cap the oldest
# connection serving no request is closed for the new one).
#
# Environment (defaults in brackets):
#   CONNS [10000]  RATE [2000]  DURATION [10]  ROUNDS [1]  ROWS ["slowloris slowbody"]
#   SERVERS ["wsrun granian"]  BASE_PORT [18520]  SERVER_CPU [0]  CLIENT_CPU [1]
#   SKIP_INSTALL=1  SKIP_BUILD=1  WSRUN_BIN=path
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

CONNS="${CONNS:-10000}"
RATE="${RATE:-2000}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-1}"
ROWS="${ROWS:-slowloris slowbody}"
SERVERS="${SERVERS:-wsrun granian}"
BASE_PORT="${BASE_PORT:-18520}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"

make_work wsrun-slow      # RAW: server <TAB> row <TAB> round <TAB> req/s <TAB> p99 ms <TAB> note

install_tools() {
    apt_install_missing wrk=wrk slowhttptest=slowhttptest curl=curl
    ensure_venv_with granian
}

# Starts the attack of row $1 against port $2 in its own group; sets ATTACK_PID.
start_attack() {
    local row=$1 port=$2 mode
    case $row in slowloris) mode=-H ;; slowbody) mode=-B ;; *) die "unknown row $row" ;; esac
    # -l: long enough to outlast the ramp and the measurement; -x 24: header/body piece size.
    start_group "$WORK/attack-$row-$port.log" "${PIN_CLIENT[@]}" slowhttptest "$mode" \
        -c "$CONNS" -r "$RATE" -i 10 -s 8192 -x 24 -p 5 \
        -l $((CONNS / RATE + DURATION + 20)) -u "http://127.0.0.1:$port/"
    ATTACK_PID=$STARTED_PID
}

# wrk's p99 in ms from its --latency output on stdin ("" when absent).
p99_ms() {
    awk '$1 == "99%" {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
        printf "%.1f", v }'
}

bench_one() {
    local name=$1 row=$2 round=$3 port url out rps p99 note
    port=$BASE_PORT
    [[ $name == granian ]] && port=$((port + 1))
    [[ $row == slowbody ]] && port=$((port + 2))
    url="http://127.0.0.1:$port/"
    hello_server_cmd "$name" "$port"
    start_group "$WORK/$name-$row.log" "${PIN_SERVER[@]}" env RUST_BACKTRACE=0 "${CMD[@]}"
    local pid=$STARTED_PID got=""
    wait_port "$pid" "$port" && got=$(curl -sS --max-time 5 "$url" 2>&1 || true)
    if [[ $got != "Hello, world!" ]]; then
        log "$name did not answer (got: ${got:0:80})"
        printf '%s\t%s\t%s\t\t\tdid not answer\n' "$name" "$row" "$round" >>"$RAW"
        stop_server "$pid"
        return 0
    fi
    start_attack "$row" "$port"
    sleep $((CONNS / RATE + 3))  # the attack's connections are all open
    out=$(timeout --foreground $((DURATION + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c8 "-d${DURATION}s" \
        --timeout 5s --latency "$url" 2>&1) || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(p99_ms <<<"$out")
    note=$(wrk_note "$out")
    group_alive "$pid" || note="${note:+$note; }died during the run"
    stop_server "$ATTACK_PID"
    stop_server "$pid"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$row" "$round" "${rps:-0}" "${p99:-}" "$note" >>"$RAW"
    log "round $round  $row  $name: ${rps:-0} req/s, p99 ${p99:-?} ms ${note}"
}

main() {
    local started row name round report
    [[ ${SKIP_INSTALL:-} == 1 ]] || install_tools
    [[ ${SKIP_BUILD:-} == 1 ]] || cargo_build 0
    setup_pinning "slowhttptest and wrk"
    ulimit -n "$(ulimit -Hn)"
    started=$SECONDS
    for round in $(seq 1 "$ROUNDS"); do
        for row in $ROWS; do
            for name in $SERVERS; do bench_one "$name" "$row" "$round"; done
        done
    done
    mkdir -p "$RESULTS_DIR"
    report="$RESULTS_DIR/slow-clients-$(date -u +%Y%m%dT%H%M%SZ).md"
    {
        echo "# A normal client beside $CONNS slow connections (one worker)"
        echo
        echo "Machine: $(machine). Pinning: $PINNING. Normal client: wrk -t1 -c8, ${DURATION}s."
        echo
        echo "| server | row | round | normal req/s | p99 ms (target < 50) | errors |"
        echo "|---|---|---:|---:|---:|---|"
        awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, ($6 == "" ? "none" : $6) }' "$RAW"
        total_time $((SECONDS - started))
    } >"$report"
    show_report "$report"
}

main "$@"

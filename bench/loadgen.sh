#!/usr/bin/env bash
# bench/loadgen.sh — is `wsrun bench` fast enough to measure a server? Issue 15 asks for at
# least 0.9x the req/s of `wrk -t1` with the same connections against the same raw server.
#
# One hyper-hello (bench/hyper-hello, pinned to SERVER_CPU) is loaded in turn by
#   wrk          wrk -t1 -cC -dD http://127.0.0.1:PORT/
#   bench        wsrun bench -cC -dD --json --no-store (the hand-written HTTP/1.1 client)
#   hyper        loadgen/examples/hyper_client (the same loop on hyper's client::conn::http1)
# each pinned to CLIENT_CPU, rounds interleaved (wrk bench hyper, wrk bench hyper, ...) so the
# machine's drift lands on all three. The table: each round's req/s, the medians, and the
# median ratios bench/wrk and hyper/wrk.
#
# Environment (defaults in brackets):
#   DURATION [5]  ROUNDS [5]  CONNECTIONS [64]  PORT [18180]  SERVER_CPU [0]  CLIENT_CPU [1]
#   SKIP_BUILD=1  CLIENTS ["wrk bench hyper"]
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"
HYPER_BIN="${HYPER_BIN:-$TARGET_DIR/release/hyper-hello}"
HYPER_CLIENT="$TARGET_DIR/release/examples/hyper_client"

DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-5}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT="${PORT:-18180}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
CLIENTS="${CLIENTS:-wrk bench hyper}"

make_work wsrun-loadgen       # RAW: client <TAB> round <TAB> req/s
apt_install_missing wrk=wrk curl=curl
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "cargo build --release -p wsrun -p hyper-hello -p wsrun-loadgen --example hyper_client"
    (cd "$ROOT" && cargo build --release -p wsrun -p hyper-hello &&
        cargo build --release -p wsrun-loadgen --example hyper_client) >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "the build failed"; }
fi
setup_pinning "the client"

start_group "$WORK/server.log" "${PIN_SERVER[@]}" "$HYPER_BIN" --bind "127.0.0.1:$PORT"
SERVER=$STARTED_PID
wait_http "$SERVER" "$PORT" || die "hyper-hello did not answer on port $PORT"
URL="http://127.0.0.1:$PORT/"

# req/s of one client run, on stdout.
measure() {
    case $1 in
        wrk)
            "${PIN_CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" |
                awk '/^Requests\/sec:/ { print $2 }' ;;
        bench)
            "${PIN_CLIENT[@]}" "$WSRUN_BIN" bench "$URL" -c "$CONNECTIONS" -d "${DURATION}s" \
                --json --no-store | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_per_s"])' ;;
        hyper)
            "${PIN_CLIENT[@]}" "$HYPER_CLIENT" "$URL" "$CONNECTIONS" "$DURATION" |
                awk '{ print $4 }' ;;
    esac
}

START=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    for client in $CLIENTS; do
        rps=$(measure "$client")
        log "round $round $client: $rps req/s"
        printf '%s\t%s\t%s\n' "$client" "$round" "$rps" >>"$RAW"
    done
done
stop_server "$SERVER"

col() { awk -F'\t' -v c="$1" '$1 == c { print $3 }' "$RAW"; }
# Median over rounds of the per-round ratio $1/$2.
median_ratio() {
    join -t $'\t' <(awk -F'\t' -v c="$1" '$1 == c { print $2 "\t" $3 }' "$RAW" | sort) \
        <(awk -F'\t' -v c="$2" '$1 == c { print $2 "\t" $3 }' "$RAW" | sort) |
        awk -F'\t' '$3 > 0 { printf "%.3f\n", $2 / $3 }' | median 3
}

mkdir -p "$RESULTS_DIR"
REPORT="$RESULTS_DIR/loadgen-$(date +%Y%m%d_%H%M%S).md"
{
    echo "# wsrun bench vs wrk -t1 against hyper-hello"
    echo
    echo "Machine: $(machine); $PINNING; -c $CONNECTIONS, ${DURATION} s per run, $ROUNDS interleaved rounds."
    echo
    echo "| client | req/s per round | median |"
    echo "| --- | --- | --- |"
    for client in $CLIENTS; do
        echo "| $client | $(col "$client" | tr '\n' ' ')| $(col "$client" | median 1) |"
    done
    echo
    for client in $CLIENTS; do
        [[ $client == wrk ]] && continue
        echo "Median ratio $client/wrk (per round): $(median_ratio "$client" wrk) (issue 15 target >= 0.9)"
    done
    total_time $((SECONDS - START))
} >"$REPORT"
show_report "$REPORT"

#!/usr/bin/env bash
# bench/flood.sh — connection floods: attempts faster than the server accepts, every accepted
# connection held open and idle, while a probe sends one normal request every 250 ms on a
# fresh connection; wsrun against Granian, hello world, one worker each.
#
# Each round runs `wsrun bench URL --mode flood -c CONNS -d DURATION --json` (loadgen's flood
# mode: CONNS connection attempts kept in flight, accepted connections held until the end)
# against each server in turn (interleaved), and reports the attempts accepted, refused,
# reset and timed out (a full listen backlog drops the SYN), the most connections held at
# once, and the probe's failures and time to first byte (median and max). The servers keep
# their defaults (wsrun: listen backlog 1024, connection cap from the open-file limit, the
# oldest connection serving no request evicted at the cap).
#
# Environment (defaults in brackets):
#   CONNS [512]  DURATION [10]  ROUNDS [3]  SERVERS ["wsrun granian"]  BASE_PORT [18560]
#   SERVER_CPU [0]  CLIENT_CPU [1]  SKIP_INSTALL=1  SKIP_BUILD=1  WSRUN_BIN=path
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

CONNS="${CONNS:-512}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
SERVERS="${SERVERS:-wsrun granian}"
BASE_PORT="${BASE_PORT:-18560}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"

make_work wsrun-flood  # RAW: server <TAB> round <TAB> attempts <TAB> accepted <TAB> refused
#                        <TAB> reset <TAB> timed out <TAB> held max <TAB> probes <TAB> probe
#                        failures <TAB> probe ttfb median ms <TAB> max ms <TAB> note

install_tools() {
    apt_install_missing curl=curl
    ensure_venv_with granian
}

# The RAW columns from one `wsrun bench --json` line on stdin.
flood_columns() {
    python3 -c '
import json, sys
f = json.loads(sys.stdin.read().strip().splitlines()[-1])["flood"]
keys = ("attempts", "accepted", "refused", "reset", "timed_out", "held_max", "probes",
        "probe_failures")
print("\t".join(str(f[k]) for k in keys) + "\t%.2f\t%.2f" % (f["probe_ttfb_ms"][1], f["probe_ttfb_ms"][2]))'
}

bench_one() {
    local name=$1 round=$2 port url out cols note=""
    port=$BASE_PORT
    [[ $name == granian ]] && port=$((port + 1))
    url="http://127.0.0.1:$port/"
    hello_server_cmd "$name" "$port"
    start_group "$WORK/$name-$round.log" "${PIN_SERVER[@]}" env RUST_BACKTRACE=0 "${CMD[@]}"
    local pid=$STARTED_PID got=""
    wait_port "$pid" "$port" && got=$(curl -sS --max-time 5 "$url" 2>&1 || true)
    if [[ $got != "Hello, world!" ]]; then
        log "$name did not answer (got: ${got:0:80})"
        printf '%s\t%s\t\t\t\t\t\t\t\t\t\t\tdid not answer\n' "$name" "$round" >>"$RAW"
        stop_server "$pid"
        return 0
    fi
    out=$(timeout --foreground $((DURATION + 60)) "${PIN_CLIENT[@]}" "$WSRUN_BIN" bench "$url" \
        --mode flood -c "$CONNS" -d "${DURATION}s" --timeout 2s --json 2>"$WORK/bench-$name-$round.err") || true
    cols=$(flood_columns <<<"$out" 2>/dev/null) || { cols=$'\t\t\t\t\t\t\t\t\t'; note="no report"; }
    group_alive "$pid" || note="${note:+$note; }died during the run"
    stop_server "$pid"
    printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$cols" "$note" >>"$RAW"
    log "round $round  $name: $(tr '\t' ' ' <<<"$cols") $note"
}

main() {
    local started name round report
    [[ ${SKIP_INSTALL:-} == 1 ]] || install_tools
    [[ ${SKIP_BUILD:-} == 1 ]] || cargo_build 0
    setup_pinning "wsrun bench"
    ulimit -n "$(ulimit -Hn)"
    started=$SECONDS
    for round in $(seq 1 "$ROUNDS"); do
        for name in $SERVERS; do bench_one "$name" "$round"; done
    done
    mkdir -p "$RESULTS_DIR"
    report="$RESULTS_DIR/flood-$(date -u +%Y%m%dT%H%M%SZ).md"
    {
        echo "# A connection flood ($CONNS attempts in flight, accepted ones held) against one worker"
        echo
        echo "Machine: $(machine). Pinning: $PINNING. ${DURATION}s per run, $ROUNDS interleaved round(s)."
        echo
        echo "| server | round | attempts | accepted | refused | reset | timed out | held max | probes | probe failures | probe TTFB median ms | max ms | note |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        awk -F'\t' -v OFS=' | ' '{ $1 = $1; print "| " $0 " |" }' "$RAW"
        echo
        echo "Medians over rounds (probe failures, probe TTFB median ms):"
        for name in $SERVERS; do
            echo "- $name: $(awk -F'\t' -v n="$name" '$1 == n { print $10 }' "$RAW" | median) failures," \
                "$(awk -F'\t' -v n="$name" '$1 == n { print $11 }' "$RAW" | median) ms"
        done
        total_time $((SECONDS - started))
    } >"$report"
    show_report "$report"
}

main "$@"

#!/usr/bin/env bash
# bench/profile.sh — where a WSGI server's worker spends its CPU under load, by `perf`.
#
#   bash bench/profile.sh [SCENARIO] [SERVER ...]     # defaults: flask, "wsrun bjoern"
#
# For each server: start it with one worker on CPU 0 (as bench/core.sh does, same apps, same
# venv), load it with `wrk -t1 -c64` on CPU 1, and `perf record` the worker process for
# SECONDS seconds in the middle of the load. It prints the share of the worker's CPU by
# shared object (libpython, kernel, the server's own binary or extension, libc, ...) and,
# for wsrun, the server's own share grouped by crate (wsrun, hyper, tokio, http, allocator),
# then keeps the perf data in the work directory's report for `perf report -i FILE`.
# Issue 12's measure is the server's own share: the wsrun binary's samples (every Rust crate
# in it: wsrun, hyper, tokio, http, mimalloc, pyo3) over all of the worker's samples.
#
# The share moves by a point between runs of the same build on this shared machine (3.0%-4.9%
# for wsrun on flask, 2026-12-04), so ROUNDS=N repeats every server N times, interleaved, and
# ends with each server's own share per round and its median: quote the median.
#
# Environment: SECONDS_PROFILED [8]  WARMUP [2]  CONNECTIONS [64]  BASE_PORT [18180]
#   SERVER_CPU [0]  CLIENT_CPU [1]  WSRUN_BIN [target/release/wsrun]  ROUNDS [1]
# Needs: perf (linux-perf, or linux-tools-$(uname -r)), wrk, and bench/.venv from core.sh
# (run `bash bench/core.sh` once, or `SKIP_BUILD=1 SERVERS= bash bench/core.sh`).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"
PROFILED="${SECONDS_PROFILED:-8}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
BASE_PORT="${BASE_PORT:-18180}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
ROUNDS="${ROUNDS:-1}"

SCENARIO="${1:-flask}"
shift || true
SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(wsrun bjoern)

app_scenario "$SCENARIO"
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
[[ -x $VENV/bin/python ]] || die "no $VENV: run bash bench/core.sh once to make it"
SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
make_work wsrun-profile
setup_pinning wrk

# Sets CMD to serve $TARGET with server $1 on port $2.
server_cmd() {
    case $1 in
        wsrun) CMD=(env "PYTHONPATH=$SITE_PACKAGES" "$WSRUN_BIN" "$TARGET" --pythonpath "$APPS_DIR"
            --bind "127.0.0.1:$2" --workers 1) ;;
        bjoern) CMD=("$VENV/bin/python" "$BENCH_DIR/run_bjoern.py" "$TARGET" 127.0.0.1 "$2" "$APPS_DIR") ;;
        granian) CMD=("$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$2" --workers 1
            --log-level warning --working-dir "$APPS_DIR" "$TARGET") ;;
        *) die "unknown server $1 (known: wsrun bjoern granian)" ;;
    esac
}

# Share of samples by shared object, from `perf report --sort dso`.
by_dso() {
    perf report -i "$1" --no-children --sort dso -g none --percent-limit 0.5 2>/dev/null |
        awk '/%/ { printf "    %7s  %s\n", $1, $2 }'
}

# Share of the wsrun binary's samples by crate (the first path segment of the symbol).
by_crate() {
    perf report -i "$1" --no-children --dso wsrun --sort sym -g none 2>/dev/null |
        awk '/%/ && /\[\.\]/ {
            share = $1; sub("%", "", share)
            sym = $0; sub(/.*\[\.\] +/, "", sym); sub(/^<+/, "", sym)
            split(sym, part, /::| /); crate = part[1]
            if (crate ~ /^_*mi_/) crate = "mimalloc"
            total[crate] += share; all += share
        }
        END {
            for (c in total) printf "    %6.2f%%  %s\n", total[c], c | "sort -nr"
            close("sort -nr"); printf "    %6.2f%%  (the wsrun binary in all)\n", all
        }'
}

# The server's own share of the worker's samples: the wsrun binary, or bjoern's extension and
# libev, or Granian's extension.
own_share() {
    perf report -i "$1" --no-children --sort dso -g none 2>/dev/null |
        awk -v server="$2" '/%/ {
            share = $1; sub("%", "", share); dso = $2
            if ((server == "wsrun" && dso == "wsrun") ||
                (server == "bjoern" && (dso ~ /^_bjoern/ || dso ~ /^libev/)) ||
                (server == "granian" && dso ~ /^_granian/)) own += share
        }
        END { printf "%.2f", own }'
}

# Profiles server $1 on port $2 once and prints its report; appends its own share to
# $WORK/$1.shares.
profile_once() {
    local name=$1 port=$2 pid url load worker data
    server_cmd "$name" "$port"
    start_group "$WORK/$name.log" "${PIN_SERVER[@]}" "${CMD[@]}"
    pid=$STARTED_PID
    wait_port "$pid" "$port" || { tail -n 5 "$WORK/$name.log" >&2; die "$name did not start"; }
    url="http://127.0.0.1:$port$PATH_QUERY"
    "${PIN_CLIENT[@]}" wrk -t1 "-c$CONNECTIONS" "-d$((WARMUP + PROFILED + 2))s" "$url" \
        >"$WORK/$name.wrk" 2>&1 &
    load=$!
    sleep "$WARMUP"
    worker=$(busiest "$pid")
    data="$WORK/$name.perf"
    perf record -g -o "$data" -p "$worker" -- sleep "$PROFILED" >/dev/null 2>&1
    wait "$load" || true
    stop_server "$pid"
    echo "$name ($SCENARIO, worker pid $worker): $(awk '/^Requests\/sec:/ { print $2 }' "$WORK/$name.wrk") req/s under perf"
    by_dso "$data"
    if [[ $name == wsrun ]]; then
        echo "  the wsrun binary by crate (share of all the worker's samples):"
        by_crate "$data"
    fi
    own_share "$data" "$name" >>"$WORK/$name.shares"
    echo >>"$WORK/$name.shares"
    cp "$data" "${TMPDIR:-/tmp}/wsrun-profile-$name-$SCENARIO.perf"
    echo "  perf data: ${TMPDIR:-/tmp}/wsrun-profile-$name-$SCENARIO.perf"
}

# Every other round profiles the servers in reverse order, so that whatever favours the first
# (or last) run of a round does not favour one server.
for ((round = 1; round <= ROUNDS; round++)); do
    ((ROUNDS == 1)) || echo "== round $round of $ROUNDS"
    order=("${SERVERS[@]}")
    if ((round % 2 == 0)); then
        for ((i = ${#SERVERS[@]} - 1, j = 0; i >= 0; i--, j++)); do
            order[j]=${SERVERS[i]}
        done
    fi
    port=$BASE_PORT
    for name in "${order[@]}"; do
        port=$((port + 1))
        profile_once "$name" "$port"
    done
done

echo "the server's own share of its worker's samples, per round (median):"
for name in "${SERVERS[@]}"; do
    sort -n "$WORK/$name.shares" | awk -v name="$name" -v rounds="$(tr '\n' ' ' <"$WORK/$name.shares")" '
        { v[NR] = $1 }
        END {
            median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "  %-8s %5.2f%%   (%s)\n", name, median, rounds
        }'
done

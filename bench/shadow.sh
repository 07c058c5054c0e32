#!/usr/bin/env bash
# bench/shadow.sh — what shadowing costs the client: the migrate demo's `/api/v1/users/1`
# (Flask) with every GET mirrored to the `api_v2` component (examples/migrate/shadow.toml)
# against the same file without its [route.shadow] table.
#
# Interleaved rounds (off on, on off, off on, ...), each a fresh server (one worker) and
# `wrk -t1 -c8 -d DURATION --latency` (saturation), or with RATE set `wsrun bench --rate RATE`
# (a fixed arrival rate below saturation, latency counted from each request's intended send
# time, as a real service sees traffic); prints every round, then the medians of req/s and
# p99 for each mode and the on/off ratios, then what the shadow compared and why it skipped the
# rest (`wsrun migrate report`, all `on` rounds). Issue 18's bound: p99 with shadowing within
# 5% of off.
#
# MODES="off path on" adds a diagnostic third mode, `path`: the [route.shadow] table kept but
# with `methods = ["POST"]`, so the route takes the migration handler's path (hyper's, not the
# inline one) and mirrors nothing: on/path is then the shadow's own cost, path/off the path's.
#
# Environment (defaults in brackets): ROUNDS [5]  DURATION [5]  PORT [18640]  RATE [unset]
#   MODES ["off on"]  WSRUN_BIN [target/release/wsrun]. Needs wrk, Flask, and the built component
#   (examples/migrate/api_v2, see its README). Every server it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS="${ROUNDS:-5}"
MODES="${MODES:-off on}"
DURATION="${DURATION:-5}"
PORT="${PORT:-18640}"
WSRUN_BIN="${WSRUN_BIN:-$ROOT/target/release/wsrun}"
DEMO="$ROOT/examples/migrate"
URL="http://127.0.0.1:$PORT/api/v1/users/1"

command -v wrk >/dev/null || { echo "shadow.sh: needs wrk" >&2; exit 1; }
[[ -f $DEMO/api_v2/target/wasm32-wasip2/release/api_v2.wasm ]] ||
    { echo "shadow.sh: build examples/migrate/api_v2 first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/wsrun-shadow-bench.XXXXXX)
SERVER_PID=""
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# The demo's file with its paths made absolute, no access log, on PORT; `off` drops the shadow,
# `path` mirrors only POSTs (none are sent).
write_config() {
    local mode=$1 out=$WORK/$1.toml
    sed -e "s|^bind = .*|bind = \"127.0.0.1:$PORT\"|" \
        -e "s|^access_log = .*||" \
        -e "s|^state_dir = .*|state_dir = \"$WORK/state-$mode\"|" \
        -e "s|\"legacy\"|\"$DEMO/legacy\"|" \
        -e "s|\"api_v2/|\"$DEMO/api_v2/|" "$DEMO/shadow.toml" >"$out"
    if [[ $mode == off ]]; then
        python3 - "$out" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"  \[route\.shadow\]\n(  .*\n)*", "", text)
open(path, "w").write(text)
PY
    elif [[ $mode == path ]]; then
        sed -i 's|^  methods = .*|  methods = ["POST"]|' "$out"
    fi
}

run_round() {
    local mode=$1
    "$WSRUN_BIN" -c "$WORK/$mode.toml" --workers 1 >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$URL" && break
        sleep 0.1
    done
    wrk -t1 -c8 -d1 "$URL" >/dev/null # warm-up
    local out rps p99
    if [[ -n ${RATE:-} ]]; then
        out=$("$WSRUN_BIN" bench "$URL" --rate "$RATE" -c 8 -d "${DURATION}s" --json --no-store)
        read -r rps p99 < <(python3 -c 'import json, sys
r = json.load(sys.stdin)
print(r["requests_per_s"], r["latency_ms"]["p99"])' <<<"$out")
    else
        out=$(wrk -t1 -c8 -d"$DURATION" --latency "$URL")
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
    fi
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    printf '%s\t%s\t%s\n' "$mode" "$rps" "$p99" | tee -a "$WORK/raw.tsv"
}

for mode in $MODES; do
    write_config "$mode"
done
printf 'mode\treq/s\tp99_ms\n'
# Every other round runs the modes in reverse (off on, on off, ...), so that whatever favours
# the first (or last) server of a round does not favour one mode.
read -r -a FORWARD <<<"$MODES"
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${FORWARD[@]}")
    if ((round % 2 == 0)); then
        for ((i = ${#FORWARD[@]} - 1, j = 0; i >= 0; i--, j++)); do
            order[j]=${FORWARD[i]}
        done
    fi
    for mode in "${order[@]}"; do
        run_round "$mode"
    done
done
python3 - "$WORK/raw.tsv" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
med = {}
for mode in sorted({r[0] for r in rows}):
    rps = [float(r[1]) for r in rows if r[0] == mode]
    p99 = [float(r[2]) for r in rows if r[0] == mode]
    med[mode] = (statistics.median(rps), statistics.median(p99))
    print(f"median {mode}: {med[mode][0]:.0f} req/s, p99 {med[mode][1]:.2f} ms")
for a, b in (("on", "off"), ("path", "off"), ("on", "path")):
    if a in med and b in med:
        print(f"{a}/{b}: req/s x{med[a][0] / med[b][0]:.3f}, p99 x{med[a][1] / med[b][1]:.3f}")
PY
# What the shadow did over all `on` rounds (one store for them all), each round's 1 s
# saturating wrk warm-up included: compared, and the skips by reason (at saturation mostly
# `loop_busy`; with RATE below saturation the measured requests are all compared and the skips
# come from the warm-ups).
if [[ -d $WORK/state-on ]]; then
    "$WSRUN_BIN" migrate report --state-dir "$WORK/state-on" --json | python3 -c '
import json, sys
for r in json.load(sys.stdin)["routes"]:
    reasons = ", ".join(f"{k} {v}" for k, v in r.get("skipped_by_reason", {}).items())
    route, compared, skipped = r["route"], r["compared"], r["skipped"]
    print(f"on, all rounds with warm-ups, route {route}: compared {compared}, skipped {skipped} ({reasons})")'
fi

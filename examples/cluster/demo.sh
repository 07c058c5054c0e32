#!/usr/bin/env bash
# Three wsrun nodes sharing durable jobs through one PostgreSQL, no containers: starts a
# throw-away PostgreSQL (initdb into a temporary directory), three nodes on ports
# BASE_PORT..BASE_PORT+2 (put nginx or haproxy in front for one address: see README.md
# here), enqueues JOBS jobs through all three, kills node 3 with SIGKILL mid-run, and shows
# that every job was delivered (and which ones twice: only those node 3 had in flight).
#   bash examples/cluster/demo.sh      env: JOBS [900]  BASE_PORT [9001]  WSRUN_BIN
# Every wait is bounded (TIMEOUT s each [60]); exits non-zero if a job is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS="${JOBS:-900}"
BASE_PORT="${BASE_PORT:-9001}"
TIMEOUT="${TIMEOUT:-60}"
PG_BIN=$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | tail -n 1)")
WSRUN="${WSRUN_BIN:-$PWD/target/release/wsrun}"
[ -x "$WSRUN" ] || cargo build --release -p wsrun
WORK=$(mktemp -d /tmp/wsrun-cluster.XXXXXX)
chmod 755 "$WORK"
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres: "$WORK"; fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until "$@" succeeds, at most TIMEOUT s; fails the demo with $WHAT otherwise.
wait_until() {
    local deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out after $TIMEOUT s: $WHAT (logs: $WORK, kept)" >&2
            trap - EXIT
            exit 1
        fi
        sleep 0.1
    done
}
port() { echo $((BASE_PORT + $1 - 1)); }
up() { curl -fs "http://127.0.0.1:$(port "$1")/" >/dev/null; }
distinct() { cut -d' ' -f1 "$WORK/deliveries" 2>/dev/null | sort -u | wc -l; }
node3_delivered() { [ "$(grep -c ' node3$' "$WORK/deliveries" 2>/dev/null || true)" -ge 20 ]; }
all_delivered() { [ "$(distinct)" -ge "$JOBS" ]; }

# Below the ephemeral range (32768 and up on Linux), where client connections take ports,
# and never one of the nodes' ports.
PG_PORT=$((10000 + RANDOM % 20000))
while [ "$PG_PORT" -ge "$BASE_PORT" ] && [ "$PG_PORT" -le $((BASE_PORT + 2)) ]; do
    PG_PORT=$((10000 + RANDOM % 20000))
done
"${as_pg[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
    -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1" >/dev/null
URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "PostgreSQL at $URL"

for i in 1 2 3; do
    CLUSTER_LOG="$WORK/deliveries" CLUSTER_NODE="node$i" setsid "$WSRUN" \
        --pythonpath examples/cluster app:app --bind "127.0.0.1:$(port $i)" \
        --node "node$i" --jobs-backend "$URL" --state-dir "$WORK/state$i" \
        >"$WORK/node$i.log" 2>&1 &
    PIDS+=($!)
    disown  # no "Killed" line from the shell for node 3
done
for i in 1 2 3; do WHAT="node$i to answer" wait_until up $i; done
echo "3 nodes up on 127.0.0.1:$(port 1)-$(port 3); enqueueing $JOBS jobs through all of them"
for ((n = 0; n < JOBS / 100; n++)); do
    curl -fs "http://127.0.0.1:$(port $((n % 3 + 1)))/enqueue?n=100" >/dev/null
done
WHAT="node3 to deliver some jobs" wait_until node3_delivered
echo "node3 has delivered some; kill -9 node3 (master and workers)"
kill -9 -- "-${PIDS[2]}"
WHAT="every job to be delivered ($(distinct) so far)" wait_until all_delivered
echo "delivered: $(distinct) of $JOBS distinct jobs"
echo "by node:  $(cut -d' ' -f2 "$WORK/deliveries" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
echo "twice:     $(cut -d' ' -f1 "$WORK/deliveries" | sort | uniq -d | wc -l) (jobs node3 had in flight)"
"$WSRUN" jobs list --jobs-backend "$URL" --limit 3 | grep '^jobs:'

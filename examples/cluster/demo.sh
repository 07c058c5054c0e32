#!/usr/bin/env bash
# Three wsrun nodes sharing durable jobs through one PostgreSQL, no containers: starts a
# throw-away PostgreSQL (initdb into a temporary directory), three nodes on ports 9001-9003
# (put nginx or haproxy in front for one address: see README.md here), enqueues JOBS jobs
# through all three, kills node 3 with SIGKILL mid-run, and shows that every job was delivered
# (and which ones twice: only those node 3 had in flight).
#   bash examples/cluster/demo.sh            JOBS=900 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS="${JOBS:-900}"
PG_BIN=$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | tail -n 1)")
WSRUN="${WSRUN_BIN:-$PWD/target/release/wsrun}"
[ -x "$WSRUN" ] || cargo build --release -p wsrun
WORK=$(mktemp -d /tmp/wsrun-cluster.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres: "$WORK"; fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$((20000 + RANDOM % 20000))
"${as_pg[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1" >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "PostgreSQL at $URL"

for i in 1 2 3; do
    CLUSTER_LOG="$WORK/deliveries" CLUSTER_NODE="node$i" setsid "$WSRUN" \
        --pythonpath examples/cluster app:app --bind "127.0.0.1:900$i" \
        --node "node$i" --jobs-backend "$URL" --state-dir "$WORK/state$i" \
        >"$WORK/node$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3; do
    until curl -fs "http://127.0.0.1:900$i/" >/dev/null; do sleep 0.2; done
done
echo "3 nodes up on 127.0.0.1:9001-9003; enqueueing $JOBS jobs through all of them"
for ((n = 0; n < JOBS / 100; n++)); do
    curl -fs "http://127.0.0.1:900$((n % 3 + 1))/enqueue?n=100" >/dev/null
done
until [ "$(grep -c node3 "$WORK/deliveries" 2>/dev/null || true)" -ge 20 ]; do sleep 0.05; done
echo "node3 has delivered some; kill -9 node3 (master and workers)"
kill -9 -- "-${PIDS[2]}"
deadline=$((SECONDS + 60))
while [ "$(cut -d' ' -f1 "$WORK/deliveries" | sort -u | wc -l)" -lt "$JOBS" ]; do
    [ $SECONDS -lt $deadline ] || { echo "not all delivered within 60 s" >&2; exit 1; }
    sleep 0.2
done
echo "delivered: $(cut -d' ' -f1 "$WORK/deliveries" | sort -u | wc -l) of $JOBS distinct jobs"
echo "by node:   $(cut -d' ' -f2 "$WORK/deliveries" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
echo "twice:     $(cut -d' ' -f1 "$WORK/deliveries" | sort | uniq -d | wc -l) (jobs node3 had in flight)"
"$WSRUN" jobs list --jobs-backend "$URL" --limit 3

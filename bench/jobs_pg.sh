#!/usr/bin/env bash
# bench/jobs_pg.sh — durable jobs across nodes: the PostgreSQL store with 3 nodes against the
# SQLite store on one node (delivered jobs/s end to end; enqueue p99 at 1,000 enqueues/s).
#
#   bash bench/jobs_pg.sh [--quick]
#
# Starts its own PostgreSQL (initdb into a temporary directory, fsync on) and the nodes
# (bench/apps/jobs_bench.py, one worker each); see bench/jobs_pg.py for what is measured.
# Environment (defaults in brackets): ROUNDS [3]  JOBS [6000]  RATE [1000]  PACED_S [5]
#   CLIENTS [32]  THREADS [16]  ENQUEUE [http|burst]  BURSTS [1]  SYNC_COMMIT [on]  PG_SLOW_MS
#   (see bench/jobs_pg.py)
#   NODES [3]  SKIP_BUILD=1  WSRUN_BIN=path
#   --quick: ROUNDS=1 JOBS=1500 PACED_S=2 unless set (a smoke test)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
case ${1:-} in
    "") ;;
    --quick) export ROUNDS="${ROUNDS:-1}" JOBS="${JOBS:-1500}" PACED_S="${PACED_S:-2}" ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
if ! command -v initdb >/dev/null; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1)
    [ -n "$PG_BIN" ] || { echo "no initdb: apt-get install postgresql" >&2; exit 1; }
    export PATH="$PATH:$PG_BIN"
fi
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p wsrun -q)
fi
exec python3 "$BENCH_DIR/jobs_pg.py"

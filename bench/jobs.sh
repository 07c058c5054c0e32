#!/usr/bin/env bash
# bench/jobs.sh — the durable-jobs benchmark: what wsrun.enqueue adds to a request, and how
# many durable jobs per second one worker writes and delivers.
#
#   bash bench/jobs.sh [--quick]
#
# wsrun serves bench/apps/jobs_bench.py with one worker (--workers 1), from a wsrun.toml with
# a fresh [server] state_dir (so a fresh jobs.sqlite3 journal) every round; server pinned to
# CPU 0, wrk to CPU 1. Each round: start, check /plain and /enqueue answer 200 and the probe
# job arrives, warm up (WARMUP s of /plain, WARMUP s of /enqueue, drain, /reset), then
#   plain     wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency /plain     (hello world)
#   enqueue   the same on /enqueue (hello world after wsrun.enqueue("/sink", body=b"x"));
#             right after wrk, /stats gives the jobs written and delivered so far and the
#             in-app enqueue() call p50/p99; then /stats is polled until every job has been
#             delivered (at most DRAIN_TIMEOUT s), and the journal is checked for leftovers.
# Odd rounds run plain first, even rounds enqueue first (after its drain). Latency
# differences are taken within a round, then the median over rounds is shown. The worker's
# /proc/PID/task/*/schedstat is read around each run: CPU time per request (for /enqueue per
# job: its request and its delivery, up to the last delivery) does not depend on how fast wrk
# or the other tenants of CPU 0 are, and the run-queue wait shows how much they took.
# Last in each round, one /burst?n=BURST_JOBS request writes a backlog in a loop of enqueue()
# calls, and its delivery rate is measured with nothing else running (from /burst's answer to
# the last delivery).
# The report (bench/results/jobs-<date>.md) and the raw rows (jobs-<date>.tsv) are kept.
#
# Environment (defaults in brackets):
#   DURATION [6]  ROUNDS [3]  WARMUP [1]  CONNECTIONS [16]  DRAIN_TIMEOUT [120]
#   BURST_JOBS [5000]  jobs one /burst request writes for the drain rate (0: skip that step)
#   BASE_PORT [18280]  SERVER_CPU [0]  CLIENT_CPU [1]
#   JOBS_CONCURRENCY  when set, written as [jobs] concurrency (else wsrun's default, 8)
#   WSRUN_ARGS  extra arguments appended to wsrun's command line
#   SKIP_INSTALL=1  SKIP_BUILD=1  WSRUN_BIN=path
#   --quick: ROUNDS=1 DURATION=2 unless set (a smoke test, ~15 s)
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

case ${1:-} in
    "") ;;
    --quick)
        ROUNDS="${ROUNDS:-1}"
        DURATION="${DURATION:-2}"
        ;;
    -h | --help | help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bash bench/jobs.sh [--quick]   (bash bench/jobs.sh --help for details)" >&2
        exit 2
        ;;
esac

DURATION="${DURATION:-6}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-16}"
BURST_JOBS="${BURST_JOBS:-5000}"
DRAIN_TIMEOUT="${DRAIN_TIMEOUT:-120}"
BASE_PORT="${BASE_PORT:-18280}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
JOBS_CONCURRENCY="${JOBS_CONCURRENCY:-}"
read -r -a WSRUN_EXTRA <<<"${WSRUN_ARGS:-}"
PORT=$((BASE_PORT + 1))
URL="http://127.0.0.1:$PORT"
HELLO_TEXT="Hello, world!"
TAB=$'\t'

make_work wsrun-jobs-bench
# RAW: one row per measured run, the columns of RAW_HEADER (tab-separated).
RAW_HEADER="round	route	req_s	p50_ms	p99_ms	non2xx	socket_errors	requests	cpu_s	runq_wait_s	cpu_us_per_req	enqueue_p50_us	enqueue_p99_us	enqueue_max_us	enqueue_mean_us	enqueue_busy_pct	enqueued	enqueue_errors	delivered_in_load	backlog	load_s	delivered	duplicates	retries	drain_s	window_s	written_per_s	delivered_in_load_per_s	drain_per_s	delivered_per_s	journal_jobs	dead_jobs	note"

# --- setup ------------------------------------------------------------------------------------

install_tools() { apt_install_missing wrk=wrk curl=curl procps=pgrep python3=python3; }

# wsrun answers /enqueue with 200 once its services are in (before: a 500, AttributeError).
check_wsrun() {
    [[ -x $WSRUN_BIN ]] || die "no wsrun binary at $WSRUN_BIN"
    VERSION[wsrun]=$("$WSRUN_BIN" --version 2>/dev/null | head -n1 || true)
}

# --- wrk and /stats ---------------------------------------------------------------------------

# wrk's report on stdin -> "req/s<TAB>p50 ms<TAB>p99 ms<TAB>non-2xx<TAB>socket errors<TAB>requests"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            if (v ~ /m$/) return v * 60000
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errs = $4 + $6 + $8 + $10 }
        / requests in / { reqs = $1 }
        END { printf "%s\t%s\t%s\t%d\t%d\t%d\n", (rps == "" ? 0 : rps), p50, p99, non2xx, errs, reqs }'
}

# wrk -t1 -c$CONNECTIONS for $1 s against $2, client-pinned; prints parse_wrk's line + note.
run_wrk() {
    local secs=$1 url=$2 out
    out=$(timeout --foreground $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t1 "-c$CONNECTIONS" "-d${secs}s" \
        --timeout 5s --latency "$url" 2>&1) || true
    printf '%s\t%s\n' "$(parse_wrk <<<"$out")" "$(wrk_note "$out")"
}

# "cpu_ns<TAB>runqueue_wait_ns" summed over the threads of process $1 (/proc/PID/task/*/schedstat:
# time on a CPU, time runnable but waiting for one); "0<TAB>0" if it is gone.
sched_ns() {
    cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ c += $1; w += $2 } END { printf "%.0f\t%.0f\n", c, w }'
}

# "cpu s<TAB>run-queue wait s<TAB>cpu µs per unit" between sched_ns snapshots $1 and $2, over $3 units.
sched_delta() {
    awk -F'\t' -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
        split(a, x, "\t"); split(b, y, "\t"); c = y[1] - x[1]; w = y[2] - x[2]
        printf "%.3f\t%.3f\t%s\n", c / 1e9, w / 1e9, (n > 0 ? sprintf("%.1f", c / n / 1000) : "n/a") }'
}

# The app's /stats JSON on one line (empty if it did not answer in 10 s).
get_stats() { curl -sS --max-time 10 "$URL/stats" 2>/dev/null || true; }

# Number field $2 of the /stats JSON $1 (json.dumps' "key": value form).
field() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" <<<"$1"; }

# awk arithmetic on named values: calc 'expr' a=1 b=2; "n/a" when the result would divide by 0.
calc() {
    local expr=$1
    shift
    local args=() kv
    for kv in "$@"; do args+=(-v "$kv"); done
    awk "${args[@]}" "BEGIN { $expr }"
}

# Poll /stats every 0.2 s until deliveries >= enqueued, at most $1 s; prints the last /stats
# (or nothing) and fails on a timeout or a dead server.
wait_drained() {
    local limit=$1 deadline stats enq del
    deadline=$((SECONDS + limit))
    while :; do
        stats=$(get_stats)
        enq=$(field "$stats" enqueued)
        del=$(field "$stats" deliveries)
        if [[ -n $enq && -n $del ]] && ((del >= enq)); then
            printf '%s' "$stats"
            return 0
        fi
        if ((SECONDS >= deadline)) || ! group_alive "$SERVER_PID"; then
            printf '%s' "$stats"
            return 1
        fi
        sleep 0.2
    done
}

# "jobs<TAB>dead_jobs" rows in the journal $1 (read-only), or "?<TAB>?".
journal_counts() {
    python3 - "$1" <<'EOF' 2>/dev/null || printf '?\t?\n'
import sqlite3
import sys

con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
jobs = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
dead = con.execute("SELECT count(*) FROM dead_jobs").fetchone()[0]
print(f"{jobs}\t{dead}")
EOF
}

# Journal counts once the finished jobs' deletes are committed (at most 5 s of waiting).
journal_settled() {
    local journal=$1 counts i
    for ((i = 0; i < 25; i++)); do
        counts=$(journal_counts "$journal")
        [[ ${counts%%"$TAB"*} == 0 ]] && break
        sleep 0.2
    done
    printf '%s' "$counts"
}

# Append the arguments to RAW as one tab-separated row (an argument may hold tabs itself).
raw_row() { (IFS=$TAB; echo "$*") >>"$RAW"; }

# --- one round --------------------------------------------------------------------------------

# Write the config of round $1 (fresh state_dir) and print its path.
write_config() {
    local round=$1 cfg="$WORK/wsrun-$1.toml"
    mkdir -p "$WORK/state-$round"
    {
        echo "# Generated by bench/jobs.sh, round $round."
        echo "[server]"
        echo "state_dir = \"$WORK/state-$round\""
        if [[ -n $JOBS_CONCURRENCY ]]; then
            echo
            echo "[jobs]"
            echo "concurrency = $JOBS_CONCURRENCY"
        fi
        echo
        echo "[[route]]"
        echo "prefix = \"/\""
        echo "python = \"jobs_bench:app\""
    } >"$cfg"
    printf '%s' "$cfg"
}

# Start wsrun for round $1, check it, warm it up; sets SERVER_PID and JOURNAL.
start_wsrun() {
    local round=$1 cfg code log="$WORK/wsrun-$1.log"
    cfg=$(write_config "$round")
    JOURNAL="$WORK/state-$round/jobs.sqlite3"
    start_group "$log" "${PIN_SERVER[@]}" env RUST_BACKTRACE=0 "$WSRUN_BIN" -c "$cfg" \
        --pythonpath "$APPS_DIR" --bind "127.0.0.1:$PORT" --workers 1 "${WSRUN_EXTRA[@]}"
    SERVER_PID=$STARTED_PID
    if ! wait_http "$SERVER_PID" "$PORT"; then
        tail -n 10 "$log" >&2 || true
        die "wsrun did not answer on $PORT"
    fi
    # The worker process (the newest child of the supervisor, if there is one) runs Python, the
    # journal thread and the dispatcher: its schedstat is the server's CPU time.
    WORKER_PID=$(pgrep -n -P "$SERVER_PID" 2>/dev/null || echo "$SERVER_PID")
    code=$(curl -sS --max-time 5 -o "$WORK/answer" -w '%{http_code}' "$URL/plain") || true
    if [[ $code != 200 ]] || ! grep -qF "$HELLO_TEXT" "$WORK/answer"; then
        tail -n 10 "$log" >&2
        die "/plain answered HTTP $code: $(head -c 80 "$WORK/answer")"
    fi
    code=$(curl -sS --max-time 5 -o "$WORK/answer" -w '%{http_code}' "$URL/enqueue") || true
    if [[ $code != 200 ]]; then
        tail -n 10 "$log" >&2
        die "/enqueue answered HTTP $code (a 500 with AttributeError on wsrun.enqueue means this" \
            "wsrun has no durable jobs yet): $(head -c 120 "$WORK/answer")"
    fi
    wait_drained 10 >/dev/null || die "the probe job was not delivered to /sink within 10 s"
    # Warm-up: both routes, then let the warm-up jobs drain and forget all of it.
    run_wrk "$WARMUP" "$URL/plain" >/dev/null
    run_wrk "$WARMUP" "$URL/enqueue" >/dev/null
    wait_drained "$DRAIN_TIMEOUT" >/dev/null ||
        die "the warm-up jobs were not all delivered within $DRAIN_TIMEOUT s: $(get_stats)"
    curl -sS --max-time 5 -o /dev/null "$URL/reset" || die "/reset failed"
}

# Measure /plain in round $1; appends a row to RAW.
measure_plain() {
    local round=$1 result note t0 t1 sched
    t0=$(sched_ns "$WORKER_PID")
    result=$(run_wrk "$DURATION" "$URL/plain")
    t1=$(sched_ns "$WORKER_PID")
    sched=$(sched_delta "$t0" "$t1" "$(cut -f6 <<<"$result")")
    note=$(cut -f7 <<<"$result")
    group_alive "$SERVER_PID" || note="${note:+$note; }wsrun died during the run"
    # The enqueue columns (12-32) stay empty.
    raw_row "$round" plain "$(cut -f1-6 <<<"$result")" "$sched" \
        "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "$note"
    log "round $round /plain:   $(cut -f1 <<<"$result") req/s, p50 $(cut -f2 <<<"$result") ms," \
        "p99 $(cut -f3 <<<"$result") ms; CPU $(cut -f3 <<<"$sched") µs/req, run-queue wait $(cut -f2 <<<"$sched") s${note:+ ($note)}"
}

# Measure /enqueue in round $1, then wait for the backlog to drain; appends a row to RAW.
measure_enqueue() {
    local round=$1 result note s1 s2 drained=1 jc t0 t1
    t0=$(sched_ns "$WORKER_PID")
    result=$(run_wrk "$DURATION" "$URL/enqueue")
    note=$(cut -f7 <<<"$result")
    s1=$(get_stats)
    [[ -n $s1 ]] || note="${note:+$note; }/stats did not answer after the load"
    s2=$(wait_drained "$DRAIN_TIMEOUT") || drained=0
    t1=$(sched_ns "$WORKER_PID")
    ((drained)) || note="${note:+$note; }not drained after $DRAIN_TIMEOUT s"
    group_alive "$SERVER_PID" || note="${note:+$note; }wsrun died during the run"
    jc=$(journal_settled "$JOURNAL")
    local enq enq_err enq_ns del_load now1 first_enq last_enq del dup retr last_del
    enq=$(field "$s2" enqueued)
    enq_err=$(field "$s2" enqueue_errors)
    enq_ns=$(field "$s2" enqueue_ns)
    del_load=$(field "$s1" deliveries)
    now1=$(field "$s1" now_ns)
    first_enq=$(field "$s2" first_enqueue_ns)
    last_enq=$(field "$s2" last_enqueue_ns)
    del=$(field "$s2" deliveries)
    dup=$(field "$s2" duplicates)
    retr=$(field "$s2" retries)
    last_del=$(field "$s2" last_delivery_ns)
    local backlog load_s drain_s window_s written_ps load_ps drain_ps deliv_ps busy sched
    backlog=$(calc 'print e - d' "e=${enq:-0}" "d=${del_load:-0}")
    load_s=$(calc 'printf "%.3f", (l - f) / 1e9' "l=${last_enq:-0}" "f=${first_enq:-0}")
    drain_s=$(calc 'x = (l - n) / 1e9; printf "%.3f", (x > 0 ? x : 0)' "l=${last_del:-0}" "n=${now1:-0}")
    window_s=$(calc 'printf "%.3f", (l - f) / 1e9' "l=${last_del:-0}" "f=${first_enq:-0}")
    written_ps=$(calc 'if (s > 0) printf "%.0f", e / s; else print "n/a"' "e=${enq:-0}" "s=$load_s")
    load_ps=$(calc 'if (s > 0) printf "%.0f", d / s; else print "n/a"' "d=${del_load:-0}" "s=$load_s")
    drain_ps=$(calc 'if (b > 0 && s > 0) printf "%.0f", b / s; else print "n/a"' "b=$backlog" "s=$drain_s")
    deliv_ps=$(calc 'if (s > 0) printf "%.0f", d / s; else print "n/a"' "d=${del:-0}" "s=$window_s")
    busy=$(calc 'if (s > 0) printf "%.1f", t / 1e9 / s * 100; else print "n/a"' "t=${enq_ns:-0}" "s=$load_s")
    # CPU per job: its request and its delivery (the span ends when the last job is delivered).
    sched=$(sched_delta "$t0" "$t1" "${enq:-0}")
    ((${enq_err:-0} == 0)) || note="${note:+$note; }${enq_err} enqueue() calls raised"
    ((${dup:-0} == 0)) || note="${note:+$note; }${dup} duplicate deliveries"
    [[ ${jc%%"$TAB"*} == 0 ]] || note="${note:+$note; }${jc%%"$TAB"*} jobs left in the journal"
    [[ ${jc##*"$TAB"} == 0 ]] || note="${note:+$note; }${jc##*"$TAB"} dead jobs"
    raw_row "$round" enqueue "$(cut -f1-6 <<<"$result")" "$sched" \
        "$(field "$s1" enqueue_p50_us)" "$(field "$s1" enqueue_p99_us)" "$(field "$s1" enqueue_max_us)" \
        "$(field "$s1" enqueue_mean_us)" "$busy" \
        "$enq" "$enq_err" "$del_load" "$backlog" "$load_s" "$del" "$dup" "$retr" "$drain_s" \
        "$window_s" "$written_ps" "$load_ps" "$drain_ps" "$deliv_ps" "$jc" "$note"
    log "round $round /enqueue: $(cut -f1 <<<"$result") req/s, p50 $(cut -f2 <<<"$result") ms," \
        "p99 $(cut -f3 <<<"$result") ms; enqueue() p50 $(field "$s1" enqueue_p50_us) µs, $busy % of the load in enqueue();" \
        "$enq jobs, $del_load delivered during the load, backlog $backlog drained in $drain_s s;" \
        "$deliv_ps jobs/s end to end; CPU $(cut -f3 <<<"$sched") µs/job, run-queue wait $(cut -f2 <<<"$sched") s${note:+ ($note)}"
    curl -sS --max-time 5 -o /dev/null "$URL/reset" || true
}

# A backlog of BURST_JOBS jobs written by one /burst request in round $1, then delivered with
# nothing else running; appends a "burst" row to RAW (column 3: jobs delivered/s from the
# backlog; CPU per job counts the deliveries only).
measure_burst() {
    local round=$1 note="" code s2 drained=1 jc t0 t1 sched
    code=$(curl -sS --max-time 120 -o "$WORK/answer" -w '%{http_code}' "$URL/burst?n=$BURST_JOBS") || true
    t0=$(sched_ns "$WORKER_PID")
    [[ $code == 200 ]] || note="/burst answered HTTP $code: $(head -c 80 "$WORK/answer")"
    s2=$(wait_drained "$DRAIN_TIMEOUT") || drained=0
    t1=$(sched_ns "$WORKER_PID")
    ((drained)) || note="${note:+$note; }not drained after $DRAIN_TIMEOUT s"
    group_alive "$SERVER_PID" || note="${note:+$note; }wsrun died during the run"
    jc=$(journal_settled "$JOURNAL")
    local enq del at_end dup retr burst_end last_del backlog drain_s drain_ps
    enq=$(field "$s2" enqueued)
    del=$(field "$s2" deliveries)
    at_end=$(field "$s2" delivered_at_burst_end)
    dup=$(field "$s2" duplicates)
    retr=$(field "$s2" retries)
    burst_end=$(field "$s2" burst_end_ns)
    last_del=$(field "$s2" last_delivery_ns)
    backlog=$(calc 'print e - d' "e=${enq:-0}" "d=${at_end:-0}")
    drain_s=$(calc 'x = (l - b) / 1e9; printf "%.3f", (x > 0 ? x : 0)' "l=${last_del:-0}" "b=${burst_end:-0}")
    drain_ps=$(calc 'if (n > 0 && s > 0) printf "%.0f", n / s; else print "n/a"' "n=$((${del:-0} - ${at_end:-0}))" "s=$drain_s")
    sched=$(sched_delta "$t0" "$t1" "$((${del:-0} - ${at_end:-0}))")
    ((${dup:-0} == 0)) || note="${note:+$note; }${dup} duplicate deliveries"
    [[ ${jc%%"$TAB"*} == 0 ]] || note="${note:+$note; }${jc%%"$TAB"*} jobs left in the journal"
    [[ ${jc##*"$TAB"} == 0 ]] || note="${note:+$note; }${jc##*"$TAB"} dead jobs"
    raw_row "$round" burst "${drain_ps/n\/a/0}" "" "" 0 0 "" "$sched" \
        "$(field "$s2" enqueue_p50_us)" "$(field "$s2" enqueue_p99_us)" "$(field "$s2" enqueue_max_us)" \
        "$(field "$s2" enqueue_mean_us)" "" "$enq" "$(field "$s2" enqueue_errors)" "$at_end" "$backlog" "" \
        "$del" "$dup" "$retr" "$drain_s" "" "" "" "$drain_ps" "" "$jc" "$note"
    log "round $round /burst:   $enq jobs written by one request, $at_end delivered before it answered;" \
        "backlog $backlog delivered in $drain_s s = $drain_ps jobs/s; CPU $(cut -f3 <<<"$sched") µs/delivery," \
        "run-queue wait $(cut -f2 <<<"$sched") s${note:+ ($note)}"
    curl -sS --max-time 5 -o /dev/null "$URL/reset" || true
}

# --- report -----------------------------------------------------------------------------------

# Median of column $2 over the rows of route $1 that have a number there.
med() {
    awk -F'\t' -v r="$1" -v c="$2" '$2 == r && $c != "" && $c != "n/a" && $3 > 0 { print $c }' "$RAW" | median 3
}

# "v1 / v2 / ..." of column $2 for route $1, printf format $3.
per_round() {
    awk -F'\t' -v r="$1" -v c="$2" -v f="$3" '$2 == r { printf "%s" f, sep, ($c == "" || $c == "n/a" ? "-" : $c); sep = " / " }' "$RAW"
}

# Median over rounds of (enqueue column $1 - plain column $1), both from the same round.
med_diff() {
    awk -F'\t' -v c="$1" '$3 > 0 { v[$1 "," $2] = $c; rounds[$1] = 1 }
        END { for (r in rounds) if ((r ",plain") in v && (r ",enqueue") in v) print v[r ",enqueue"] - v[r ",plain"] }' "$RAW" | median 3
}

# Median over rounds of enqueue column $1 / plain column $1.
med_ratio() {
    awk -F'\t' -v c="$1" '$3 > 0 { v[$1 "," $2] = $c; rounds[$1] = 1 }
        END { for (r in rounds) if (v[r ",plain"] > 0 && (r ",enqueue") in v) printf "%.4f\n", v[r ",enqueue"] / v[r ",plain"] }' "$RAW" | median 4
}

# shellcheck disable=SC2059  # the format is the caller's
fmt() { if [[ -z $2 || $2 == n/a ]]; then echo n/a; else printf "$1" "$2"; fi; }

report() {
    local elapsed=$1 report tsv stamp sum_lost sum_dup sum_retr sum_err sum_left sum_dead fails
    mkdir -p "$RESULTS_DIR"
    stamp=$(date +%Y-%m-%d_%H%M%S)
    report="$RESULTS_DIR/jobs-$stamp.md"
    tsv="$RESULTS_DIR/jobs-$stamp.tsv"
    { echo "$RAW_HEADER"; cat "$RAW"; } >"$tsv"
    sums() { awk -F'\t' -v c="$1" '$2 != "plain" && $c ~ /^[0-9]+$/ { n += $c } END { print n + 0 }' "$RAW"; }
    # Not delivered: jobs written minus distinct jobs delivered.
    sum_lost=$(awk -F'\t' '$2 != "plain" { d = $22 - $23; if ($17 > d) n += $17 - d } END { print n + 0 }' "$RAW")
    sum_dup=$(sums 23)
    sum_retr=$(sums 24)
    sum_err=$(sums 18)
    sum_left=$(sums 31)
    sum_dead=$(sums 32)
    fails=$(awk -F'\t' '{ n += $6 + $7; if ($3 == 0) n++ } END { print n + 0 }' "$RAW")
    {
        echo "# wsrun durable jobs benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
        echo
        echo "Machine: $(machine);" \
            "$PINNING. wsrun --workers 1 serving bench/apps/jobs_bench.py," \
            "[jobs] concurrency ${JOBS_CONCURRENCY:-8 (default)}, a fresh state_dir per round." \
            "wrk -t1 -c$CONNECTIONS --latency, ${DURATION} s per run, $ROUNDS round(s)" \
            "(plain/enqueue order alternating), medians over rounds; loopback."
        echo
        echo "- wsrun: ${VERSION[wsrun]}${WSRUN_EXTRA[*]:+ (WSRUN_ARGS: ${WSRUN_EXTRA[*]})}"
        echo
        echo "| round | route | req/s | p50 ms | p99 ms | worker CPU µs/req | run-queue wait s | enqueue() p50 / p99 / max µs | jobs written | delivered during load | backlog | drain s | notes |"
        echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"
        awk -F'\t' '{
            enq = ($2 != "plain") ? sprintf("%s / %s / %s", $12, $13, $14) : ""
            if ($2 == "burst")
                printf "| %s | /burst?n=%s | | | | %s per delivery | %s | %s | %s | %s | %s | %s | %s |\n", $1, $17, $11, $10, enq, $17, $19, $20, $25, $33
            else
                printf "| %s | /%s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $11, $10, enq, $17, $19, $20, $25, $33
        }' "$RAW"
        echo
        echo "| request | /plain | /enqueue | enqueue adds | rounds (plain ; enqueue) |"
        echo "| --- | ---: | ---: | ---: | --- |"
        printf '| req/s (median) | %s | %s | x%s | %s ; %s |\n' \
            "$(fmt %.0f "$(med plain 3)")" "$(fmt %.0f "$(med enqueue 3)")" "$(fmt %.3f "$(med_ratio 3)")" \
            "$(per_round plain 3 %s)" "$(per_round enqueue 3 %s)"
        printf '| p50 ms (median) | %s | %s | %s ms | %s ; %s |\n' \
            "$(fmt %.3f "$(med plain 4)")" "$(fmt %.3f "$(med enqueue 4)")" "$(fmt %+.3f "$(med_diff 4)")" \
            "$(per_round plain 4 %s)" "$(per_round enqueue 4 %s)"
        printf '| p99 ms (median) | %s | %s | %s ms | %s ; %s |\n' \
            "$(fmt %.3f "$(med plain 5)")" "$(fmt %.3f "$(med enqueue 5)")" "$(fmt %+.3f "$(med_diff 5)")" \
            "$(per_round plain 5 %s)" "$(per_round enqueue 5 %s)"
        printf '| worker CPU µs per request (/enqueue: per job, request + delivery) | %s | %s | %s µs | %s ; %s |\n' \
            "$(fmt %.1f "$(med plain 11)")" "$(fmt %.1f "$(med enqueue 11)")" "$(fmt %+.1f "$(med_diff 11)")" \
            "$(per_round plain 11 %s)" "$(per_round enqueue 11 %s)"
        printf '| worker run-queue wait s (CPU 0 taken by others) | %s | %s | | %s ; %s |\n' \
            "$(fmt %.2f "$(med plain 10)")" "$(fmt %.2f "$(med enqueue 10)")" \
            "$(per_round plain 10 %s)" "$(per_round enqueue 10 %s)"
        printf '| in-app enqueue() call p50 / p99 µs (median) | | %s / %s | | %s ; %s |\n' \
            "$(fmt %.1f "$(med enqueue 12)")" "$(fmt %.1f "$(med enqueue 13)")" \
            "$(per_round enqueue 12 %s)" "$(per_round enqueue 13 %s)"
        printf '| in-app enqueue() call mean µs; %% of the load spent in it | | %s; %s %% | | %s ; %s |\n' \
            "$(fmt %.1f "$(med enqueue 15)")" "$(fmt %.1f "$(med enqueue 16)")" \
            "$(per_round enqueue 15 %s)" "$(per_round enqueue 16 %s)"
        echo
        echo "| durable jobs, one worker | median | rounds |"
        echo "| --- | ---: | --- |"
        printf '| jobs written/s (first to last enqueue; = /enqueue req/s) | %s | %s |\n' "$(fmt %.0f "$(med enqueue 27)")" "$(per_round enqueue 27 %s)"
        printf '| jobs delivered/s during the load | %s | %s |\n' "$(fmt %.0f "$(med enqueue 28)")" "$(per_round enqueue 28 %s)"
        printf '| backlog when the load stopped (jobs) | %s | %s |\n' "$(fmt %.0f "$(med enqueue 20)")" "$(per_round enqueue 20 %s)"
        printf '| backlog drain rate after the load (jobs/s, load stopped -> last delivery) | %s | %s |\n' "$(fmt %.0f "$(med enqueue 29)")" "$(per_round enqueue 29 %s)"
        printf '| jobs delivered/s end to end (first enqueue -> last delivery) | %s | %s |\n' "$(fmt %.0f "$(med enqueue 30)")" "$(per_round enqueue 30 %s)"
        if ((BURST_JOBS > 0)); then
            printf '| backlog of %s jobs (one /burst request): delivered/s, nothing else running | %s | %s |\n' \
                "$BURST_JOBS" "$(fmt %.0f "$(med burst 29)")" "$(per_round burst 29 %s)"
            printf '| worker CPU µs per delivery (the /burst backlog) | %s | %s |\n' \
                "$(fmt %.1f "$(med burst 11)")" "$(per_round burst 11 %s)"
            printf '| /burst: enqueue() calls in a loop, p50 / p99 µs | %s / %s | %s ; %s |\n' \
                "$(fmt %.1f "$(med burst 12)")" "$(fmt %.1f "$(med burst 13)")" "$(per_round burst 12 %s)" "$(per_round burst 13 %s)"
        fi
        echo
        echo "All rounds: $sum_lost job(s) not delivered, $sum_dup duplicate deliveries, $sum_retr retried" \
            "deliveries, $sum_err enqueue() errors, $sum_left job(s) left in the journal, $sum_dead dead" \
            "job(s); $fails failed request(s) (non-2xx + socket errors + runs with no number)."
        echo "Raw rows: $tsv"
        total_time "$elapsed"
    } >"$report"
    show_report "$report"
}

# --- main -------------------------------------------------------------------------------------

command -v setsid >/dev/null || die "setsid (util-linux) is required"
[[ ${SKIP_INSTALL:-0} == 1 ]] || install_tools
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ ${SKIP_BUILD:-0} == 1 ]] || cargo_build 0
check_wsrun
setup_pinning wrk

started=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    start_wsrun "$round"
    if ((round % 2)); then
        measure_plain "$round"
        measure_enqueue "$round"
    else
        measure_enqueue "$round"
        measure_plain "$round"
    fi
    ((BURST_JOBS == 0)) || measure_burst "$round"
    stop_server "$SERVER_PID"
done
report $((SECONDS - started))

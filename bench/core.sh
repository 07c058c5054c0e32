#!/usr/bin/env bash
# bench/core.sh — the core benchmark: wsrun against bjoern, Granian and a raw-hyper ceiling.
#
# Throughput, one worker each, server pinned to CPU 0 and wrk to CPU 1 (SCENARIOS):
#   hello    hello GET         wrk -t1 -c64 against hello:app (hyper-hello answers natively)
#   echo     10 KB POST echo   same, with post10k.lua against echo:app
#   flask    Flask JSON        GET /users/7?q=a on apps/flask_json.py (jsonify, a converter,
#                              a query parameter)
#   django   Django template   GET /hello/?name=wsrun on apps/django_app.py (URL resolving,
#                              three middlewares, a template with a loop and a filter)
# (hyper-hello has no Flask or Django: its rows read n/a there.)
# Each server is started alone, waited for, checked for a correct answer, warmed up
# (WARMUP s), measured (DURATION s) and stopped; the whole round runs ROUNDS times and the
# table shows the median req/s per server.
# Memory (wsrun only, unless MEM_SERVERS says otherwise):
#   (c) idle VmRSS of the worker serving apps/flask_app.py after 100 requests (target < 40 MiB)
#   (d) peak growth (VmHWM after - VmRSS before) while streaming a 1 GiB upload to
#       apps/upload.py, generated on the fly by memprobe.py (target < 32 MiB)
#
# Environment (defaults in brackets):
#   DURATION [10]  ROUNDS [3]  WARMUP [2]  CONNECTIONS [64]  SCENARIOS ["hello echo flask django"]
#   WORKERS [1]   (2: wsrun --workers 2, bjoern as two SO_REUSEPORT processes, granian
#                  --workers 2; nothing pinned, the servers and wrk share the CPUs)
#   SERVERS ["wsrun bjoern granian hyper"]   (gunicorn is also known, sync worker)
#   MEM_SERVERS ["wsrun"]   (bjoern and granian are also known, for reference)
#   UPLOAD_BYTES [1073741824]  BASE_PORT [18080]  SERVER_CPU [0]  CLIENT_CPU [1]
#   SKIP_INSTALL=1  SKIP_BUILD=1  SKIP_MEMORY=1  WSRUN_BIN=path  HYPER_BIN=path
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"
HYPER_BIN="${HYPER_BIN:-$TARGET_DIR/release/hyper-hello}"

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
SERVERS="${SERVERS:-wsrun bjoern granian hyper}"
SCENARIOS="${SCENARIOS:-hello echo flask django}"
WORKERS="${WORKERS:-1}"
MEM_SERVERS="${MEM_SERVERS:-wsrun}"
UPLOAD_BYTES="${UPLOAD_BYTES:-1073741824}"
BASE_PORT="${BASE_PORT:-18080}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
IDLE_TARGET_MIB=40
GROWTH_TARGET_MIB=32

make_work wsrun-bench         # RAW: server <TAB> scenario <TAB> round <TAB> req/s <TAB> note
MEMROWS="$WORK/mem.md"       # memory table rows
: >"$MEMROWS"

# --- process handling (the rest is in lib.sh) -------------------------------------------------

# Start "$@" pinned to SERVER_CPU in a new session (pgid == pid); sets SERVER_PID.
start_server() {
    local logfile=$1
    shift
    start_group "$logfile" "${PIN_SERVER[@]}" "$@"
    SERVER_PID=$STARTED_PID
}

# The process doing the serving: the newest child (a pre-fork worker) if there is one.
worker_pid() {
    local pid=$1 child
    child=$(pgrep -n -P "$pid" 2>/dev/null || true)
    # taskset/setsid exec in place, so a child here is the server's own worker process.
    echo "${child:-$pid}"
}

# Field $2 (kB) of /proc/$1/status; empty if the process is gone.
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
mib() { awk -v kib="$1" 'BEGIN { printf "%.1f", kib / 1024 }'; }

# --- setup ------------------------------------------------------------------------------------

install_tools() {
    apt_install_missing wrk=wrk libev-dev=/usr/include/ev.h curl=curl procps=pgrep
    local py pkg
    py=$(command -v python3.11 || command -v python3) || die "no python3 found"
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating $VENV with $py"
        "$py" -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip || true
    fi
    for pkg in bjoern granian gunicorn flask django; do
        if ! "$VENV/bin/python" -c "import $pkg" 2>/dev/null; then
            log "pip install $pkg"
            "$VENV/bin/pip" install -q "$pkg" || log "warning: pip install $pkg failed"
        fi
    done
}

check_available() {
    [[ -x $WSRUN_BIN ]] || UNAVAILABLE[wsrun]="${UNAVAILABLE[wsrun]:-no binary at $WSRUN_BIN}"
    [[ -x $HYPER_BIN ]] || UNAVAILABLE[hyper]="no binary at $HYPER_BIN"
    local pkg
    for pkg in bjoern granian gunicorn; do
        "$VENV/bin/python" -c "import $pkg" 2>/dev/null || UNAVAILABLE[$pkg]="$pkg not installed"
    done
    "$VENV/bin/python" -c "import flask" 2>/dev/null || UNAVAILABLE[flask]="flask not installed"
    [[ -n ${UNAVAILABLE[wsrun]:-} ]] || VERSION[wsrun]=$("$WSRUN_BIN" --version 2>/dev/null | head -n1 || true)
    VERSION[hyper]="hyper-hello (hyper 1, current_thread tokio)"
    for pkg in bjoern granian gunicorn flask django; do
        [[ -n ${UNAVAILABLE[$pkg]:-} ]] ||
            VERSION[$pkg]="$pkg $("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$pkg'))")"
    done
}

# --- servers ----------------------------------------------------------------------------------

# Sets CMD (and CMD_ENV) to run server $1 with WSGI target $2 on port $3.
server_cmd() {
    local name=$1 target=$2 port=$3
    CMD_ENV=()
    case $name in
        wsrun)
            CMD=("$WSRUN_BIN" "$target" --pythonpath "$APPS_DIR" --bind "127.0.0.1:$port" --workers "$WORKERS")
            # The embedded interpreter needs the venv's packages for flask_app.
            CMD_ENV=("PYTHONPATH=$SITE_PACKAGES" "VIRTUAL_ENV=$VENV" RUST_BACKTRACE=0)
            ;;
        bjoern)
            CMD=("$VENV/bin/python" "$BENCH_DIR/run_bjoern.py" "$target" 127.0.0.1 "$port" "$APPS_DIR" "$WORKERS")
            ;;
        granian)
            # `--workers 1` as the issue names it, Granian's defaults otherwise. Measured here
            # (2.8.7, hello, 2 rounds): defaults 90.3k/91.0k req/s against 84.9k/84.6k for
            # `--runtime-mode st --runtime-threads 1 --blocking-threads 1 --http 1 --no-ws`,
            # the setting used before, so the defaults are also the harder reference.
            CMD=("$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port"
                --workers "$WORKERS" --log-level warning --working-dir "$APPS_DIR" "$target")
            ;;
        gunicorn)
            CMD=("$VENV/bin/gunicorn" --workers "$WORKERS" --bind "127.0.0.1:$port" --chdir "$APPS_DIR"
                --log-level warning "$target")
            ;;
        hyper)
            CMD=("$HYPER_BIN" --bind "127.0.0.1:$port")
            CMD_ENV=(RUST_BACKTRACE=0)
            ;;
        *) die "unknown server $name" ;;
    esac
}

server_port() {
    case $1 in
        wsrun) echo $((BASE_PORT + 1)) ;; bjoern) echo $((BASE_PORT + 2)) ;;
        granian) echo $((BASE_PORT + 3)) ;; hyper) echo $((BASE_PORT + 4)) ;;
        gunicorn) echo $((BASE_PORT + 5)) ;; *) echo $((BASE_PORT + 9)) ;;
    esac
}

# Launch server $1 with target $2 on $3 and wait for it; sets SERVER_PID. Logs to $WORK.
launch() {
    local name=$1 target=$2 port=$3
    server_cmd "$name" "$target" "$port"
    start_server "$WORK/$name.log" env "${CMD_ENV[@]}" "${CMD[@]}"
    if ! wait_port "$SERVER_PID" "$port"; then
        log "$name did not start listening on $port; its log:"
        tail -n 5 "$WORK/$name.log" >&2 || true
        stop_server "$SERVER_PID"
        return 1
    fi
}

# --- throughput -------------------------------------------------------------------------------

# The WSGI target, request path and table label of scenario $1.
scenario_target() {
    case $1 in
        hello) echo hello:app ;; echo) echo echo:app ;;
        flask) echo flask_json:app ;; django) echo django_app:app ;;
        *) die "unknown scenario $1 (known: hello echo flask django)" ;;
    esac
}
scenario_path() {
    case $1 in
        flask) echo '/users/7?q=a' ;; django) echo '/hello/?name=wsrun' ;; *) echo / ;;
    esac
}
scenario_label() {
    case $1 in
        hello) echo "hello GET" ;; echo) echo "10 KB POST echo" ;;
        flask) echo "Flask JSON GET" ;; django) echo "Django template GET" ;;
    esac
}

sanity_check() {
    local scenario=$1 url=$2 got
    case $scenario in
        echo)
            curl -sS --max-time 5 --data-binary "@$WORK/body10k" -o "$WORK/echoed" "$url" || return 1
            cmp -s "$WORK/body10k" "$WORK/echoed" || { log "echo answer differs from the body sent"; return 1; }
            return 0
            ;;
    esac
    got=$(curl -sS --max-time 5 "$url") || return 1
    case $scenario in
        hello) [[ $got == "Hello, world!" ]] ;;
        flask) [[ $(tr -d ' \n' <<<"$got") == '{"id":7,"name":"user7","q":"a"}' ]] ;;
        django) [[ $got == *"<h1>Hello, wsrun!</h1>"*"3. THREE"* ]] ;;
    esac || { log "unexpected $scenario answer: ${got:0:80}"; return 1; }
}

# Run wrk for $2 seconds against $3 (scenario $1); prints "req/s<TAB>note".
run_wrk() {
    local scenario=$1 secs=$2 url=$3 out rps
    local script=()
    [[ $scenario == echo ]] && script=(-s "$BENCH_DIR/post10k.lua")
    out=$(timeout --foreground $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t1 "-c$CONNECTIONS" "-d${secs}s" \
        --timeout 5s "${script[@]}" "$url" 2>&1) || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    printf '%s\t%s\n' "${rps:-0}" "$(wrk_note "$out")"
}

bench_one() {
    local name=$1 scenario=$2 round=$3 port target url result
    port=$(server_port "$name")
    url="http://127.0.0.1:$port$(scenario_path "$scenario")"
    target=$(scenario_target "$scenario")
    if ! launch "$name" "$target" "$port"; then
        printf '%s\t%s\t%s\t\tdid not start\n' "$name" "$scenario" "$round" >>"$RAW"
        return 0
    fi
    if ! sanity_check "$scenario" "$url"; then
        local why="wrong answer"
        group_alive "$SERVER_PID" || why="exited after it started listening"
        log "$name: $why; its log:"
        tail -n 5 "$WORK/$name.log" >&2 || true
        printf '%s\t%s\t%s\t\t%s\n' "$name" "$scenario" "$round" "$why" >>"$RAW"
        stop_server "$SERVER_PID"
        return 0
    fi
    run_wrk "$scenario" "$WARMUP" "$url" >/dev/null
    result=$(run_wrk "$scenario" "$DURATION" "$url")
    if ! group_alive "$SERVER_PID"; then
        result="$(cut -f1 <<<"$result")	died during the run"
    fi
    stop_server "$SERVER_PID"
    printf '%s\t%s\t%s\t%s\n' "$name" "$scenario" "$round" "$result" >>"$RAW"
    log "round $round  $scenario  $name: $(cut -f1 <<<"$result") req/s $(cut -f2 <<<"$result")"
}

median_of() {
    awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c && $4 != "" && $4 > 0 { print $4 }' "$RAW" | median 2
}

# --- memory -----------------------------------------------------------------------------------

mem_idle() {
    local name=$1 port worker rss
    port=$(server_port "$name")
    if [[ -n ${UNAVAILABLE[$name]:-} || -n ${UNAVAILABLE[flask]:-} ]]; then
        echo "| $name | idle VmRSS, flask_app after 100 req | n/a | < $IDLE_TARGET_MIB MiB | ${UNAVAILABLE[$name]:-${UNAVAILABLE[flask]:-}} |" >>"$MEMROWS"
        return 0
    fi
    if ! launch "$name" flask_app:app "$port"; then
        echo "| $name | idle VmRSS, flask_app after 100 req | n/a | < $IDLE_TARGET_MIB MiB | did not start |" >>"$MEMROWS"
        return 0
    fi
    if ! timeout --foreground 60 "${PIN_CLIENT[@]}" python3 "$BENCH_DIR/memprobe.py" get "http://127.0.0.1:$port/" 100 >/dev/null; then
        echo "| $name | idle VmRSS, flask_app after 100 req | n/a | < $IDLE_TARGET_MIB MiB | requests failed |" >>"$MEMROWS"
        stop_server "$SERVER_PID"
        return 0
    fi
    sleep 1
    worker=$(worker_pid "$SERVER_PID")
    rss=$(status_kib "$worker" VmRSS)
    if [[ -z $rss ]]; then
        echo "| $name | idle VmRSS, flask_app after 100 req | n/a | < $IDLE_TARGET_MIB MiB | server exited |" >>"$MEMROWS"
        stop_server "$SERVER_PID"
        return 0
    fi
    local verdict="FAIL"
    awk -v r="$rss" -v t="$IDLE_TARGET_MIB" 'BEGIN { exit !(r / 1024 < t) }' && verdict="PASS"
    local note="worker pid $worker"
    [[ $worker != "$SERVER_PID" ]] && note="$note; parent $(mib "$(status_kib "$SERVER_PID" VmRSS)") MiB"
    echo "| $name | idle VmRSS, flask_app after 100 req | $(mib "$rss") MiB | < $IDLE_TARGET_MIB MiB: $verdict | $note |" >>"$MEMROWS"
    log "$name idle RSS: $(mib "$rss") MiB ($verdict)"
    stop_server "$SERVER_PID"
}

mem_upload() {
    local name=$1 port worker before hwm growth out verdict="FAIL" note secs rate
    local label="VmHWM growth, $((UPLOAD_BYTES / 1048576)) MiB upload"
    port=$(server_port "$name")
    if [[ -n ${UNAVAILABLE[$name]:-} ]]; then
        echo "| $name | $label | n/a | < $GROWTH_TARGET_MIB MiB | ${UNAVAILABLE[$name]} |" >>"$MEMROWS"
        return 0
    fi
    server_cmd "$name" upload:app "$port"
    [[ $name == wsrun ]] && CMD+=(--max-body-size 2GiB)
    start_server "$WORK/$name-upload.log" env "${CMD_ENV[@]}" "${CMD[@]}"
    if ! wait_port "$SERVER_PID" "$port"; then
        tail -n 5 "$WORK/$name-upload.log" >&2 || true
        echo "| $name | $label | n/a | < $GROWTH_TARGET_MIB MiB | did not start |" >>"$MEMROWS"
        stop_server "$SERVER_PID"
        return 0
    fi
    sleep 0.5
    worker=$(worker_pid "$SERVER_PID")
    # Reset the peak to the current RSS (Linux >= 4.0), so VmHWM measures this upload only.
    { echo 5 >"/proc/$worker/clear_refs"; } 2>/dev/null || true
    before=$(status_kib "$worker" VmRSS)
    if [[ -n $before ]] && out=$(timeout --foreground 300 "${PIN_CLIENT[@]}" python3 "$BENCH_DIR/memprobe.py" upload \
        "http://127.0.0.1:$port/upload" "$UPLOAD_BYTES" 2>&1); then
        hwm=$(status_kib "$worker" VmHWM)
        if [[ -z $hwm ]]; then
            echo "| $name | $label | n/a | < $GROWTH_TARGET_MIB MiB | server exited after the upload |" >>"$MEMROWS"
            stop_server "$SERVER_PID"
            return 0
        fi
        growth=$((hwm - before))
        awk -v g="$growth" -v t="$GROWTH_TARGET_MIB" 'BEGIN { exit !(g / 1024 < t) }' && verdict="PASS"
        read -r _ secs rate <<<"$out"
        note="RSS before $(mib "$before") MiB, peak $(mib "$hwm") MiB; sha256 ok; ${secs} s, ${rate} MiB/s"
        echo "| $name | $label | $(mib "$growth") MiB | < $GROWTH_TARGET_MIB MiB: $verdict | $note |" >>"$MEMROWS"
        log "$name upload growth: $(mib "$growth") MiB ($verdict)"
    else
        [[ -n $before ]] || out="server exited before the upload"
        log "$name upload failed: $out"
        echo "| $name | $label | n/a | < $GROWTH_TARGET_MIB MiB | upload failed: $(tr '\n|' '  ' <<<"$out" | cut -c1-120) |" >>"$MEMROWS"
    fi
    stop_server "$SERVER_PID"
}

# --- main -------------------------------------------------------------------------------------

command -v setsid >/dev/null || die "setsid (util-linux) is required"
[[ ${SKIP_INSTALL:-0} == 1 ]] || install_tools
command -v wrk >/dev/null || die "wrk is not installed"
[[ ${SKIP_BUILD:-0} == 1 ]] || cargo_build 1
check_available
SITE_PACKAGES=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

setup_pinning wrk
if ((WORKERS > 1)); then
    PIN_SERVER=() PIN_CLIENT=()
    PINNING="not pinned ($WORKERS workers per server; the servers and wrk share the CPUs)"
fi
head -c 10240 /dev/zero | tr '\0' x >"$WORK/body10k"   # the same body post10k.lua sends

read -r -a server_list <<<"$SERVERS"
started=$SECONDS
read -r -a scenario_list <<<"$SCENARIOS"
for scenario in "${scenario_list[@]}"; do scenario_target "$scenario" >/dev/null; done
for ((round = 1; round <= ROUNDS; round++)); do
    for scenario in "${scenario_list[@]}"; do
        for name in "${server_list[@]}"; do
            if [[ -n ${UNAVAILABLE[$name]:-} ]]; then
                ((round > 1)) || log "$name: n/a (${UNAVAILABLE[$name]})"
                continue
            fi
            [[ $name == hyper && $scenario != hello && $scenario != echo ]] && continue
            bench_one "$name" "$scenario" "$round"
        done
    done
done

if [[ ${SKIP_MEMORY:-0} != 1 ]]; then
    read -r -a mem_list <<<"$MEM_SERVERS"
    for name in "${mem_list[@]}"; do mem_idle "$name"; done
    for name in "${mem_list[@]}"; do mem_upload "$name"; done
fi

# --- report -----------------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
stamp=$(date +%Y-%m-%d_%H%M%S)
report="$RESULTS_DIR/core-$stamp.md"
{
    echo "# wsrun core benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "Machine: $(machine);" \
        "$PINNING. wrk -t1 -c$CONNECTIONS, ${WARMUP} s warm-up + ${DURATION} s measured," \
        "median of $ROUNDS round(s), $WORKERS worker(s) per server, loopback."
    echo
    for name in "${server_list[@]}"; do
        [[ -n ${VERSION[$name]:-} ]] && echo "- $name: ${VERSION[$name]}"
    done
    echo
    echo "| server | scenario | req/s (median) | vs wsrun | vs raw hyper | rounds | notes |"
    echo "| --- | --- | ---: | ---: | ---: | --- | --- |"
    for scenario in "${scenario_list[@]}"; do
        label=$(scenario_label "$scenario")
        ws=$(median_of wsrun "$scenario")
        hy=$(median_of hyper "$scenario")
        for name in "${server_list[@]}"; do
            if [[ -n ${UNAVAILABLE[$name]:-} ]]; then
                echo "| $name | $label | n/a | n/a | n/a | | ${UNAVAILABLE[$name]} |"
                continue
            fi
            med=$(median_of "$name" "$scenario")
            runs=$(awk -F'\t' -v s="$name" -v c="$scenario" '$1 == s && $2 == c { printf "%s%s", sep, ($4 == "" ? "-" : sprintf("%.0f", $4)); sep = " / " }' "$RAW")
            notes=$(awk -F'\t' -v s="$name" -v c="$scenario" '$1 == s && $2 == c && $5 != "" { printf "%sr%s: %s", sep, $3, $5; sep = "; " }' "$RAW")
            if [[ -z $med ]]; then
                echo "| $name | $label | n/a | n/a | n/a | $runs | $notes |"
            else
                printf '| %s | %s | %.0f | %s | %s | %s | %s |\n' "$name" "$label" "$med" \
                    "$(ratio "$med" "$ws")" "$(ratio "$med" "$hy")" "$runs" "$notes"
            fi
        done
    done
    if [[ ${SKIP_MEMORY:-0} != 1 ]]; then
        echo
        echo "| server | memory | value | target | notes |"
        echo "| --- | --- | ---: | --- | --- |"
        cat "$MEMROWS"
    fi
    total_time $((SECONDS - started))
} >"$report"

show_report "$report"

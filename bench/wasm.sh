#!/usr/bin/env bash
# bench/wasm.sh — the WebAssembly benchmark: wsrun's wasi:http host against `wasmtime serve`.
#
#   bash bench/wasm.sh [throughput]   (default) the hello component, handlers/hello.wasm, under
#       wsrun        target/release/wsrun --bind 127.0.0.1:PORT --wasm /=handlers/hello.wasm
#       wasmtime     wasmtime serve -Scli --addr 127.0.0.1:PORT handlers/hello.wasm
#       wasmtime-tuned   the same plus -O pooling-allocator=y,... (WASMTIME_TUNED_OPTS)
#       hyper        target/release/hyper-hello, the raw-hyper ceiling (no WebAssembly at all)
#     one at a time, server pinned to CPU 0 and wrk -t1 -c64 --latency to CPU 1; each is waited
#     for, its answer checked, warmed up (WARMUP s) and measured (DURATION s), ROUNDS times with
#     the server order rotated every round. Table: median req/s and p99, ratios to tuned
#     wasmtime serve and to hyper. Target: wsrun >= 2x tuned wasmtime serve.
#   bash bench/wasm.sh noisy   tenant isolation: wsrun with bench/wasm/tenants.toml (a "good"
#     tenant serving hello.wasm, a "bad" one serving spin-loop.wasm and memory-bomb.wasm under
#     memory = 32MiB, timeout = 1s, max_concurrency = 8). The good tenant is measured with
#     wrk -t1 -c16 quiet, then while two wrk -t1 -c8 hammer /loop and /bomb on the bad tenant.
#     Target: p99 noisy <= 2 x p99 quiet + 10 ms, and no failed good request.
#
# Environment (defaults in brackets):
#   DURATION [8]  ROUNDS [3]  WARMUP [2]  CONNECTIONS [64]  BASE_PORT [18180]
#   SERVERS ["wsrun wasmtime wasmtime-tuned hyper"]  SERVER_CPU [0]  CLIENT_CPU [1]
#     (also `wsrun-warm`: wsrun with the component's route at `requests_per_instance =
#     WARM_REQUESTS` [1000], warm instances instead of a fresh one per request)
#   GOOD_CONNECTIONS [16]  BAD_CONNECTIONS [8]   (noisy mode)
#   WSRUN_ARGS  extra arguments appended to wsrun's command line (both modes)
#   WASMTIME_TUNED_OPTS [pooling-allocator=y,...]  the -O value of the tuned wasmtime serve
#   SKIP_INSTALL=1  SKIP_BUILD=1  WSRUN_BIN=path  HYPER_BIN=path  WASMTIME_BIN=path
#   HELLO_WASM  HELLO_TEXT  TARGET_RATIO [2]   another component, its answer, the target (see wasm_python.sh)
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"
WASM_DIR="$BENCH_DIR/wasm"
HANDLERS_DIR="$ROOT/handlers"
TOOLS_DIR="$BENCH_DIR/.tools"
HYPER_BIN="${HYPER_BIN:-$TARGET_DIR/release/hyper-hello}"
WASMTIME_BIN="${WASMTIME_BIN:-$TOOLS_DIR/bin/wasmtime}"
WASMTIME_VERSION=48.0.8
HELLO_WASM="${HELLO_WASM:-$HANDLERS_DIR/hello.wasm}"
SPIN_WASM="$HANDLERS_DIR/spin-loop.wasm"
BOMB_WASM="$HANDLERS_DIR/memory-bomb.wasm"
TENANTS_TOML="$WASM_DIR/tenants.toml"
HELLO_TEXT="${HELLO_TEXT:-Hello from WebAssembly!}"

MODE="${1:-throughput}"
DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
GOOD_CONNECTIONS="${GOOD_CONNECTIONS:-16}"
BAD_CONNECTIONS="${BAD_CONNECTIONS:-8}"
SERVERS="${SERVERS:-wsrun wasmtime wasmtime-tuned hyper}"
BASE_PORT="${BASE_PORT:-18180}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
WASMTIME_TUNED_OPTS="${WASMTIME_TUNED_OPTS:-pooling-allocator=y,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=65536,pooling-async-stack-keep-resident=1048576}"
read -r -a WSRUN_EXTRA <<<"${WSRUN_ARGS:-}"
TARGET_RATIO="${TARGET_RATIO:-2}"   # wsrun / tuned wasmtime serve, at least
WARM_REQUESTS="${WARM_REQUESTS:-1000}"
NOISY_FACTOR=2        # p99 noisy <= NOISY_FACTOR * p99 quiet + NOISY_SLACK_MS
NOISY_SLACK_MS=10
BAD_LEAD=1            # seconds the bad-tenant load runs before the good tenant is measured
BAD_DRAIN=2           # seconds left after the bad load for in-flight bad requests (timeout 1s)

case $MODE in
    throughput | noisy) ;;
    -h | --help | help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bash bench/wasm.sh [throughput|noisy]   (bash bench/wasm.sh help for details)" >&2
        exit 2
        ;;
esac

make_work wsrun-wasm-bench

# --- setup ------------------------------------------------------------------------------------

install_tools() {
    apt_install_missing wrk=wrk curl=curl procps=pgrep
    [[ $MODE == throughput ]] || return 0
    # wasmtime-cli is a long build: only when a wasmtime row is asked for.
    [[ " $SERVERS " == *" wasmtime"* ]] || return 0
    if [[ $WASMTIME_BIN != "$TOOLS_DIR/bin/wasmtime" ]]; then
        return 0    # the caller chose a binary; use it as it is
    fi
    if "$WASMTIME_BIN" --version 2>/dev/null | grep -q "^wasmtime $WASMTIME_VERSION\b"; then
        return 0
    fi
    command -v cargo >/dev/null || die "cargo is needed to install wasmtime-cli $WASMTIME_VERSION"
    log "cargo install wasmtime-cli --version $WASMTIME_VERSION --locked --root $TOOLS_DIR" \
        "(nice 19; 15-30 min on 2 cores, once)"
    if ! nice -n 19 cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked \
        --root "$TOOLS_DIR" >"$WORK/wasmtime-install.log" 2>&1; then
        tail -n 20 "$WORK/wasmtime-install.log" >&2
        log "warning: wasmtime-cli did not install; the wasmtime rows will read n/a"
    fi
}

build() {
    if [[ -f $HANDLERS_DIR/build.sh ]]; then
        log "bash handlers/build.sh"
        (cd "$ROOT" && bash handlers/build.sh) >"$WORK/handlers-build.log" 2>&1 ||
            { tail -n 30 "$WORK/handlers-build.log" >&2; die "handlers/build.sh failed"; }
    elif [[ -f $HELLO_WASM ]]; then
        log "warning: handlers/build.sh not found; using the existing handlers/*.wasm as they are"
    else
        die "handlers/build.sh not found, and no $HELLO_WASM: nothing can build the hello component"
    fi
    # hyper-hello only for throughput mode, where a wsrun that does not build is a row of n/a.
    if [[ $MODE == throughput ]]; then cargo_build 1; else cargo_build 0; fi
}

# wsrun's --help lists --wasm once the WebAssembly host is in.
wsrun_has_wasm() { "$WSRUN_BIN" --help 2>/dev/null | grep -q -- '--wasm'; }

check_available() {
    local v
    [[ -f $HELLO_WASM ]] ||
        die "no $HELLO_WASM — build it with 'bash handlers/build.sh' (or run without SKIP_BUILD=1)"
    if [[ ! -x $WSRUN_BIN ]]; then
        UNAVAILABLE[wsrun]="${UNAVAILABLE[wsrun]:-no binary at $WSRUN_BIN}"
    elif [[ $MODE == throughput && -z ${UNAVAILABLE[wsrun]:-} ]] && ! wsrun_has_wasm; then
        UNAVAILABLE[wsrun]="this wsrun has no --wasm flag yet (WebAssembly host not built in)"
    fi
    [[ -n ${UNAVAILABLE[wsrun]:-} ]] || VERSION[wsrun]=$("$WSRUN_BIN" --version 2>/dev/null | head -n1 || true)
    [[ -x $HYPER_BIN ]] || UNAVAILABLE[hyper]="no binary at $HYPER_BIN"
    VERSION[hyper]="hyper-hello (hyper 1, current_thread tokio; answers Hello, world!)"
    if v=$("$WASMTIME_BIN" --version 2>/dev/null); then
        [[ $v == "wasmtime $WASMTIME_VERSION"* ]] ||
            log "warning: $WASMTIME_BIN is '$v', not $WASMTIME_VERSION; the numbers are not comparable"
        VERSION[wasmtime]="$v: wasmtime serve -Scli"
        VERSION[wasmtime-tuned]="$v: wasmtime serve -Scli -O $WASMTIME_TUNED_OPTS"
    else
        UNAVAILABLE[wasmtime]="no wasmtime at $WASMTIME_BIN"
        UNAVAILABLE[wasmtime-tuned]="no wasmtime at $WASMTIME_BIN"
    fi
}

# --- wrk --------------------------------------------------------------------------------------

# wrk's report on stdin -> "req/s<TAB>p50 ms<TAB>p99 ms<TAB>non-2xx<TAB>socket errors<TAB>statuses"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            if (v ~ /m$/) return v * 60000
            if (v ~ /h$/) return v * 3600000
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errs = $4 + $6 + $8 + $10 }
        /^Statuses:/ { sub(/^Statuses: */, ""); statuses = $0 }
        END {
            printf "%s\t%s\t%s\t%d\t%d\t%s\n", (rps == "" ? 0 : rps), p50, p99, non2xx, errs, statuses
        }'
}

# --- throughput mode --------------------------------------------------------------------------

server_port() {
    case $1 in
        wsrun) echo $((BASE_PORT + 1)) ;; wasmtime) echo $((BASE_PORT + 2)) ;;
        wasmtime-tuned) echo $((BASE_PORT + 3)) ;; hyper) echo $((BASE_PORT + 4)) ;;
        wsrun-warm) echo $((BASE_PORT + 5)) ;;
        *) echo $((BASE_PORT + 9)) ;;
    esac
}

# Sets CMD to run server $1 on port $2.
server_cmd() {
    local name=$1 port=$2
    case $name in
        wsrun)
            CMD=(env RUST_BACKTRACE=0 "$WSRUN_BIN" --bind "127.0.0.1:$port" --wasm "/=$HELLO_WASM"
                "${WSRUN_EXTRA[@]}")
            ;;
        wsrun-warm)
            printf '[[route]]\nprefix = "/"\nwasm = "%s"\nrequests_per_instance = %s\n' \
                "$HELLO_WASM" "$WARM_REQUESTS" >"$WORK/warm.toml"
            CMD=(env RUST_BACKTRACE=0 "$WSRUN_BIN" --bind "127.0.0.1:$port" -c "$WORK/warm.toml"
                "${WSRUN_EXTRA[@]}")
            ;;
        wasmtime)
            CMD=("$WASMTIME_BIN" serve -Scli --addr "127.0.0.1:$port" "$HELLO_WASM")
            ;;
        wasmtime-tuned)
            CMD=("$WASMTIME_BIN" serve -Scli -O "$WASMTIME_TUNED_OPTS" --addr "127.0.0.1:$port" "$HELLO_WASM")
            ;;
        hyper)
            CMD=(env RUST_BACKTRACE=0 "$HYPER_BIN" --bind "127.0.0.1:$port")
            ;;
        *) die "unknown server $name (known: wsrun wsrun-warm wasmtime wasmtime-tuned hyper)" ;;
    esac
}

label() {
    case $1 in
        wsrun) echo "wsrun --wasm" ;; wasmtime) echo "wasmtime serve (default)" ;;
        wasmtime-tuned) echo "wasmtime serve (tuned)" ;; hyper) echo "raw hyper (hyper-hello)" ;;
        wsrun-warm) echo "wsrun, requests_per_instance = $WARM_REQUESTS" ;;
        *) echo "$1" ;;
    esac
}

# The answer of server $1 on $2 is right: the hello body, or for hyper-hello just a 200.
answer_ok() {
    local name=$1 url=$2 code body
    code=$(curl -sS --max-time 5 -o "$WORK/answer" -w '%{http_code}' "$url") || return 1
    body=$(head -c 200 "$WORK/answer")
    [[ $code == 200 ]] || { log "$name answered HTTP $code: ${body:0:80}"; return 1; }
    [[ $name == hyper ]] && return 0
    grep -qF "$HELLO_TEXT" "$WORK/answer" || { log "$name answered: ${body:0:80}"; return 1; }
}

# wrk -t1 -c$CONNECTIONS for $1 s against $2, client-pinned; prints parse_wrk's line + note.
run_wrk() {
    local secs=$1 url=$2 out
    out=$(timeout --foreground $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t1 "-c$CONNECTIONS" "-d${secs}s" \
        --timeout 5s --latency "$url" 2>&1) || true
    printf '%s\t%s\n' "$(parse_wrk <<<"$out")" "$(wrk_note "$out")"
}

# Appends "server<TAB>round<TAB>req/s<TAB>p99 ms<TAB>note" to $RAW.
bench_one() {
    local name=$1 round=$2 port url result rps p99 note
    port=$(server_port "$name")
    url="http://127.0.0.1:$port/"
    server_cmd "$name" "$port"
    start_group "$WORK/$name.log" "${PIN_SERVER[@]}" "${CMD[@]}"
    local pid=$STARTED_PID
    if ! wait_http "$pid" "$port"; then
        log "$name did not answer on $port; its log:"
        tail -n 5 "$WORK/$name.log" >&2 || true
        printf '%s\t%s\t\t\tdid not start\n' "$name" "$round" >>"$RAW"
        stop_server "$pid"
        return 0
    fi
    if ! answer_ok "$name" "$url"; then
        local why="wrong answer"
        group_alive "$pid" || why="exited after it started listening"
        log "$name: $why; its log:"
        tail -n 5 "$WORK/$name.log" >&2 || true
        printf '%s\t%s\t\t\t%s\n' "$name" "$round" "$why" >>"$RAW"
        stop_server "$pid"
        return 0
    fi
    run_wrk "$WARMUP" "$url" >/dev/null
    result=$(run_wrk "$DURATION" "$url")
    rps=$(cut -f1 <<<"$result")
    p99=$(cut -f3 <<<"$result")
    note=$(cut -f7 <<<"$result")
    group_alive "$pid" || note="${note:+$note; }died during the run"
    stop_server "$pid"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p99" "$note" >>"$RAW"
    log "round $round  $name: $rps req/s, p99 $p99 ms${note:+ ($note)}"
}

# Median of column $2 (3 = req/s, 4 = p99) for server $1, over the rounds that have a number.
median_of() {
    awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $3 != "" && $3 > 0 { print $c }' "$RAW" | median 3
}

throughput() {
    local name round i n started
    read -r -a server_list <<<"$SERVERS"
    n=${#server_list[@]}
    for name in "${server_list[@]}"; do
        server_cmd "$name" 0    # rejects unknown names before anything runs
        [[ -z ${UNAVAILABLE[$name]:-} ]] || log "$name: n/a (${UNAVAILABLE[$name]})"
    done
    started=$SECONDS
    for ((round = 1; round <= ROUNDS; round++)); do
        # Rotate the order every round so slow drift on this shared machine favours nobody.
        for ((i = 0; i < n; i++)); do
            name=${server_list[$(((i + round - 1) % n))]}
            [[ -n ${UNAVAILABLE[$name]:-} ]] || bench_one "$name" "$round"
        done
    done
    local elapsed=$((SECONDS - started))

    mkdir -p "$RESULTS_DIR"
    local report med p99 tuned hy runs notes verdict ws_ratio
    report="$RESULTS_DIR/wasm-$(date +%Y-%m-%d_%H%M%S).md"
    tuned=$(median_of wasmtime-tuned 3)
    hy=$(median_of hyper 3)
    {
        echo "# wsrun WebAssembly benchmark ($(basename "$HELLO_WASM")), $(date '+%Y-%m-%d %H:%M:%S %Z')"
        echo
        echo "Machine: $(machine);" \
            "$PINNING. wrk -t1 -c$CONNECTIONS --latency, ${WARMUP} s warm-up + ${DURATION} s measured," \
            "median of $ROUNDS round(s), server order rotated each round, loopback." \
            "Component: ${HELLO_WASM#"$ROOT"/} ($(stat -c %s "$HELLO_WASM") bytes)."
        echo
        for name in "${server_list[@]}"; do
            [[ -n ${VERSION[$name]:-} ]] && echo "- $name: ${VERSION[$name]}"
        done
        [[ ${#WSRUN_EXTRA[@]} -eq 0 ]] || echo "- WSRUN_ARGS: ${WSRUN_EXTRA[*]}"
        echo
        echo "| server | req/s (median) | p99 ms (median) | vs tuned wasmtime serve | vs raw hyper | rounds: req/s (p99 ms) | notes |"
        echo "| --- | ---: | ---: | ---: | ---: | --- | --- |"
        for name in "${server_list[@]}"; do
            if [[ -n ${UNAVAILABLE[$name]:-} ]]; then
                echo "| $(label "$name") | n/a | n/a | n/a | n/a | | ${UNAVAILABLE[$name]} |"
                continue
            fi
            med=$(median_of "$name" 3)
            p99=$(median_of "$name" 4)
            runs=$(awk -F'\t' -v s="$name" '$1 == s { printf "%s%s", sep, ($3 == "" ? "-" : sprintf("%.0f (%.1f)", $3, $4)); sep = " / " }' "$RAW")
            notes=$(awk -F'\t' -v s="$name" '$1 == s && $5 != "" { printf "%sr%s: %s", sep, $2, $5; sep = "; " }' "$RAW")
            if [[ -z $med ]]; then
                echo "| $(label "$name") | n/a | n/a | n/a | n/a | $runs | $notes |"
            else
                printf '| %s | %.0f | %.2f | %s | %s | %s | %s |\n' "$(label "$name")" "$med" "$p99" \
                    "$(ratio "$med" "$tuned")" "$(ratio "$med" "$hy")" "$runs" "$notes"
            fi
        done
        echo
        ws_ratio=$(ratio "$(median_of wsrun 3)" "$tuned")
        if [[ $ws_ratio == n/a ]]; then
            verdict="not measured (${UNAVAILABLE[wsrun]:-${UNAVAILABLE[wasmtime-tuned]:-wsrun or tuned wasmtime serve has no number}})"
        elif awk -v r="$ws_ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(r >= t) }'; then
            verdict="PASS (${ws_ratio}x)"
        else
            verdict="FAIL (${ws_ratio}x)"
        fi
        echo "Target: wsrun >= ${TARGET_RATIO}x tuned wasmtime serve req/s: $verdict"
        if [[ " $SERVERS " == *" wsrun-warm "* ]]; then
            echo "wsrun with requests_per_instance = $WARM_REQUESTS (opt-in warm instances):" \
                "$(ratio "$(median_of wsrun-warm 3)" "$tuned")x tuned wasmtime serve"
        fi
        total_time "$elapsed"
    } >"$report"
    show_report "$report"
}

# --- noisy mode -------------------------------------------------------------------------------

write_tenants() {
    local port=$1
    mkdir -p "$WASM_DIR"
    # Absolute paths: wsrun resolves a config file's relative paths against the file's own
    # directory, and this file is regenerated for every run with the chosen port anyway.
    cat >"$TENANTS_TOML" <<EOF
# Generated by bench/wasm.sh noisy — edits are overwritten on the next run.
[server]
bind = "127.0.0.1:$port"

[[tenant]]
name = "good"
hosts = ["good.localhost"]
  [[tenant.route]]
  prefix = "/"
  wasm = "$HELLO_WASM"

[[tenant]]
name = "bad"
hosts = ["bad.localhost"]
memory = "32MiB"
timeout = "1s"
max_concurrency = 8
  [[tenant.route]]
  prefix = "/loop"
  wasm = "$SPIN_WASM"
  [[tenant.route]]
  prefix = "/bomb"
  wasm = "$BOMB_WASM"
EOF
}

# HTTP status of one request to $1 with Host $2 ("000" when none came in 5 s).
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $2" "$1" || true; }

# One good-tenant measurement; phase $1 (quiet|noisy), round $2. Appends to $RAW:
# phase round req/s p50 p99 non-2xx socket-errors note bad-load
measure_good() {
    local phase=$1 round=$2 out line note="" bad="" b pids=() logs=() p i
    if [[ $phase == noisy ]]; then
        for p in loop bomb; do
            start_group "$WORK/bad-$p-$round.out" "${PIN_CLIENT[@]}" wrk -t1 "-c$BAD_CONNECTIONS" \
                "-d$((DURATION + BAD_LEAD + 1))s" --timeout 5s -s "$WASM_DIR/status.lua" \
                -H "Host: bad.localhost" "$URL/$p"
            pids+=("$STARTED_PID")
            logs+=("$WORK/bad-$p-$round.out")
        done
        sleep "$BAD_LEAD"
    fi
    out=$(timeout --foreground $((DURATION + 30)) "${PIN_CLIENT[@]}" wrk -t1 "-c$GOOD_CONNECTIONS" \
        "-d${DURATION}s" --timeout 5s --latency -H "Host: good.localhost" "$URL/" 2>&1) || true
    line=$(parse_wrk <<<"$out")
    note=$(socket_note <<<"$out")
    if [[ $phase == noisy ]]; then
        for i in "${!pids[@]}"; do
            wait "${pids[$i]}" 2>/dev/null || true
            forget_group "${pids[$i]}"
            p=$(basename "${logs[$i]}" .out)
            p=${p#bad-}
            p=${p%-*}
            b=$(parse_wrk <"${logs[$i]}")
            bad="${bad:+$bad; }/$p: $(printf '%.0f' "$(cut -f1 <<<"$b")") req/s, statuses $(cut -f6 <<<"$b"), $(cut -f5 <<<"$b") socket errors"
        done
    fi
    group_alive "$SERVER_PID" || note="${note:+$note; }wsrun died during the run"
    printf '%s\t%s\t%s\t%s\t%s\n' "$phase" "$round" "$(cut -f1-5 <<<"$line")" "$note" "$bad" >>"$RAW"
    log "round $round $phase: $(cut -f1 <<<"$line") req/s, p50 $(cut -f2 <<<"$line") ms," \
        "p99 $(cut -f3 <<<"$line") ms, non-2xx $(cut -f4 <<<"$line"), socket errors $(cut -f5 <<<"$line")${bad:+; bad tenant: $bad}"
    # Let the bad tenant's in-flight requests (1 s timeout) end before the next phase.
    [[ $phase == quiet ]] || sleep "$BAD_DRAIN"
}

noisy() {
    local port f round phase started
    [[ -z ${UNAVAILABLE[wsrun]:-} ]] || die "wsrun: ${UNAVAILABLE[wsrun]}"
    for f in "$HELLO_WASM" "$SPIN_WASM" "$BOMB_WASM"; do
        [[ -f $f ]] || die "no $f — build it with 'bash handlers/build.sh'"
    done
    port=$((BASE_PORT + 10))
    URL="http://127.0.0.1:$port"
    write_tenants "$port"
    log "checking $TENANTS_TOML with 'wsrun check --config …'"
    if ! timeout 120 "$WSRUN_BIN" check --config "$TENANTS_TOML" "${WSRUN_EXTRA[@]}" >"$WORK/check.log" 2>&1; then
        tail -n 10 "$WORK/check.log" >&2
        die "this wsrun does not accept $TENANTS_TOML (no [[tenant]]/wasm support yet?)"
    fi
    start_group "$WORK/wsrun-noisy.log" "${PIN_SERVER[@]}" env RUST_BACKTRACE=0 \
        "$WSRUN_BIN" --config "$TENANTS_TOML" "${WSRUN_EXTRA[@]}"
    SERVER_PID=$STARTED_PID
    if ! wait_http "$SERVER_PID" "$port"; then
        tail -n 10 "$WORK/wsrun-noisy.log" >&2 || true
        die "wsrun --config $TENANTS_TOML did not answer on $port"
    fi
    local code
    code=$(curl -sS --max-time 5 -o "$WORK/answer" -w '%{http_code}' -H "Host: good.localhost" "$URL/") || true
    if [[ $code != 200 ]] || ! grep -qF "$HELLO_TEXT" "$WORK/answer"; then
        tail -n 10 "$WORK/wsrun-noisy.log" >&2 || true
        die "good tenant answered HTTP $code: $(head -c 80 "$WORK/answer")"
    fi
    local loop_status bomb_status
    loop_status=$(status_of "$URL/loop" bad.localhost)
    bomb_status=$(status_of "$URL/bomb" bad.localhost)
    log "bad tenant answers: /loop HTTP $loop_status, /bomb HTTP $bomb_status"
    if [[ $loop_status == 404 || $bomb_status == 404 ]]; then
        log "warning: a bad-tenant route answers 404, so the noisy load may not reach its component"
    fi
    group_alive "$SERVER_PID" || die "wsrun died while the bad tenant's routes were checked"
    timeout --foreground $((WARMUP + 30)) "${PIN_CLIENT[@]}" wrk -t1 "-c$GOOD_CONNECTIONS" "-d${WARMUP}s" \
        -H "Host: good.localhost" "$URL/" >/dev/null 2>&1 || true

    started=$SECONDS
    for ((round = 1; round <= ROUNDS; round++)); do
        # Odd rounds quiet first, even rounds noisy first: drift hits both phases alike.
        if ((round % 2)); then
            for phase in quiet noisy; do measure_good "$phase" "$round"; done
        else
            for phase in noisy quiet; do measure_good "$phase" "$round"; done
        fi
        group_alive "$SERVER_PID" || break
    done
    local elapsed=$((SECONDS - started))
    stop_server "$SERVER_PID"

    mkdir -p "$RESULTS_DIR"
    local report q50 q99 n50 n99 qrps nrps qfail nfail limit verdict
    report="$RESULTS_DIR/wasm-noisy-$(date +%Y-%m-%d_%H%M%S).md"
    col() { awk -F'\t' -v p="$1" -v c="$2" '$1 == p && $3 > 0 { print $c }' "$RAW" | median 3; }
    fails() { awk -F'\t' -v p="$1" '$1 == p { n += $6 + $7; if ($3 == 0) n++ } END { print n + 0 }' "$RAW"; }
    qrps=$(col quiet 3) nrps=$(col noisy 3)
    q50=$(col quiet 4) n50=$(col noisy 4)
    q99=$(col quiet 5) n99=$(col noisy 5)
    qfail=$(fails quiet) nfail=$(fails noisy)
    limit=$(awk -v q="${q99:-0}" -v f="$NOISY_FACTOR" -v s="$NOISY_SLACK_MS" 'BEGIN { printf "%.2f", f * q + s }')
    if [[ -z $q99 || -z $n99 ]]; then
        verdict="not measured"
    elif awk -v n="$n99" -v l="$limit" 'BEGIN { exit !(n <= l) }' && ((qfail == 0 && nfail == 0)); then
        verdict="PASS"
    else
        verdict="FAIL"
    fi
    {
        echo "# wsrun tenant isolation (noisy neighbour), $(date '+%Y-%m-%d %H:%M:%S %Z')"
        echo
        echo "Machine: $(machine);" \
            "$PINNING. Good tenant: wrk -t1 -c$GOOD_CONNECTIONS --latency -H 'Host: good.localhost' /," \
            "${DURATION} s per phase, $ROUNDS round(s) (quiet/noisy order alternating)." \
            "Noisy: wrk -t1 -c$BAD_CONNECTIONS on /loop and on /bomb with -H 'Host: bad.localhost'," \
            "started ${BAD_LEAD} s before the good run. Config: bench/wasm/tenants.toml."
        echo
        echo "- wsrun: $("$WSRUN_BIN" --version 2>/dev/null | head -n1)${WSRUN_EXTRA[*]:+ (WSRUN_ARGS: ${WSRUN_EXTRA[*]})}"
        echo "- bad tenant before the run: /loop HTTP $loop_status, /bomb HTTP $bomb_status"
        echo
        echo "| phase | round | good req/s | p50 ms | p99 ms | non-2xx | socket errors | bad-tenant load | notes |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
        awk -F'\t' '{ printf "| %s | %s | %.0f | %.2f | %.2f | %d | %d | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $9, $8 }' "$RAW"
        echo
        echo "| good tenant | quiet | noisy |"
        echo "| --- | ---: | ---: |"
        printf '| req/s (median) | %.0f | %.0f |\n' "${qrps:-0}" "${nrps:-0}"
        printf '| p50 ms (median) | %.2f | %.2f |\n' "${q50:-0}" "${n50:-0}"
        printf '| p99 ms (median) | %.2f | %.2f |\n' "${q99:-0}" "${n99:-0}"
        printf '| failures (non-2xx + socket errors, all rounds) | %d | %d |\n' "$qfail" "$nfail"
        echo
        echo "Target: p99 noisy <= ${NOISY_FACTOR} x p99 quiet + ${NOISY_SLACK_MS} ms (= $limit ms), zero failures:" \
            "$verdict (p99 noisy ${n99:-n/a} ms)"
        total_time "$elapsed"
    } >"$report"
    show_report "$report"
}

# --- main -------------------------------------------------------------------------------------

command -v setsid >/dev/null || die "setsid (util-linux) is required"
[[ ${SKIP_INSTALL:-0} == 1 ]] || install_tools
command -v wrk >/dev/null || die "wrk is not installed"
command -v curl >/dev/null || die "curl is not installed"
[[ ${SKIP_BUILD:-0} == 1 ]] || build
check_available
setup_pinning "load generators"
if [[ $MODE == throughput ]]; then
    throughput
else
    noisy
fi

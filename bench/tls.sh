#!/usr/bin/env bash
# bench/tls.sh — TLS and HTTP/2: wsrun against Granian, hello world, one worker each.
#
# Rows (the issue's targets: wsrun >= 1.5x Granian on both):
#   tls   HTTP/1.1 keep-alive over TLS: wrk -t1 -c64 https://... ; wsrun --certfile/--keyfile,
#         granian --ssl-certificate/--ssl-keyfile (a self-signed P-256 certificate made here)
#   tls-wasm  the same over TLS, wsrun serving handlers/hello.wasm (--wasm /=...); Granian has no
#         WebAssembly host, so its figure is its Python hello of the tls row (the issue's
#         "Python and WASM routes" against the same Granian)
#   tls-wasm-warm  tls-wasm with the route at `requests_per_instance = WARM_REQUESTS` [1000]
#         (opt-in warm instances; not in the default ROWS)
#   h2    HTTP/2, cleartext with prior knowledge (h2c): h2load -t1 -c4 -m16 (64 streams over 4
#         connections); wsrun (h2c is detected by the preface), granian --http 2
# Each server is started alone, checked for a correct answer, warmed up (WARMUP s), measured
# (DURATION s) and stopped; the whole round runs ROUNDS times and the table shows the median
# req/s and wsrun / Granian. Server pinned to SERVER_CPU, the load generator to CLIENT_CPU.
#
# Environment (defaults in brackets):
#   DURATION [10]  ROUNDS [3]  WARMUP [2]  ROWS ["tls tls-wasm h2"]  BASE_PORT [18480]
#   WARM_REQUESTS [1000] (the tls-wasm-warm row)
#   SERVER_CPU [0]  CLIENT_CPU [1]  SKIP_INSTALL=1  SKIP_BUILD=1  WSRUN_BIN=path
#   SERVERS ["wsrun granian"] (wsrun alone: tools/build-pgo trains on its rows)
# Every process it starts runs in its own process group and is killed on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=SCRIPTDIR/lib.sh
source "$BENCH_DIR/lib.sh"

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-2}"
ROWS="${ROWS:-tls tls-wasm h2}"
HELLO_WASM="${HELLO_WASM:-$ROOT/handlers/hello.wasm}"
WARM_REQUESTS="${WARM_REQUESTS:-1000}"
BASE_PORT="${BASE_PORT:-18480}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
SERVERS="${SERVERS:-wsrun granian}"

make_work wsrun-tls       # RAW: server <TAB> row <TAB> round <TAB> req/s <TAB> note

install_tools() {
    apt_install_missing wrk=wrk nghttp2-client=h2load curl=curl openssl=openssl
    ensure_venv_with granian
}

make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
}

# Sets CMD to run server $1 for row $2 on port $3.
server_cmd() {
    local name=$1 row=$2 port=$3
    case $name/$row in
        wsrun/tls)
            CMD=("$WSRUN_BIN" hello:app --pythonpath "$APPS_DIR" --bind "127.0.0.1:$port"
                --certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem") ;;
        wsrun/tls-wasm)
            CMD=("$WSRUN_BIN" --wasm "/=$HELLO_WASM" --bind "127.0.0.1:$port"
                --certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem") ;;
        wsrun/tls-wasm-warm)
            printf '[[route]]\nprefix = "/"\nwasm = "%s"\nrequests_per_instance = %s\n' \
                "$HELLO_WASM" "$WARM_REQUESTS" >"$WORK/warm.toml"
            CMD=("$WSRUN_BIN" -c "$WORK/warm.toml" --bind "127.0.0.1:$port"
                --certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem") ;;
        wsrun/h2)
            CMD=("$WSRUN_BIN" hello:app --pythonpath "$APPS_DIR" --bind "127.0.0.1:$port") ;;
        granian/tls)
            CMD=("$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port" --workers 1
                --log-level warning --working-dir "$APPS_DIR"
                --ssl-certificate "$WORK/cert.pem" --ssl-keyfile "$WORK/key.pem" hello:app) ;;
        granian/h2)
            CMD=("$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$port" --workers 1
                --log-level warning --working-dir "$APPS_DIR" --http 2 hello:app) ;;
        *) die "unknown server/row $name/$row" ;;
    esac
}

row_url() {
    case $1 in tls | tls-wasm*) echo "https://127.0.0.1:$2/" ;; h2) echo "http://127.0.0.1:$2/" ;; esac
}

# The body (or "") a correct server answers on row $1 at $2.
answer() {
    case $1 in
        tls | tls-wasm*) curl -sS --max-time 5 -k "$2" || true ;;
        h2) curl -sS --max-time 5 --http2-prior-knowledge "$2" || true ;;
    esac
}

# One measurement of $2 seconds on row $1 against $3; prints "req/s<TAB>note".
load() {
    local row=$1 secs=$2 url=$3 out rps note=""
    case $row in
        tls | tls-wasm*)
            out=$(timeout --foreground $((secs + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c64 "-d${secs}s" \
                --timeout 5s "$url" 2>&1) || true
            rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
            note=$(wrk_note "$out")
            ;;
        h2)
            out=$(timeout --foreground $((secs + 30)) "${PIN_CLIENT[@]}" h2load -t1 -c4 -m16 \
                -D "$secs" "$url" 2>&1) || true
            rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i - 1) }' <<<"$out")
            note=$(awk '/^requests:/ { if ($0 !~ / 0 failed/) print $0 }' <<<"$out")
            ;;
    esac
    printf '%s\t%s\n' "${rps:-0}" "$note"
}

bench_one() {
    local name=$1 row=$2 round=$3 port url result expected="Hello, world!"
    # Granian has no WebAssembly host: its tls row is the reference for the tls-wasm rows.
    [[ $name == granian && $row == tls-wasm* ]] && return 0
    [[ $row == tls-wasm* ]] && expected="Hello from WebAssembly!"
    # A port per server and row: no run ever meets the previous one's socket.
    port=$BASE_PORT
    [[ $name == granian ]] && port=$((port + 1))
    [[ $row == h2 ]] && port=$((port + 2))
    [[ $row == tls-wasm ]] && port=$((port + 4))
    [[ $row == tls-wasm-warm ]] && port=$((port + 6))
    url=$(row_url "$row" "$port")
    server_cmd "$name" "$row" "$port"
    start_group "$WORK/$name-$row.log" "${PIN_SERVER[@]}" env RUST_BACKTRACE=0 "${CMD[@]}"
    local pid=$STARTED_PID got=""
    wait_port "$pid" "$port" && got=$(answer "$row" "$url" 2>&1)
    if [[ $got != "$expected"* ]]; then
        log "$name ($row) did not answer (got: ${got:0:80}); its log:"
        tail -n 5 "$WORK/$name-$row.log" >&2 || true
        printf '%s\t%s\t%s\t\tdid not answer\n' "$name" "$row" "$round" >>"$RAW"
        stop_server "$pid"
        return 0
    fi
    load "$row" "$WARMUP" "$url" >/dev/null
    local ticks=$(group_cpu_ticks "$pid") busy us
    result=$(load "$row" "$DURATION" "$url")
    ticks=$(($(group_cpu_ticks "$pid") - ticks))
    group_alive "$pid" || result="$(cut -f1 <<<"$result")	died during the run"
    stop_server "$pid"
    # The server's CPU over the run: its busy share of one core, and microseconds per request.
    read -r busy us < <(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$DURATION" \
        -v r="$(cut -f1 <<<"$result")" 'BEGIN { c = t / hz; printf "%.0f %.1f\n", 100 * c / s,
        (r > 0 ? 1e6 * c / (r * s) : 0) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$row" "$round" "$result" "$busy" "$us" >>"$RAW"
    log "round $round  $row  $name: $(cut -f1 <<<"$result") req/s, server CPU ${busy}% of a core," \
        "${us} us/request $(cut -f2 <<<"$result")"
}

# Median of column $3 (6: CPU %, 7: us/request; 5 is the note) of server $1's successful rounds of row $2.
median_cpu() {
    awk -F'\t' -v s="$1" -v r="$2" -v c="$3" '$1 == s && $2 == r && $4 > 0 { print $c }' "$RAW" |
        median 1
}

median_of() {
    awk -F'\t' -v s="$1" -v r="$2" '$1 == s && $2 == r && $4 != "" && $4 > 0 { print $4 }' "$RAW" | median 0
}

main() {
    local started row name round report w g wu gu label
    [[ ${SKIP_INSTALL:-} == 1 ]] || install_tools
    [[ ${SKIP_BUILD:-} == 1 ]] || cargo_build 0
    if [[ " $ROWS " == *" tls-wasm"* && ! -f $HELLO_WASM ]]; then
        (cd "$ROOT" && bash handlers/build.sh) >"$WORK/handlers-build.log" 2>&1 ||
            die "no $HELLO_WASM and handlers/build.sh failed (see $WORK/handlers-build.log)"
    fi
    setup_pinning "the load generator"
    make_cert
    started=$SECONDS
    for round in $(seq 1 "$ROUNDS"); do
        for row in $ROWS; do
            for name in $SERVERS; do bench_one "$name" "$row" "$round"; done
        done
    done
    mkdir -p "$RESULTS_DIR"
    report="$RESULTS_DIR/tls-$(date -u +%Y%m%dT%H%M%SZ).md"
    {
        echo "# wsrun TLS and HTTP/2 benchmark"
        echo
        echo "Machine: $(machine). Pinning: $PINNING. Rounds: $ROUNDS x ${DURATION}s (median)."
        echo
        echo "| row | wsrun req/s | Granian req/s | wsrun / Granian (target >= 1.5) | server CPU, % of a core: wsrun / Granian | CPU us per request: wsrun / Granian | Granian / wsrun in CPU per request |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        for row in $ROWS; do
            w=$(median_of wsrun "$row")
            g=$(median_of granian "${row%%-*}")
            case $row in
                tls) label="hello, HTTP/1.1 over TLS, wrk -c64" ;;
                tls-wasm) label="hello (wsrun: WASM route; Granian: its Python hello), TLS, wrk -c64" ;;
                tls-wasm-warm) label="the same, WASM route with requests_per_instance = $WARM_REQUESTS" ;;
                h2) label="hello, h2c, h2load -c4 -m16" ;;
            esac
            wu=$(median_cpu wsrun "$row" 7)
            gu=$(median_cpu granian "${row%%-*}" 7)
            echo "| $label | ${w:-n/a} | ${g:-n/a} | $(ratio "$w" "$g") |" \
                "$(median_cpu wsrun "$row" 6) / $(median_cpu granian "${row%%-*}" 6) |" \
                "$wu / $gu | $(ratio "$gu" "$wu") |"
        done
        echo
        echo "A server under 100% of its core while wrk's core is saturated is held back by the"
        echo "load generator: then the CPU per request, not req/s, compares the servers."
        total_time $((SECONDS - started))
    } >"$report"
    show_report "$report"
}

main "$@"

# shellcheck shell=bash
# bench/lib.sh — paths and helpers shared by the bench scripts; sourced, not run.
#
# The sourcing script sets BENCH_DIR (this folder) and ROOT (the repository root) before
# sourcing, and SERVER_CPU and CLIENT_CPU; make_work sets WORK and RAW, setup_pinning
# PIN_SERVER, PIN_CLIENT and PINNING.

# Paths every script uses (WSRUN_BIN and CARGO_TARGET_DIR may come from the environment).
# shellcheck disable=SC2034  # read by the sourcing scripts
APPS_DIR="$BENCH_DIR/apps"
# shellcheck disable=SC2034
VENV="$BENCH_DIR/.venv"
# shellcheck disable=SC2034
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WSRUN_BIN="${WSRUN_BIN:-$TARGET_DIR/release/wsrun}"

declare -a PGIDS=()          # process groups started here, killed on exit
declare -A UNAVAILABLE=()    # server -> reason it shows as n/a
# shellcheck disable=SC2034  # VERSION is filled and read by the sourcing script
declare -A VERSION=()        # server -> version line for the report

# Messages go to stderr, tagged with the script's name: "[core.sh 12:34:56] ...".
log() { printf '[%s %(%H:%M:%S)T] %s\n' "${0##*/}" -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Make the scratch directory WORK (mktemp -d under TMPDIR, named $1.XXXXXX) with an empty
# RAW="$WORK/raw.tsv", and arrange for every started process group and WORK to go on exit.
make_work() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    RAW="$WORK/raw.tsv"
    : >"$RAW"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# Make bench/.venv (with python3.11 where there is one) if it is missing, and pip install into
# it each PACKAGE that does not import yet (a package's import name is its name here).
ensure_venv_with() {
    local py package
    py=$(command -v python3.11 || command -v python3) || die "no python3 found"
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating $VENV with $py"
        "$py" -m venv "$VENV"
    fi
    for package in "$@"; do
        "$VENV/bin/python" -c "import $package" 2>/dev/null || "$VENV/bin/pip" install -q "$package" ||
            log "warning: pip install $package failed"
    done
}

# Sets CMD to run the hello app (bench/apps/hello.py) under server $1 (wsrun or granian, one
# worker) on port $2.
hello_server_cmd() {
    case $1 in
        wsrun) CMD=("$WSRUN_BIN" hello:app --pythonpath "$APPS_DIR" --bind "127.0.0.1:$2") ;;
        granian)
            CMD=("$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$2" --workers 1
                --log-level warning --working-dir "$APPS_DIR" hello:app) ;;
        *) die "unknown server $1" ;;
    esac
}

# --- process handling -------------------------------------------------------------------------

# Processes of group $1 that are not zombies (a reaped-later leader stays as a zombie).
group_alive() {
    local pgid=$1 p stat
    for p in $(pgrep -g "$pgid" 2>/dev/null || true); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        [[ ${stat:0:1} == Z ]] || return 0
    done
    return 1
}

# CPU time (user + system, in clock ticks) used so far by the live processes of group $1.
group_cpu_ticks() {
    local p stat fields total=0
    for p in $(pgrep -g "$1" 2>/dev/null || true); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        read -ra fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

stop_group() {
    local pgid=$1 i
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        group_alive "$pgid" || break
        sleep 0.1
    done
    if group_alive "$pgid"; then
        log "process group $pgid ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    wait "$pgid" 2>/dev/null || true
}

cleanup() {
    local status=$? pgid
    trap - EXIT INT TERM HUP
    for pgid in "${PGIDS[@]}"; do
        stop_group "$pgid"
    done
    rm -rf "$WORK"
    exit "$status"
}

# Start "$@" in a new session (pgid == pid) with output to $1; sets STARTED_PID.
# Not a job-control shell, so the background child is no group leader and setsid execs in
# place: $! is the process itself, and its process group is ours to kill.
start_group() {
    local logfile=$1
    shift
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    STARTED_PID=$!
    PGIDS+=("$STARTED_PID")
    await_own_group "$STARTED_PID"
}

# Wait (2 s at most) until process $1 leads its own process group: until setsid has run in the
# child, the group does not exist, and `group_alive` would call a starting server dead (and
# `stop_group` would then signal no one and wait for it forever).
await_own_group() {
    local pid=$1 i stat fields
    for ((i = 0; i < 200; i++)); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
        read -r -a fields <<<"${stat##*) }"
        [[ ${fields[2]} == "$pid" ]] && return 0
        sleep 0.01
    done
}

# Drop $1 from the groups killed on exit (it has ended, or been stopped).
forget_group() {
    local pid=$1 kept=() p
    for p in "${PGIDS[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    PGIDS=("${kept[@]}")
}

stop_server() {
    stop_group "$1"
    forget_group "$1"
}

# Poll every 0.1 s, at most $2 times, until "${@:3}" succeeds; fail if process group $1 dies.
wait_until() {
    local pid=$1 tries=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        group_alive "$pid" || return 1
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http://127.0.0.1:$1/ answers with any HTTP status.
http_answers() {
    local code
    port_open "$1" || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/" || true)
    [[ $code != 000 && -n $code ]]
}

# Sets TARGET (module:app in bench/apps) and PATH_QUERY (what wrk asks for) for the app
# scenario $1 of profile.sh and instructions.sh: hello, flask or django.
app_scenario() {
    case $1 in
        hello) TARGET=hello:app PATH_QUERY=/ ;;
        flask) TARGET=flask_json:app PATH_QUERY='/users/7?q=a' ;;
        django) TARGET=django_app:app PATH_QUERY='/hello/?name=wsrun' ;;
        *) die "unknown scenario $1 (known: hello flask django)" ;;
    esac
}

# The busiest process of group $1 (a pre-fork worker, not its supervisor).
busiest() {
    ps -o pid=,pcpu= -g "$1" | sort -k2 -nr | awk 'NR == 1 { print $1 }'
}

# Wait until 127.0.0.1:$2 accepts, or fail if process $1 dies or 30 s pass.
wait_port() { wait_until "$1" 300 port_open "$2"; }

# Wait until http://127.0.0.1:$2/ answers with any HTTP status, or fail if process $1 dies or
# 60 s pass (wasmtime serve compiles the component before it listens).
wait_http() { wait_until "$1" 600 http_answers "$2"; }

# --- setup ------------------------------------------------------------------------------------

# apt-get install (as root, or with sudo) what is missing among PACKAGE=CHECK arguments, in
# their order: CHECK is a command that must be on PATH, or an /absolute/path that must exist.
apt_install_missing() {
    local sudo=() missing=() arg check
    for arg in "$@"; do
        check=${arg#*=}
        if [[ $check == /* ]]; then
            [[ -e $check ]] || missing+=("${arg%%=*}")
        else
            command -v "$check" >/dev/null || missing+=("${arg%%=*}")
        fi
    done
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        log "installing ${missing[*]} with apt-get"
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# cargo build --release -p wsrun, with -p hyper-hello too when $1 is 1. If wsrun does not build:
# with hyper-hello wanted, build it alone and mark wsrun n/a; without, give up.
cargo_build() {
    local with_hyper=$1 pkgs=(-p wsrun)
    [[ $with_hyper == 1 ]] && pkgs+=(-p hyper-hello)
    log "cargo build --release ${pkgs[*]}"
    if ! (cd "$ROOT" && cargo build --release "${pkgs[@]}") >"$WORK/build.log" 2>&1; then
        [[ $with_hyper == 1 ]] || { tail -n 30 "$WORK/build.log" >&2; die "wsrun does not build"; }
        log "warning: wsrun does not build (last lines below); building hyper-hello alone"
        tail -n 15 "$WORK/build.log" >&2
        (cd "$ROOT" && cargo build --release -p hyper-hello) >"$WORK/build.log" 2>&1 ||
            { tail -n 30 "$WORK/build.log" >&2; die "hyper-hello does not build"; }
        # shellcheck disable=SC2034  # read by the sourcing script
        UNAVAILABLE[wsrun]="does not build"
    fi
}

# PIN_SERVER / PIN_CLIENT: taskset prefixes for SERVER_CPU / CLIENT_CPU (empty on a 1-CPU
# machine or without taskset); PINNING says which, naming the client side $1 ("wrk", ...).
# shellcheck disable=SC2034  # all three are used by the sourcing script
setup_pinning() {
    if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
        PIN_SERVER=(taskset -c "$SERVER_CPU")
        PIN_CLIENT=(taskset -c "$CLIENT_CPU")
        PINNING="server on CPU $SERVER_CPU, $1 on CPU $CLIENT_CPU"
    else
        PIN_SERVER=()
        PIN_CLIENT=()
        PINNING="not pinned (fewer than 2 CPUs or no taskset)"
    fi
}

# --- wrk and numbers --------------------------------------------------------------------------

# wrk's socket-error line, shortened for a note ("" when there is none).
socket_note() { grep 'Socket errors' | sed 's/^ *Socket errors: *//' || true; }

# The note for wrk's output $1: its non-2xx count and socket errors, "; "-joined ("" if none).
wrk_note() {
    local out=$1 note=""
    if grep -q 'Non-2xx' <<<"$out"; then
        note="non-2xx: $(awk '/Non-2xx/ { print $NF }' <<<"$out")"
    fi
    if grep -q 'Socket errors' <<<"$out"; then
        note="${note:+$note; }$(socket_note <<<"$out")"
    fi
    printf '%s' "$note"
}

# Median of the numbers on stdin (nothing for none); the mean of the middle two, with $1 [2]
# decimals, for an even count.
median() {
    sort -n | awk -v d="${1:-2}" '{ v[NR] = $1 } END { if (NR == 0) exit; m = int((NR + 1) / 2); if (NR % 2) print v[m]; else printf "%." d "f\n", (v[m] + v[m + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# --- report -----------------------------------------------------------------------------------

# "N CPUs (model), kernel", for a report's Machine line.
machine() {
    echo "$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr)"
}

# A report's last lines: a blank line and "Total time: $1 s (excluding install and build)."
total_time() {
    echo
    echo "Total time: $1 s (excluding install and build)."
}

# Print report file $1 between blank lines and log where it is.
show_report() {
    echo
    cat "$1"
    echo
    log "written to $1"
}

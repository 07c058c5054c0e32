#!/usr/bin/env bash
# bench/wasm_python.sh — a Python component (componentize-py, ~18 MB: CPython and its heap
# snapshot) under wsrun against `wasmtime serve` with the pooling allocator, same component,
# same run. It is bench/wasm.sh's throughput mode on handlers/other/python.wasm (built by
# handlers/other/build.sh if missing): servers one at a time, server on CPU 0, wrk -t1 on CPU 1,
# interleaved rounds with the order rotated, medians, ratios. Target: wsrun >= 3x tuned
# wasmtime serve, with a fresh instance per request (wsrun's default); the `wsrun-warm` row
# is the same component with `requests_per_instance = WARM_REQUESTS` [1000] (opt-in).
#
#   bash bench/wasm_python.sh            (env as bench/wasm.sh: DURATION ROUNDS WARMUP
#                                         CONNECTIONS SERVERS WSRUN_ARGS WASMTIME_BIN ...)
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
COMPONENT="$ROOT/handlers/other/python.wasm"
[[ -f $COMPONENT ]] || bash "$ROOT/handlers/other/build.sh"
export HELLO_WASM="$COMPONENT"
export HELLO_TEXT="hello from python"
export TARGET_RATIO=3
export SERVERS="${SERVERS:-wsrun wsrun-warm wasmtime wasmtime-tuned}"
export CONNECTIONS="${CONNECTIONS:-16}"
exec bash "$BENCH_DIR/wasm.sh" throughput

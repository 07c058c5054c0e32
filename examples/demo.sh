#!/usr/bin/env bash
# Runs the demo on a fresh machine: installs Flask, builds wsrun, serves examples/demo.toml
# on http://127.0.0.1:8888/ (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check "flask>=3,<4"
cargo build --release -p wsrun
exec target/release/wsrun -c examples/demo.toml "$@"

#!/usr/bin/env bash
# The README's demo, on a fresh machine: a legacy Flask app keeps `/` while its new API,
# `/api/v2`, is a sandboxed WebAssembly component (examples/migrate/). Installs Flask and the
# wasm32-wasip2 target if missing, builds wsrun and the component, then serves
# examples/migrate/wsrun.toml on http://127.0.0.1:8888/ (Ctrl-C stops it).
# Extra arguments go to wsrun and override the file, e.g. `--bind 127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check "flask>=3,<4"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Explicit target dirs: the paths below (and in wsrun.toml) must not depend on CARGO_TARGET_DIR.
cargo build --release -p wsrun --target-dir target
cargo build --release --manifest-path examples/migrate/api_v2/Cargo.toml \
    --target wasm32-wasip2 --target-dir examples/migrate/api_v2/target

# Where to point curl: the address given with -b/--bind, else the file's.
addr="127.0.0.1:8888"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
    -b | --bind) addr="${args[i + 1]:-$addr}" ;;
    --bind=*) addr="${args[i]#--bind=}" ;;
    esac
done
case "$addr" in
:*) addr="127.0.0.1$addr" ;;
0.0.0.0:*) addr="127.0.0.1:${addr#0.0.0.0:}" ;;
*:*) ;;
*) addr="127.0.0.1:$addr" ;;
esac
url="http://$addr"

cat <<EOF

wsrun migration demo: Flask keeps /, WebAssembly serves /api/v2
  $url/                   the legacy app's home page (Flask)
  $url/users              users, the legacy pages (Flask)
  $url/api/v1/users       the old API (Flask)
  $url/api/v2/users       the new API (WebAssembly)
  $url/api/v2/users/1     one user (WebAssembly)
  $url/api/v2/health      {"status":"ok","runtime":"wasm",...} (WebAssembly)
  curl -i -X POST $url/api/v2/users    405 with allow: GET, HEAD
Ctrl-C stops the server.

EOF
exec target/release/wsrun -c examples/migrate/wsrun.toml "$@"

#!/usr/bin/env bash
# Builds every handler crate in this directory for wasm32-wasip2 and copies each
# component to handlers/NAME.wasm (NAME = the crate's directory name).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

rustup target list --installed | grep -q wasm32-wasip2 || rustup target add wasm32-wasip2

# Always build into handlers/target, whatever the caller's CARGO_TARGET_DIR says.
export CARGO_TARGET_DIR="$here/target"
cargo build --release --target wasm32-wasip2

out="$CARGO_TARGET_DIR/wasm32-wasip2/release"
for manifest in "$here"/*/Cargo.toml; do
    name="$(basename "$(dirname "$manifest")")"
    artifact="$out/${name//-/_}.wasm"
    if [[ ! -f "$artifact" ]]; then
        echo "build.sh: missing $artifact" >&2
        exit 1
    fi
    cp "$artifact" "$here/$name.wasm"
    printf '%-16s %9d bytes  handlers/%s.wasm\n' "$name" "$(wc -c <"$here/$name.wasm")" "$name"
done

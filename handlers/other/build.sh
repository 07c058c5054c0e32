#!/usr/bin/env bash
# Builds the handlers written in other languages into wasi:http components:
#   python/app.py -> handlers/other/python.wasm   (componentize-py, from PyPI)
#   js/app.js     -> handlers/other/js.wasm       (jco componentize, npm, in js/node_modules)
# Both target the world in wit/ (wasi:http/proxy@0.2.10). A component newer than its sources
# and the WIT is kept (each build takes a minute or two of CPU). Needs `componentize-py` on
# PATH and node/npm; `tests/run` installs them. Run with --force to rebuild anyway.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
force="${1:-}"
world="wsrun:other-handlers/handler"

# fresh OUT SOURCES...: true when OUT exists and is newer than every SOURCE (files or dirs)
fresh() {
    local out="$1"
    shift
    [[ "$force" != "--force" && -f "$out" ]] || return 1
    [[ -z "$(find "$@" -newer "$out" -print -quit)" ]]
}

if fresh python.wasm python/app.py wit; then
    echo "python.wasm is up to date"
else
    componentize-py -d wit -w "$world" componentize --python-path python app -o python.wasm.tmp
    mv python.wasm.tmp python.wasm
fi

if [[ ! -x js/node_modules/.bin/jco ]]; then
    (cd js && npm ci --no-audit --no-fund)
fi
if fresh js.wasm js/app.js js/package-lock.json wit; then
    echo "js.wasm is up to date"
else
    # jco runs wasm-tools sandboxed: the WIT and the source must sit under the working dir.
    js/node_modules/.bin/jco componentize js/app.js --wit wit --world-name "$world" \
        --out js.wasm.tmp.wasm
    mv js.wasm.tmp.wasm js.wasm
fi

for name in python js; do
    printf '%-8s %9d bytes  handlers/other/%s.wasm\n' "$name" "$(wc -c <"$name.wasm")" "$name"
done

"""Run a WSGI app under bjoern for bench/core.sh.

Usage: python run_bjoern.py MODULE:ATTR HOST PORT [APPS_DIR]

bjoern has no command line of its own; this imports the app (APPS_DIR, default `apps/`
beside this file, is put first on sys.path) and calls `bjoern.run(app, host, port)`:
one process, one thread, libev event loop.
"""

import importlib
import sys
from pathlib import Path

import bjoern  # type: ignore[import-untyped, unused-ignore]


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    target, host, port = argv[0], argv[1], int(argv[2])
    apps_dir = argv[3] if len(argv) == 4 else str(Path(__file__).resolve().parent / "apps")
    sys.path.insert(0, apps_dir)
    module_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    print(f"bjoern serving {target} on http://{host}:{port}", file=sys.stderr, flush=True)
    bjoern.run(app, host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

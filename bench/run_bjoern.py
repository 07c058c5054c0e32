"""Run a WSGI app under bjoern for bench/core.sh.

Usage: python run_bjoern.py MODULE:ATTR HOST PORT [APPS_DIR] [PROCESSES]

bjoern has no command line of its own; this imports the app (APPS_DIR, default `apps/`
beside this file, is put first on sys.path) and calls `bjoern.run(app, host, port)`:
one process, one thread, libev event loop. With PROCESSES > 1 (bench/core.sh `WORKERS`)
it forks that many processes after the import, each listening on the port with
SO_REUSEPORT (`bjoern.run(..., reuse_port=True)`), so the kernel spreads connections over
them as it does over wsrun's pre-forked workers.
"""

import importlib
import os
import sys
from pathlib import Path

import bjoern  # type: ignore[import-untyped, unused-ignore]


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    target, host, port = argv[0], argv[1], int(argv[2])
    apps_dir = argv[3] if len(argv) >= 4 else str(Path(__file__).resolve().parent / "apps")
    processes = int(argv[4]) if len(argv) == 5 else 1
    sys.path.insert(0, apps_dir)
    module_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    print(f"bjoern serving {target} on http://{host}:{port}", file=sys.stderr, flush=True)
    if processes == 1:
        bjoern.run(app, host, port)
        return 0
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    bjoern.run(app, host, port, reuse_port=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

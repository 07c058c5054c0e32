"""`--watch` next to configured routes: a `[[route]]` at the same prefix as a watched handler
wins, and stays when the watched file comes or goes (README: "A route configured at the same
prefix wins over a watched one")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import requests

from conftest import Launcher, Server, wait_for
from wasm_support import hello_body, state_args, wasm_handler

#: How long a watched change may take to show on a loaded machine.
WAIT = 20.0


def _start(launcher: Launcher, tmp: Path, *watched_files: str) -> tuple[Server, Path]:
    """A server with `[[route]] prefix = "/hello"` serving the echo handler, watching a
    directory that holds `watched_files` (each a copy of `hello.wasm`)."""
    cfg = tmp / "wsrun.toml"
    cfg.write_text(f'[[route]]\nprefix = "/hello"\nwasm = "{wasm_handler("echo")}"\n')
    watched = tmp / "live"
    watched.mkdir()
    for name in watched_files:
        shutil.copyfile(wasm_handler("hello"), watched / name)
    args = ["-c", str(cfg), "--watch", str(watched), *state_args(tmp)]
    return launcher.start(args, cwd=tmp), watched


def _add_watched(watched: Path, name: str) -> None:
    """Puts a copy of `hello.wasm` at `watched/name` in one step (the watcher never sees a
    partial file: the copy is made under a hidden name, which it ignores, then renamed)."""
    tmp = watched / f".{name}.tmp"
    shutil.copyfile(wasm_handler("hello"), tmp)
    os.replace(tmp, watched / name)


def _served_by_configured_route(srv: Server) -> bool:
    """Whether `/hello` is answered by the configured echo route (not the watched hello)."""
    r = requests.get(srv.url + "/hello", timeout=10)
    return r.status_code == 200 and r.headers.get("x-echo-script-name") == "/hello"


def _status(srv: Server, path: str) -> int:
    try:
        return requests.get(srv.url + path, timeout=10).status_code
    except requests.RequestException:
        return -1


def _changes_applied(srv: Server, watched: Path) -> None:
    """Waits until every earlier watched change is in the worker's router: a later file is
    added, and its route answers only once the changes before it were applied (in order)."""
    _add_watched(watched, "later.wasm")
    assert wait_for(lambda: _status(srv, "/later") == 200, WAIT), srv.log()[-3000:]


def test_removing_a_watched_file_keeps_the_configured_route(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv, watched = _start(launcher, tmp_path, "hello.wasm")
    assert _served_by_configured_route(srv), srv.log()[-3000:]

    (watched / "hello.wasm").unlink()
    removed = "handler `hello` on /hello: file removed; route removed"
    assert wait_for(lambda: removed in srv.log(), WAIT), srv.log()[-3000:]
    _changes_applied(srv, watched)

    assert _served_by_configured_route(srv), srv.log()[-3000:]


def test_adding_a_watched_file_at_a_configured_prefix_does_not_replace_it(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv, watched = _start(launcher, tmp_path)
    assert _served_by_configured_route(srv), srv.log()[-3000:]

    _add_watched(watched, "hello.wasm")
    # Logged by the worker as it adds the watched route behind the configured one.
    shadowed = "handler `hello` on /hello: /hello is already routed; the configured route wins"
    assert wait_for(lambda: shadowed in srv.log(), WAIT), srv.log()[-3000:]

    r = requests.get(srv.url + "/hello", timeout=10)
    assert r.text != hello_body(0)
    assert _served_by_configured_route(srv), srv.log()[-3000:]

"""Canaries (`[route.canary]`): a share of a route's requests served by another handler,
marked `wsrun-variant: canary`, sticky by cookie or header, rolled back across all workers when
its 5xx rate exceeds the primary's, and moved by editing `percent` and reloading.

The primary is `migrate_app:primary` (tests/apps); the canary the `hello` component, or the
`trap` component for one that fails.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, WAIT, wait_for
from support.wasm import wasm_handler

HELLO = "Hello from WebAssembly!"


def _write(tmp: Path, canary: str, workers: int = 1) -> Path:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f'[server]\nstate_dir = "{tmp / "state"}"\npythonpath = ["{APPS}"]\n'
        f'workers = {workers}\naccess_log = "-"\naccess_log_format = "json"\n\n'
        '[[route]]\nprefix = "/app"\npython = "migrate_app:primary"\n'
        f"  [route.canary]\n{canary}\n"
    )
    return cfg


def _start(launcher: Launcher, tmp: Path, canary: str, workers: int = 1) -> Server:
    return launcher.start(["-c", str(_write(tmp, canary, workers))], workers=workers)


def is_canary(r: requests.Response) -> bool:
    canary = r.headers.get("wsrun-variant") == "canary"
    assert canary == r.text.startswith(HELLO), (r.headers, r.text)
    return canary


def test_the_share_holds_over_2000_requests(launcher: Launcher, tmp_path: Path) -> None:
    hello = wasm_handler("hello")
    srv = _start(launcher, tmp_path, f'  wasm = "{hello}"\n  percent = 25')
    with requests.Session() as s:
        served = [is_canary(s.get(srv.url + "/app/x", timeout=WAIT)) for _ in range(2000)]
    share = 100 * sum(served) / len(served)
    assert 22 <= share <= 28, share
    # The access log names the variant.
    assert wait_for(lambda: '"variant":"canary"' in srv.log())


def test_sticky_clients_stay_on_their_side(launcher: Launcher, tmp_path: Path) -> None:
    hello = wasm_handler("hello")
    canary = f'  wasm = "{hello}"\n  percent = 50\n  sticky = "cookie:session"'
    srv = _start(launcher, tmp_path, canary)
    sides = set()
    for user in range(40):
        cookies = {"session": f"user-{user}"}
        seen = {
            is_canary(requests.get(srv.url + "/app/x", cookies=cookies, timeout=WAIT))
            for _ in range(10)
        }
        assert len(seen) == 1, user
        sides |= seen
    assert sides == {True, False}


def test_a_failing_canary_is_rolled_back_on_all_workers(launcher: Launcher, tmp_path: Path) -> None:
    trap = wasm_handler("trap")
    canary = f'  wasm = "{trap}"\n  percent = 50\n  rollback_5xx_rate = 0.2\n  rollback_window = 20'
    srv = _start(launcher, tmp_path, canary, workers=2)
    statuses = []
    for _ in range(200):
        r = requests.get(srv.url + "/app/x", headers={"Connection": "close"}, timeout=WAIT)
        statuses.append(r.status_code)
    assert 500 in statuses[:100]
    # After the rollback every worker sends everything to the primary.
    assert statuses[-60:] == [200] * 60
    assert wait_for(lambda: srv.log_count("canary rolled back") == 1), srv.log()

    def rollbacks() -> int:
        done = run_wsrun(["migrate", "report", "-c", str(tmp_path / "wsrun.toml"), "--json"])
        if done.code != 0:
            return -1
        routes = json.loads(done.out[done.out.index("{") :])["routes"]
        return sum(r["rollbacks"] for r in routes)

    assert wait_for(lambda: rollbacks() == 1)


def test_a_reload_with_a_new_percent_moves_traffic_without_dropping_requests(
    launcher: Launcher, tmp_path: Path
) -> None:
    hello = wasm_handler("hello")
    srv = _start(launcher, tmp_path, f'  wasm = "{hello}"\n  percent = 0', workers=2)
    assert not any(is_canary(requests.get(srv.url + "/app/x", timeout=WAIT)) for _ in range(50))
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                r = requests.get(srv.url + "/app/x", headers={"Connection": "close"}, timeout=WAIT)
                if r.status_code != 200:
                    failures.append(str(r.status_code))
            except requests.RequestException as e:
                failures.append(repr(e))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        _write(tmp_path, f'  wasm = "{hello}"\n  percent = 100', workers=2)
        done = run_wsrun(["reload", "-c", str(tmp_path / "wsrun.toml")])
        assert done.code == 0, done.out

        def all_canary() -> bool:
            return all(is_canary(requests.get(srv.url + "/app/x", timeout=WAIT)) for _ in range(20))

        assert wait_for(all_canary)
    finally:
        stop.set()
        thread.join()
    assert failures == []

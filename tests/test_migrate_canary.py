"""Canaries (`[route.canary]`): a share of a route's requests served by another handler,
marked `wsrun-variant: canary`, sticky by cookie or header, rolled back across all workers when
its 5xx rate exceeds the primary's, and moved by editing `percent` and reloading.

The primary is `migrate_app:primary` (tests/apps); the canary the `hello` component, or the
`trap` component for one that fails.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import requests

from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, WAIT, wait_for
from support.wasm import wasm_handler

HELLO = "Hello from WebAssembly!"


def _write(tmp: Path, canary: str, workers: int = 1, log_format: str = "json") -> Path:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f'[server]\nstate_dir = "{tmp / "state"}"\npythonpath = ["{APPS}"]\n'
        f'workers = {workers}\naccess_log = "-"\naccess_log_format = "{log_format}"\n\n'
        '[[route]]\nprefix = "/app"\npython = "migrate_app:primary"\n'
        f"  [route.canary]\n{canary}\n"
    )
    return cfg


def _start(
    launcher: Launcher, tmp: Path, canary: str, workers: int = 1, log_format: str = "json"
) -> Server:
    return launcher.start(["-c", str(_write(tmp, canary, workers, log_format))], workers=workers)


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


def _half_canary(launcher: Launcher, tmp: Path, log_format: str) -> tuple[Server, dict[str, bool]]:
    """A 50% canary, and for each of 40 distinct targets whether the canary served it."""
    srv = _start(
        launcher, tmp, f'  wasm = "{wasm_handler("hello")}"\n  percent = 50', 1, log_format
    )
    with requests.Session() as s:
        served = {
            f"/app/x?i={i}": is_canary(s.get(srv.url + f"/app/x?i={i}", timeout=WAIT))
            for i in range(40)
        }
    assert set(served.values()) == {True, False}
    return srv, served


def test_json_access_lines_name_exactly_the_canary_responses(
    launcher: Launcher, tmp_path: Path
) -> None:
    srv, served = _half_canary(launcher, tmp_path, "json")

    def logged() -> dict[str, str | None]:
        lines = [json.loads(x) for x in srv.stdout().splitlines() if x.startswith("{")]
        return {line["path"]: line.get("variant", "absent") for line in lines}

    assert wait_for(lambda: set(served) <= set(logged())), srv.log()
    variants = logged()
    # "canary" on a canary's line; no `variant` key at all on the primary's.
    assert {path: variants[path] for path in served} == {
        path: "canary" if canary else "absent" for path, canary in served.items()
    }


def test_combined_access_lines_keep_their_fixed_format_for_a_canary(
    launcher: Launcher, tmp_path: Path
) -> None:
    """The combined format is the fixed Apache/nginx one that log tools parse: nothing is
    appended for a canary (the side is in the JSON format's `variant` and the header)."""
    srv, served = _half_canary(launcher, tmp_path, "combined")
    combined = re.compile(
        r"^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
        r'"GET (/app/x\?i=\d+) HTTP/1\.1" 200 \d+ "-" "python-requests/[\d.]+"$'
    )

    def lines() -> list[str]:
        return [x for x in srv.stdout().splitlines() if "/app/x?i=" in x]

    assert wait_for(lambda: len(lines()) == len(served)), srv.log()
    matched = {m.group(1) for m in map(combined.match, lines()) if m}
    assert matched == set(served), lines()


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

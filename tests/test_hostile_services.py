"""Issue 11, findings 4 and 6: a hostile tenant's jobs and timers, each attack contained.

One server (one worker, `[jobs] concurrency = 4`, so one tenant's share of the delivery
slots is 2) hosts the `hostile` component (handlers/hostile, `?attack=` modes of its
`services` module) in one attacker tenant per attack, each with small quotas, plus a `good`
tenant whose `jobs` handler (handlers/jobs) must keep working. Every attacker tenant routes
`/h` to `hostile`, `/sink` to `jobs` (max_body_size 64KiB) and `/slow` to `probe` (its
`?sleep_ms=` job target). The hostile answer is `accepted=A refused=R first_refusal=...`.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support.launcher import Server
from support.paths import APPS, WAIT, wait_for, wsrun_bin
from support.procfs import proc_status_kib
from support.wasm import state_args, wasm_handler

ATTACKERS = ("jobs", "bytes", "timers", "slow", "bulk")
#: The quotas every attacker tenant gets (the `bulk` one keeps the default bytes).
QUOTAS = """max_jobs = 50
max_timers = 5
min_timer_period = "1s"
max_attempts = 3
"""
_MARKS = itertools.count(1)
#: The worker's RSS after the big-body attack (one worker, idle ~40 MiB; the attack sent
#: 40 x 8 MiB of bodies through it).
RSS_BOUND_MIB = 200


def tenant(name: str, extra: str = "") -> str:
    hostile, jobs, probe = wasm_handler("hostile"), wasm_handler("jobs"), wasm_handler("probe")
    return f"""
[[tenant]]
name = "{name}"
hosts = ["{name}.test"]
{extra}
  [[tenant.route]]
  prefix = "/h"
  wasm = "{hostile}"

  [[tenant.route]]
  prefix = "/sink"
  wasm = "{jobs}"
  max_body_size = "64KiB"

  [[tenant.route]]
  prefix = "/slow"
  wasm = "{probe}"
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile-services")
    jobs = wasm_handler("jobs")
    attackers = "".join(
        tenant(name, QUOTAS + ('max_job_bytes = "1MiB"\n' if name == "bytes" else ""))
        for name in ATTACKERS
    )
    cfg = tmp / "wsrun.toml"
    cfg.write_text(
        f"""[server]
workers = 1

[jobs]
concurrency = 4

[[route]]
prefix = "/app"
python = "jobs_app:app"

[[route]]
prefix = "/tiny"
python = "jobs_app:app"
max_body_size = 16

[[route]]
prefix = "/ops"
wasm = "{jobs}"
{attackers}
[[tenant]]
name = "good"
hosts = ["good.test"]

  [[tenant.route]]
  prefix = "/jobs"
  wasm = "{jobs}"

[[tenant]]
name = "org"
hosts = ["org.test"]

  [[tenant.route]]
  prefix = "/jobs"
  wasm = "{jobs}"
"""
    )
    server = Server(tmp, name="hostile-services")
    try:
        server.start(["-c", str(cfg), "--pythonpath", str(APPS), *state_args(tmp)], cwd=tmp)
        yield server
    finally:
        server.stop()


def attack(srv: Server, who: str, query: str) -> tuple[int, int, str]:
    """Runs `?attack=...` as tenant `who`; returns (accepted, refused, first refusal)."""
    r = requests.get(f"{srv.url}/h?attack={query}", headers={"Host": f"{who}.test"}, timeout=WAIT)
    assert r.status_code == 200, r.text
    m = re.fullmatch(r"accepted=(\d+) refused=(\d+) first_refusal=(.*)\n", r.text)
    assert m, r.text
    return int(m[1]), int(m[2]), m[3]


def good_job_delivered(srv: Server) -> str:
    """Has the `good` tenant queue a job to its own `jobs` handler; returns its marker once
    the handler has run as that job."""
    mark = f"good-{time.monotonic_ns()}-{next(_MARKS)}"
    r = requests.post(
        f"{srv.url}/jobs/defer?to=/jobs/work",
        data=mark.encode(),
        headers={"Host": "good.test"},
        timeout=WAIT,
    )
    assert r.status_code == 200, r.text
    line = f"tenant `good` handler `jobs` on /jobs stdout: jobs: work job={r.text} "
    assert srv.wait_log(line), srv.log()[-3000:]
    return line


def journal_bytes(srv: Server) -> int:
    """Bytes of the journal and its WAL in the state directory."""
    state = srv.tmp / "state"
    return sum(p.stat().st_size for p in state.glob("jobs.sqlite3*") if p.is_file())


def test_job_flood_stops_at_max_jobs(srv: Server) -> None:
    accepted, refused, why = attack(srv, "jobs", "jobs&n=400&delay_ms=600000&to=/sink")
    assert (accepted, refused) == (50, 350)
    assert why == (
        "unavailable: tenant jobs holds 50 jobs (pending or dead-lettered), its max_jobs "
        "of 50; more wait until some are delivered or purged"
    )
    # Counted from the journal: a later request of the same tenant is refused at once.
    assert attack(srv, "jobs", "jobs&n=3&to=/sink")[:2] == (0, 3)
    label = "tenant `jobs` handler `hostile` on /h: defer.enqueue refused: tenant jobs holds"
    assert srv.wait_log(label), srv.log()[-3000:]
    assert srv.wait_log("350 service calls in all were refused by a limit"), srv.log()[-3000:]
    # Another tenant is not affected.
    good_job_delivered(srv)


def test_big_bodies_are_refused_by_the_targets_limit_and_max_job_bytes(srv: Server) -> None:
    before = journal_bytes(srv)
    accepted, refused, why = attack(srv, "bytes", f"big-jobs&n=40&size={8 << 20}&to=/sink")
    assert (accepted, refused) == (0, 40)
    assert why == (
        f"invalid: the job's body of {8 << 20} bytes is over the max_body_size of 64KiB "
        'of the route serving "/sink"'
    )
    # Bodies the target takes, up to the tenant's max_job_bytes of 1 MiB.
    size = 60 << 10
    accepted, refused, why = attack(srv, "bytes", f"big-jobs&n=40&size={size}&delay_ms=600000")
    assert accepted == (1 << 20) // (size + 100) and refused == 40 - accepted, (accepted, why)
    assert why.startswith("unavailable: tenant bytes's jobs would take "), why
    assert why.endswith(" bytes in the journal, over its max_job_bytes of 1MiB"), why
    assert srv.wait_log("tenant `bytes` handler `hostile` on /h: defer.enqueue refused")
    # The journal grew by about the quota, not by 40 x 8 MiB; nor did the worker keep them.
    assert journal_bytes(srv) - before < 8 << 20, journal_bytes(srv) - before
    rss_mib = proc_status_kib(srv.worker_pids()[0], "VmRSS") // 1024
    assert rss_mib < RSS_BOUND_MIB, rss_mib


def test_python_job_over_the_targets_max_body_size_is_a_value_error(srv: Server) -> None:
    r = requests.get(f"{srv.url}/app/enqueue?path=/tiny/sink&body={'x' * 40}", timeout=WAIT)
    # The app answers 400 with the exception it caught.
    assert (r.status_code, r.text) == (
        400,
        "ValueError: the job's body of 40 bytes is over the max_body_size of 16 "
        'of the route serving "/tiny/sink"',
    )
    r = requests.get(f"{srv.url}/app/enqueue?path=/tiny/sink&body=small", timeout=WAIT)
    assert r.status_code == 200, r.text


def test_timers_stop_at_max_timers_and_min_period(srv: Server) -> None:
    accepted, refused, why = attack(srv, "timers", "timers&n=200&period_ms=3600000&to=/sink")
    assert (accepted, refused) == (5, 195)
    assert why == "unavailable: tenant timers has 5 timers, its max_timers of 5; cancel one first"
    # Setting one of its timers again replaces it: no quota needed.
    assert attack(srv, "timers", "timers&n=5&period_ms=3600000&to=/sink")[:2] == (5, 0)
    accepted, refused, why = attack(srv, "timers", "fast-timer&period_ms=1&to=/sink")
    assert (accepted, refused) == (0, 1)
    assert why == "invalid: a period of 1ms is under the min_timer_period of tenant timers (1s)"
    assert srv.wait_log("tenant `timers` handler `hostile` on /h: timers.every refused: ")
    good_job_delivered(srv)


def test_attempts_over_the_cap_are_refused(srv: Server) -> None:
    accepted, refused, why = attack(srv, "jobs", "attempts&n=1000&to=/sink")
    assert (accepted, refused) == (0, 1)
    assert why == "invalid: max_attempts 1000 is over the max_attempts of tenant jobs (3)"
    # Within the cap it goes as far as max_jobs lets it (the flood test may have filled it).
    _, _, why = attack(srv, "slow", "attempts&n=3&to=/sink")
    assert why == "none"


def test_slow_jobs_of_one_tenant_do_not_hold_every_delivery_slot(srv: Server) -> None:
    # Six jobs that each hold a delivery slot for 6 s: without a share per tenant they
    # would take all four slots and the good tenant's job would wait for them.
    accepted, _, why = attack(srv, "slow", "jobs&n=6&to=/slow%3Fsleep_ms%3D6000")
    assert accepted == 6, why
    sleeping = "tenant `slow` handler `probe` on /slow stderr: probe: sleeping 6000 ms"
    assert srv.wait_log(sleeping, count=2), srv.log()[-3000:]
    line = good_job_delivered(srv)
    log = srv.log()
    # Ordering, not timing: the good job ran before the third slow job started, i.e. while
    # the attacker's backlog was still waiting for its two slots.
    starts = [m.start() for m in re.finditer(re.escape(sleeping), log)]
    assert len(starts) < 3 or log.index(line) < starts[2], log[-3000:]


def test_purge_gives_the_space_back(srv: Server, tmp_path: Path) -> None:
    # To /slow, whose max_body_size is the default 10MiB; bulk's bytes quota is the default.
    query = f"big-jobs&n=20&size={1 << 20}&delay_ms=600000&to=/slow"
    accepted, _, why = attack(srv, "bulk", query)
    assert accepted == 20, why
    full = journal_bytes(srv)
    assert full > 20 << 20, full
    cmd = [wsrun_bin(), "jobs", "purge", "--pending", "--state-dir", str(srv.tmp / "state")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    # Freed pages go back at once; a WAL a reader kept from truncating is cut to 4 MiB.
    assert wait_for(lambda: journal_bytes(srv) < 8 << 20), (full, journal_bytes(srv))
    # And the tenant's quota is free again.
    assert attack(srv, "jobs", "jobs&n=1&to=/sink&delay_ms=600000")[:2] == (1, 0)


def test_tenant_timers_are_kept_apart_from_other_names(srv: Server) -> None:
    """Tenant `org`'s timer `x` and the operator's `org/x` (the old `TENANT/NAME` key of
    org's) are two timers: cancelling one leaves the other."""

    def call(path: str, host: str | None = None) -> str:
        headers = {"Host": host} if host else {}
        r = requests.post(srv.url + path, headers=headers, timeout=WAIT)
        assert r.status_code == 200, r.text
        return r.text

    assert call("/jobs/every?name=x&period=3600000&to=/jobs/work", "org.test") == "set"
    assert call("/ops/every?name=org/x&period=3600000&to=/ops/work") == "set"
    assert call("/jobs/cancel?name=x", "org.test") == "true"
    assert call("/ops/cancel?name=org/x") == "true", "the operator's timer was not org's"


@pytest.mark.parametrize(
    ("name", "bad"),
    [("org/team", "'/'"), ("a b", "' '"), ("café", "'é'")],
)
def test_tenant_names_outside_the_safe_set_are_config_errors(
    tmp_path: Path, name: str, bad: str
) -> None:
    hello = wasm_handler("hello")
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(
        f'[[tenant]]\nname = "org"\nhosts = ["a.test"]\n  [[tenant.route]]\n  prefix = "/"\n'
        f'  wasm = "{hello}"\n\n[[tenant]]\nname = "{name}"\nhosts = ["b.test"]\n'
        f'  [[tenant.route]]\n  prefix = "/"\n  wasm = "{hello}"\n'
    )
    cmd = [wsrun_bin(), "check", "-c", str(cfg), *state_args(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "wsrun.toml:9: key `tenant[2].name`" in done.stderr, done.stderr
    assert f"has {bad}: use letters, digits, `.`, `_` and `-` only" in done.stderr


def test_quota_keys_on_a_tenant_route_are_config_errors(tmp_path: Path) -> None:
    hello = wasm_handler("hello")
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(
        f'[[tenant]]\nname = "acme"\nhosts = ["a.test"]\n  [[tenant.route]]\n'
        f'  prefix = "/"\n  wasm = "{hello}"\n  max_jobs = 5\n'
    )
    cmd = [wsrun_bin(), "check", "-c", str(cfg), *state_args(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "wsrun.toml:7: key `tenant[1].route[1].max_jobs`" in done.stderr, done.stderr
    assert "set on its [[tenant]] table" in done.stderr

"""`wsrun jobs list|show|retry|purge` against a journal the real server wrote.

The server runs `tests/apps/jobs_app.py` at /app: `/app/enqueue?...` queues jobs through
`wsrun.enqueue`, `/app/fail` always answers 500 (so its jobs end in the dead-letter table) and
`/app/sink` logs each delivery to the call log. A short `[jobs] backoff` keeps retries quick.
The CLI runs as a separate process on the same state directory while the server is up.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import requests

from support.launcher import Launcher, Server
from support.paths import APPS, WAIT, wait_for, wsrun_bin

CONFIG = """
[server]
state_dir = "state"

[jobs]
backoff = "50ms"
max_backoff = "100ms"

[[route]]
prefix = "/app"
python = "jobs_app:app"

[[timer]]
name = "nightly"
cron = "0 3 * * *"
path = "/app/sink"
body = "from-config"
"""

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COLUMNS = ["ID", "STATE", "ATTEMPTS", "METHOD", "PATH", "ORIGIN", "DUE/FAILED (UTC)", "LAST ERROR"]


def start(launcher: Launcher) -> Server:
    cfg = launcher.tmp / "wsrun.toml"
    cfg.write_text(CONFIG)
    return launcher.start(["-c", str(cfg), "--pythonpath", str(APPS)], cwd=launcher.tmp)


def jobs(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `wsrun jobs ARGS` in `cwd` to completion."""
    return subprocess.run(
        [wsrun_bin(), "jobs", *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def ok(cwd: Path, *args: str) -> str:
    done = jobs(cwd, *args)
    assert done.returncode == 0, f"wsrun jobs {args}: {done.returncode}\n{done.stderr}"
    return done.stdout


def enqueue(srv: Server, query: str) -> int:
    r = requests.get(f"{srv.url}/app/enqueue?{query}", timeout=WAIT)
    assert r.status_code == 200, r.text
    return int(r.text)


def parse_list(out: str) -> tuple[dict[int, dict[str, str]], str, list[list[str]]]:
    """(jobs by id, the counts line, timer rows) from `wsrun jobs list`."""
    lines = out.splitlines()
    rows: dict[int, dict[str, str]] = {}
    i = 0
    if lines[0] == "no jobs":
        i = 1
    else:
        assert re.split(r"\s{2,}", lines[0]) == COLUMNS, lines[0]
        i = 1
        while not lines[i].startswith("jobs: "):
            cells = re.split(r"\s{2,}", lines[i], maxsplit=len(COLUMNS) - 1)
            rows[int(cells[0])] = dict(zip(COLUMNS, cells, strict=True))
            i += 1
    counts = lines[i]
    timers: list[list[str]] = []
    rest = lines[i + 1 :]
    if "timers: none" not in rest:
        start_at = rest.index(next(x for x in rest if x.startswith("timers: "))) + 2
        timers = [re.split(r"\s{2,}", x) for x in rest[start_at:] if x]
    return rows, counts, timers


def show(cwd: Path, job_id: int, *where: str) -> dict[str, str]:
    """`wsrun jobs show` as {field: value}, plus `headers` lines and the `body` text."""
    out = ok(cwd, "show", str(job_id), *where)
    fields: dict[str, str] = {}
    lines = out.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("  "):
            fields["header " + line.strip().split(":", 1)[0]] = line.strip().split(": ", 1)[1]
            continue
        name, value = line.split(":", 1)
        fields[name] = value.strip()
        if name == "body":
            fields["body text"] = "\n".join(lines[n + 1 :])
            break
    return fields


def fails(srv: Server, job_id: int) -> int:
    return sum(1 for x in srv.calls() if x.startswith(f"fail {job_id} "))


def when(text: str) -> float:
    assert ISO.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def test_list_show_retry_and_purge_a_real_journal(launcher: Launcher) -> None:
    srv = start(launcher)
    tmp = launcher.tmp
    dead_id = enqueue(srv, "path=/app/fail&max_attempts=2&body=boom&h-X-Trace=t1")
    pending_id = enqueue(srv, "path=/app/sink&delay=3600&body=later")
    queued_at = datetime.now(UTC).timestamp()

    def is_dead() -> bool:
        rows, _, _ = parse_list(ok(tmp, "list", "--state-dir", "state"))
        return rows.get(dead_id, {}).get("STATE") == "dead"

    assert wait_for(is_dead, interval=0.2), srv.calls()
    assert fails(srv, dead_id) == 2

    # list: both jobs, the counts, the [[timer]] synced from the file.
    rows, counts, timers = parse_list(ok(tmp, "list", "-c", "wsrun.toml"))
    assert counts == "jobs: 1 pending, 1 dead"
    dead = rows[dead_id]
    assert (dead["STATE"], dead["ATTEMPTS"], dead["METHOD"]) == ("dead", "2/2", "POST")
    assert (dead["PATH"], dead["ORIGIN"]) == ("/app/fail", "python")
    assert "500" in dead["LAST ERROR"], dead
    assert abs(when(dead["DUE/FAILED (UTC)"]) - queued_at) < 10
    pending = rows[pending_id]
    assert (pending["STATE"], pending["ATTEMPTS"], pending["PATH"]) == (
        "pending",
        "0/5",
        "/app/sink",
    )
    assert pending["LAST ERROR"] == "-"
    assert abs(when(pending["DUE/FAILED (UTC)"]) - (queued_at + 3600)) < 10
    assert len(timers) == 1, timers
    name, schedule, method, path, source, next_due = timers[0]
    assert (name, schedule, method, path, source) == (
        "nightly",
        "cron 0 3 * * *",
        "POST",
        "/app/sink",
        "config",
    )
    assert when(next_due) > queued_at

    # show: every field, the headers and the body.
    f = show(tmp, dead_id, "--state-dir", str(tmp / "state"))
    assert (f["id"], f["state"], f["attempts"], f["method"]) == (
        str(dead_id),
        "dead",
        "2/2",
        "POST",
    )
    assert (f["host"], f["path"], f["origin"]) == ("-", "/app/fail", "python")
    assert ISO.match(f["created"]) and ISO.match(f["failed"]), f
    assert "500" in f["last error"], f
    assert f["header X-Trace"] == "t1", f
    assert (f["body"], f["body text"]) == ("4 bytes, UTF-8:", "boom")
    f = show(tmp, pending_id, "-c", "wsrun.toml")
    assert (f["state"], f["body text"]) == ("pending", "later")
    assert ISO.match(f["due"]), f

    # retry of the dead job: pending again with its attempts reset, so it is tried twice more.
    out = ok(tmp, "retry", str(dead_id), "--state-dir", "state")
    assert (
        out == f"job {dead_id}: moved from dead-letter to pending, attempts reset (0/2), due now\n"
    )
    assert wait_for(lambda: fails(srv, dead_id) == 4 and is_dead(), interval=0.2), srv.calls()
    # retry of the pending job: due now, so the server delivers it at once.
    out = ok(tmp, "retry", str(pending_id), "--state-dir", "state")
    assert out == f"job {pending_id}: pending, now due\n"
    delivered = f"sink {pending_id} 1 "
    assert wait_for(lambda: any(x.startswith(delivered) for x in srv.calls())), srv.calls()
    assert "later" in next(x for x in srv.calls() if x.startswith(delivered))

    # unknown ids: a message and exit code 1.
    for action in ("show", "retry"):
        done = jobs(tmp, action, "999999", "--state-dir", "state")
        assert done.returncode == 1, done
        assert done.stderr.startswith("wsrun: error: no job 999999 in "), done.stderr
        assert "jobs.sqlite3" in done.stderr

    # purge: dead-letter jobs only, then pending ones with --pending.
    wait_pending = enqueue(srv, "path=/app/sink&delay=3600")
    assert ok(tmp, "purge", "--state-dir", "state") == "purged 1 dead-letter job(s)\n"
    rows, counts, _ = parse_list(ok(tmp, "list", "--state-dir", "state"))
    assert counts == "jobs: 1 pending, 0 dead"
    assert list(rows) == [wait_pending]
    assert (
        ok(tmp, "purge", "--pending", "--state-dir", "state")
        == "purged 1 job(s), dead-letter and pending\n"
    )
    out = ok(tmp, "list", "--state-dir", "state")
    assert out.startswith("no jobs\njobs: 0 pending, 0 dead\n"), out


def test_missing_journal_and_bad_config_are_clear_errors(tmp_path: Path) -> None:
    done = jobs(tmp_path, "list")
    assert done.returncode == 1
    want = f"wsrun: error: no job journal at {tmp_path / '.wsrun' / 'jobs.sqlite3'}"
    assert done.stderr.startswith(want), done.stderr
    done = jobs(tmp_path, "list", "--state-dir", "elsewhere")
    assert done.returncode == 1 and str(tmp_path / "elsewhere" / "jobs.sqlite3") in done.stderr
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text('[server]\nstate_dir = "st"\n\n[jobs]\nlease = "0s"\n')
    done = jobs(tmp_path, "purge", "-c", "wsrun.toml")
    assert done.returncode == 2
    assert done.stderr == "wsrun: error: wsrun.toml:5: key `jobs.lease`: must be more than zero\n"
    cfg.write_text('[server]\nstate_dir = "st"\n')
    done = jobs(tmp_path, "show", "1", "-c", "wsrun.toml")
    assert done.returncode == 1 and str(tmp_path / "st" / "jobs.sqlite3") in done.stderr
    done = jobs(tmp_path, "show", "nope")
    assert done.returncode == 2 and "invalid value 'nope'" in done.stderr

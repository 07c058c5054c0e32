"""`[jobs]` and `[[timer]]` in wsrun.toml through the binary: `wsrun check -c` exits 2 and names
file:line: key for every bad value; a timer whose path no route serves stops start-up with
`timer[N].path` named; a valid file checks clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.paths import APPS, wsrun_bin

ROUTE = '[[route]]\nprefix = "/app"\npython = "probe:app"\n'
TIMER = '[[timer]]\nname = "a"\nevery = "30s"\npath = "/app/a"\n'


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "wsrun.toml").write_text(text)
    return subprocess.run(
        [wsrun_bin(), "check", "-c", "wsrun.toml", "--pythonpath", str(APPS)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# (file body after the route, line, key, message) — the route takes lines 1-3, a blank line 4.
BAD = [
    ("[jobs]\nmax_attempts = 0\n", 6, "jobs.max_attempts", "must be at least 1"),
    ("[jobs]\nconcurrency = -2\n", 6, "jobs.concurrency", "must be at least 1"),
    ('[jobs]\nbackoff = "0ms"\n', 6, "jobs.backoff", "must be more than zero"),
    ('[jobs]\nlease = "forever"\n', 6, "jobs.lease", "is not a duration"),
    (
        '[jobs]\nbackoff = "1m"\nmax_backoff = "10s"\n',
        7,
        "jobs.max_backoff",
        "(10s) must be at least jobs.backoff (60s)",
    ),
    ("[jobs]\nretry = 3\n", 6, "jobs.retry", "unknown key (known: max_attempts, concurrency, "),
    ('[[timer]]\nname = "a"\npath = "/app/a"\n', 5, "timer[1]", "needs a schedule"),
    ('[[timer]]\nname = "a"\nevery = "1s"\n', 5, "timer[1].path", "is required"),
    ('[[timer]]\nevery = "1s"\npath = "/app"\n', 5, "timer[1].name", "is required"),
    ('[[timer]]\nname = "a"\nevery = "0s"\npath = "/app"\n', 7, "timer[1].every", "more than zero"),
    (
        '[[timer]]\nname = "a"\nevery = "1s"\ncron = "* * * * *"\npath = "/app"\n',
        8,
        "timer[1].cron",
        "exactly one of `every` or `cron`",
    ),
    (
        '[[timer]]\nname = "a"\ncron = "99 * * * *"\npath = "/app"\n',
        7,
        "timer[1].cron",
        "not a valid cron",
    ),
    (
        '[[timer]]\nname = "a"\nevery = 1\npath = "app/x"\n',
        8,
        "timer[1].path",
        "must start with `/`",
    ),
    ('[[timer]]\nname = "a"\nevery = 1\npath = "/a b"\n', 8, "timer[1].path", "spaces"),
    (
        '[[timer]]\nname = "a"\nevery = 1\npath = "/a"\nmethod = "G T"\n',
        9,
        "timer[1].method",
        "HTTP method",
    ),
    (
        '[[timer]]\nname = "a"\nevery = 1\npath = "/a"\nbody = 3\n',
        9,
        "timer[1].body",
        "expected a string",
    ),
    (
        '[[timer]]\nname = "a"\nevery = 1\npath = "/a"\nbodyy = ""\n',
        9,
        "timer[1].bodyy",
        "did you mean `body`?",
    ),
    (TIMER + "\n" + TIMER, 11, "timer[2].name", "timer `a` is declared twice (first as timer[1])"),
    ('[timer]\nname = "a"\n', 5, "timer", "write timers as [[timer]]"),
]


@pytest.mark.parametrize(
    ("extra", "line", "key", "message"), BAD, ids=[b[2] + ":" + str(b[1]) for b in BAD]
)
def test_bad_values_exit_2_naming_file_line_and_key(
    tmp_path: Path, extra: str, line: int, key: str, message: str
) -> None:
    done = check(tmp_path, ROUTE + "\n" + extra)
    assert done.returncode == 2, done
    prefix = f"wsrun: error: wsrun.toml:{line}: key `{key}`: "
    assert done.stderr.startswith(prefix), done.stderr
    assert message in done.stderr, done.stderr


def test_a_timer_whose_path_no_route_serves_stops_start_up(tmp_path: Path) -> None:
    other = '[[timer]]\nname = "b"\ncron = "*/5 * * * *"\n\npath = "/elsewhere?x=1"\n'
    done = check(tmp_path, ROUTE + "\n" + TIMER + "\n" + other)
    assert done.returncode == 1, done
    want = "wsrun: error: wsrun.toml:14: key `timer[2].path`: no route serves `/elsewhere` (for requests without a Host)\n"
    assert done.stderr.endswith(want), done.stderr


def test_valid_jobs_and_timers_check_clean(tmp_path: Path) -> None:
    jobs = '[jobs]\nmax_attempts = 3\nconcurrency = 2\nbackoff = "250ms"\nmax_backoff = "1m"\nlease = 30\n'
    timer2 = '[[timer]]\nname = "b"\ncron = "0 3 * * *"\npath = "/app/b?full=1"\nmethod = "PUT"\nbody = "{}"\n'
    done = check(tmp_path, ROUTE + "\n" + jobs + "\n" + TIMER + "\n" + timer2)
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout

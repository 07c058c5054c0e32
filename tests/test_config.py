"""wsrun.toml: `check`, errors naming file:line:key, exit codes, hosts routing, static routes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests

from support.http import free_port, port_open
from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS, CONFIGS, WAIT, wait_for

#: `wsrun` exits 2 for a configuration error, before binding anything (src/cli.rs).
CONFIG_ERROR = 2


def _run(args: list[str], port: int | None = None) -> tuple[int, str, bool]:
    """Runs wsrun to completion; returns (exit code, stderr+stdout, port seen open meanwhile)."""
    done = run_wsrun(args, port=port)
    return done.code, done.out, done.seen_open


def test_check_valid_config_exits_zero_and_binds_nothing() -> None:
    port = free_port()
    code, out, seen_open = _run(
        [
            "check",
            "-c",
            str(CONFIGS / "valid.toml"),
            "--pythonpath",
            str(APPS),
            "--bind",
            f"127.0.0.1:{port}",
        ],
        port=port,
    )
    assert code == 0, out
    assert not seen_open
    assert not port_open(port)


def test_check_valid_config_with_bind_in_file(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(
        f'[server]\nbind = "127.0.0.1:{port}"\n\n[[route]]\nprefix = "/"\npython = "probe:app"\n'
    )
    code, out, seen_open = _run(["check", "-c", str(cfg), "--pythonpath", str(APPS)], port=port)
    assert code == 0, out
    assert not seen_open


BROKEN = [
    ("unknown_key.toml", 3, "bogus_key"),
    ("unknown_route_key.toml", 10, "pyhton"),
    ("bad_size.toml", 2, "max_body_size"),
    ("bad_duration.toml", 3, "header_timeout"),
    ("duplicate_prefix.toml", 6, "prefix"),
    ("route_bad_size.toml", 4, "max_body_size"),
]


def _assert_names_location(out: str, name: str, line: int, key: str) -> None:
    assert re.search(rf"{re.escape(name)}:{line}\b", out), f"expected {name}:{line} in:\n{out}"
    assert key in out, f"expected key {key!r} in:\n{out}"


@pytest.mark.parametrize(("name", "line", "key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_check_broken_config_names_file_line_key(name: str, line: int, key: str) -> None:
    code, out, _ = _run(["check", "-c", str(CONFIGS / name), "--pythonpath", str(APPS)])
    assert code == CONFIG_ERROR, out
    _assert_names_location(out, name, line, key)


@pytest.mark.parametrize(("name", "line", "key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_serve_broken_config_fails_before_binding(name: str, line: int, key: str) -> None:
    port = free_port()
    code, out, seen_open = _run(
        ["-c", str(CONFIGS / name), "--pythonpath", str(APPS), "--bind", f"127.0.0.1:{port}"],
        port=port,
    )
    assert code == CONFIG_ERROR, out
    assert not seen_open, "a broken config must not bind anything"
    _assert_names_location(out, name, line, key)


def test_broken_toml_syntax(tmp_path: Path) -> None:
    cfg = tmp_path / "syntax.toml"
    cfg.write_text('[server]\nworkers = 1\n\n[[route]\nprefix = "/"\n')
    code, out, _ = _run(["check", "-c", str(cfg)])
    assert code == CONFIG_ERROR, out
    assert "syntax.toml" in out and re.search(r"syntax\.toml:4\b", out), out


def test_missing_config_file(tmp_path: Path) -> None:
    code, out, _ = _run(["check", "-c", str(tmp_path / "nope.toml")])
    assert code == CONFIG_ERROR, out
    assert "nope.toml" in out


def test_bad_cli_size_is_rejected() -> None:
    port = free_port()
    code, out, seen_open = _run(
        [
            "probe:app",
            "--pythonpath",
            str(APPS),
            "--max-body-size",
            "10XB",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        port=port,
    )
    assert code == CONFIG_ERROR, out
    assert not seen_open
    assert "max-body-size" in out or "max_body_size" in out, out


def test_serve_valid_config_routes_by_host(launcher: Launcher) -> None:
    srv = launcher.start(["-c", str(CONFIGS / "valid.toml"), "--pythonpath", str(APPS)])
    # any host -> probe (JSON environ)
    env = requests.get(srv.url + "/hello", headers={"Host": "other.example"}, timeout=WAIT).json()
    assert env["PATH_INFO"] == "/hello"
    assert env["SERVER_NAME"] == "other.example"
    # hosts = ["a.example", "b.example"] -> the validated app (plain text), port ignored
    for host in ("a.example", "b.example:8080", "A.Example"):
        r = requests.get(srv.url + "/hello", headers={"Host": host}, timeout=WAIT)
        assert r.status_code == 200, host
        assert r.text == "GET |/hello", host
    # longest prefix still applies for the any-host /api route
    r = requests.get(srv.url + "/api/x", headers={"Host": "other.example"}, timeout=WAIT)
    assert r.text == "GET /api|/x"
    # per-route max_body_size = 100 on /api, server max_body_size = 2MiB elsewhere
    assert requests.post(srv.url + "/api/echo", data=b"q" * 101, timeout=WAIT).status_code == 413
    ok = requests.post(srv.url + "/echo", data=b"q" * 100_000, timeout=WAIT)
    assert ok.status_code == 200 and len(ok.content) == 100_000
    big = requests.post(srv.url + "/echo", data=b"q" * (2 * 1024 * 1024 + 1), timeout=WAIT)
    assert big.status_code == 413


def test_static_route_in_config(launcher: Launcher, tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "index.txt").write_text("static index\n")
    (public / "sub" / "deep.txt").write_text("deep file\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(
        f'[[route]]\nprefix = "/"\npython = "probe:app"\n\n'
        f'[[route]]\nprefix = "/files"\nstatic = "{public}"\n'
    )
    srv = launcher.start(["-c", str(cfg), "--pythonpath", str(APPS)])
    r = requests.get(srv.url + "/files/index.txt", timeout=WAIT)
    assert r.status_code == 200 and r.text == "static index\n"
    assert requests.get(srv.url + "/files/sub/deep.txt", timeout=WAIT).text == "deep file\n"
    assert requests.get(srv.url + "/files/missing.txt", timeout=WAIT).status_code == 404
    assert srv.calls() == []


def test_config_with_relative_paths_and_chdir(launcher: Launcher, tmp_path: Path) -> None:
    """--chdir makes a project directory the working directory and importable."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(APPS / "probe.py", proj / "myapp.py")
    srv = launcher.start(["myapp:app", "--chdir", str(proj)])
    env = requests.get(srv.url + "/x", timeout=WAIT).json()
    assert env["PATH_INFO"] == "/x"


# --------------------------------------------------------------------------- CLI flags


@pytest.mark.parametrize(
    ("flag", "ok_size", "too_big"),
    [
        ("1KB", 1000, 1025),
        ("1KiB", 1024, 1025),
        ("2048", 2048, 2049),
        ("1MiB", 1 << 20, (1 << 20) + 1),
    ],
)
def test_size_units(launcher: Launcher, flag: str, ok_size: int, too_big: int) -> None:
    srv = launcher.probe("--max-body-size", flag)
    ok = requests.post(srv.url + "/echo", data=b"s" * ok_size, timeout=WAIT)
    assert ok.status_code == 200 and len(ok.content) == ok_size
    assert requests.post(srv.url + "/echo", data=b"s" * too_big, timeout=WAIT).status_code == 413


def test_access_log_to_stdout(launcher: Launcher) -> None:
    srv = launcher.probe("--access-log", "-")
    requests.get(srv.url + "/framing/cl?x=1", headers={"User-Agent": "e2e-agent/1"}, timeout=WAIT)
    requests.get(srv.url + "/error/before", timeout=WAIT)

    def logged() -> bool:
        out = srv.stdout()
        return '"GET /framing/cl?x=1 HTTP/1.1" 200 10' in out and '"GET /error/before' in out

    assert wait_for(logged), srv.stdout()
    line = next(x for x in srv.stdout().splitlines() if "/framing/cl" in x)
    # combined format: host ident user [time] "request" status size "referer" "user-agent"
    assert re.match(r'^127\.0\.0\.1 \S+ \S+ \[[^\]]+\] "GET ', line), line
    assert line.rstrip().endswith('"e2e-agent/1"'), line
    err_line = next(x for x in srv.stdout().splitlines() if "/error/before" in x)
    assert '" 500 ' in err_line


def test_access_log_to_file(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    srv = launcher.probe("--access-log", str(log))
    requests.get(srv.url + "/framing/cl", timeout=WAIT)
    assert wait_for(lambda: log.exists() and "/framing/cl" in log.read_text())
    assert "/framing/cl" not in srv.stdout()


def _log_later_line(srv: Server, mark: str) -> None:
    """The app writes `mark` to wsgi.errors (logged at error level) on a later request, and
    the test waits to see it: what the earlier request would have logged is in by then."""
    assert requests.get(srv.url + f"/errors?mark={mark}", timeout=WAIT).text == "logged"
    assert srv.wait_log(f"probe-errors-write {mark}"), srv.log()[-2000:]


def test_no_access_log_by_default(launcher: Launcher) -> None:
    srv = launcher.probe()
    requests.get(srv.url + "/framing/cl?unique-path-marker", timeout=WAIT)
    _log_later_line(srv, "later")
    assert "unique-path-marker" not in srv.log()


def test_log_level_error_hides_info(launcher: Launcher) -> None:
    # Its ready line is an info line, hidden at this level: wait for the port instead.
    srv = launcher.probe("--log-level", "error", wait="port")
    requests.get(srv.url + "/framing/cl", timeout=WAIT)
    _log_later_line(srv, "later")
    assert "INFO" not in srv.stderr()
    verbose = launcher.probe("--log-level", "info")
    assert "INFO" in verbose.stderr()


def test_pythonpath_multiple_dirs(launcher: Launcher, tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "helper_mod.py").write_text("VALUE = 'from-a'\n")
    (b / "entry_mod.py").write_text(
        "import helper_mod\n\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [helper_mod.VALUE.encode()]\n"
    )
    srv = launcher.start(["entry_mod:app", "--pythonpath", f"{a}:{b}"])
    assert requests.get(srv.url + "/", timeout=WAIT).text == "from-a"
    srv2 = launcher.start(["entry_mod:app", "--pythonpath", str(a), "--pythonpath", str(b)])
    assert requests.get(srv2.url + "/", timeout=WAIT).text == "from-a"

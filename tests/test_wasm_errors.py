"""Bad handler files and bad WASM configuration: `wsrun check` and start-up name the file and
say what is wrong; config errors name file:line: key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.http import free_port
from support.launcher import Launcher, run_wsrun
from support.wasm import CORE_MODULE, EMPTY_COMPONENT, WASM_APPS, state_args, wasm_handler

#: (id, file content, what the error must say)
BAD_FILES = [
    ("garbage", b"GIF89a not wasm at all", "is not a WebAssembly file"),
    ("empty-file", b"", "is not a WebAssembly file"),
    (
        "core-module",
        CORE_MODULE,
        "is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target",
    ),
    (
        "no-proxy-export",
        EMPTY_COMPONENT,
        "is not a wasi:http/proxy handler: it must export wasi:http/incoming-handler",
    ),
    ("unknown-version", b"\0asm\x02\x00\x00\x00", "unknown WebAssembly version"),
]


#: Exit codes of src/cli.rs: 2 for a configuration error, 1 for a handler that fails to load.
CONFIG_ERROR = 2
LOAD_FAILED = 1


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    """Runs wsrun to completion; returns (exit code, stderr+stdout)."""
    done = run_wsrun(args, cwd=cwd)
    return done.code, done.out


@pytest.mark.parametrize(("kind", "data", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_check_bad_wasm_file(tmp_path: Path, kind: str, data: bytes, reason: str) -> None:
    bad = tmp_path / f"{kind}.wasm"
    bad.write_bytes(data)
    code, out = _run(["check", "--wasm", f"/x={bad}", *state_args(tmp_path)], cwd=tmp_path)
    assert code == 1, out
    assert reason in out, out
    assert str(bad) in out, out


def test_check_good_wasm_file(tmp_path: Path) -> None:
    code, out = _run(
        [
            "check",
            "--wasm",
            f"/a={wasm_handler('hello')}",
            "--wasm",
            f"/b={wasm_handler('raw-hello')}",
            *state_args(tmp_path),
        ],
        cwd=tmp_path,
    )
    assert code == 0, out
    assert "configuration OK" in out


def test_check_names_the_bad_one_among_good_ones(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wasm"
    bad.write_bytes(CORE_MODULE)
    code, out = _run(
        [
            "check",
            "--wasm",
            f"/a={wasm_handler('hello')}",
            "--wasm",
            f"/b={bad}",
            *state_args(tmp_path),
        ],
        cwd=tmp_path,
    )
    assert code == 1, out
    assert str(bad) in out and "core WebAssembly module" in out, out
    assert str(wasm_handler("hello")) not in out, out


@pytest.mark.parametrize(
    ("kind", "data", "reason"), BAD_FILES[:4], ids=[b[0] for b in BAD_FILES[:4]]
)
def test_start_with_bad_wasm_file_exits(
    launcher: Launcher, tmp_path: Path, kind: str, data: bytes, reason: str
) -> None:
    bad = tmp_path / f"{kind}.wasm"
    bad.write_bytes(data)
    srv = launcher.start(
        ["--wasm", f"/ok={wasm_handler('hello')}", "--wasm", f"/x={bad}", *state_args(tmp_path)],
        cwd=tmp_path,
        wait="none",
    )
    assert srv.wait_exit() == LOAD_FAILED, srv.log()
    log = srv.log()
    assert reason in log, log
    assert str(bad) in log, log
    assert "handler `" + kind + "` on /x" in log, log


@pytest.mark.parametrize(
    "arg",
    ["/x", "x=handlers/hello.wasm", "/x=/definitely/not/here.wasm"],
)
def test_bad_wasm_flag(tmp_path: Path, arg: str) -> None:
    code, out = _run(["check", "--wasm", arg, *state_args(tmp_path)], cwd=tmp_path)
    assert code == CONFIG_ERROR, out
    assert "--wasm" in out, out


def test_watch_dir_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    code, out = _run(["check", "--watch", str(missing), *state_args(tmp_path)], cwd=tmp_path)
    assert code == CONFIG_ERROR, out
    assert str(missing) in out, out


# --------------------------------------------------------------------------- config files

#: (id, route table body after `prefix = "/x"` and the target, line of the error, key, message)
CONFIG_ERRORS = [
    ("memory-not-size", 'memory = "lots"', 4, "route[1].memory", "is not a size"),
    ("memory-too-big", 'memory = "8GiB"', 4, "route[1].memory", "must be between 64KiB and 4GiB"),
    ("timeout-zero", 'timeout = "0s"', 4, "route[1].timeout", "must be more than zero"),
    ("timeout-bad", 'timeout = "forever"', 4, "route[1].timeout", "is not a duration"),
    ("concurrency-zero", "max_concurrency = 0", 4, "route[1].max_concurrency", "at least 1"),
    ("origin-scheme", 'allow_outbound = ["ftp://x"]', 4, "route[1].allow_outbound", "origin"),
    (
        "origin-path",
        'allow_outbound = ["http://x.test/api"]',
        4,
        "route[1].allow_outbound",
        "without a path",
    ),
    ("env-name", 'env = { "A=B" = "1" }', 4, "route[1].env", "environment variable name"),
    ("env-value", "env = { A = 1 }", 4, "route[1].env.A", "expected a string"),
    ("typo", 'memroy = "1MiB"', 4, "route[1].memroy", "did you mean `memory`"),
    ("two-targets", 'python = "legacy_app:app"', 4, "route[1].python", "exactly one of"),
    ("resources-few", "max_resources = 8", 4, "route[1].max_resources", "between 16 and"),
    ("reuse-zero", "requests_per_instance = 0", 4, "route[1].requests_per_instance", "at least 1"),
    (
        "reuse-huge",
        "requests_per_instance = 2000000",
        4,
        "route[1].requests_per_instance",
        "must be between 1 and 1000000",
    ),
    ("memory-total-route", 'memory_total = "1GiB"', 4, "route[1].memory_total", "unknown key"),
    ("max-jobs-zero", "max_jobs = 0", 4, "route[1].max_jobs", "at least 1"),
    ("max-job-bytes-zero", "max_job_bytes = 0", 4, "route[1].max_job_bytes", "more than zero"),
    ("max-job-bytes-bad", 'max_job_bytes = "big"', 4, "route[1].max_job_bytes", "is not a size"),
    ("max-timers-neg", "max_timers = -1", 4, "route[1].max_timers", "at least 1"),
    (
        "min-period-bad",
        'min_timer_period = "soon"',
        4,
        "route[1].min_timer_period",
        "is not a duration",
    ),
    ("attempts-zero", "max_attempts = 0", 4, "route[1].max_attempts", "at least 1"),
    ("cpu-time-zero", 'cpu_time = "0s"', 4, "route[1].cpu_time", "must be more than zero"),
    ("cpu-time-bad", 'cpu_time = "lots"', 4, "route[1].cpu_time", "is not a duration"),
    ("log-bytes-bad", 'log_bytes = "much"', 4, "route[1].log_bytes", "is not a size"),
    ("log-lines-zero", "log_lines = 0", 4, "route[1].log_lines", "at least 1"),
    ("log-rate-bad", 'log_rate = "fast"', 4, "route[1].log_rate", "a whole number"),
    (
        "outbound-per-request-zero",
        "outbound_per_request = 0",
        4,
        "route[1].outbound_per_request",
        "at least 1",
    ),
    ("max-outbound-text", 'max_outbound = "many"', 4, "route[1].max_outbound", "whole number"),
    (
        "connect-timeout-zero",
        'connect_timeout = "0s"',
        4,
        "route[1].connect_timeout",
        "must be more than zero",
    ),
]


@pytest.mark.parametrize(
    ("case", "line_text", "line", "key", "message"),
    CONFIG_ERRORS,
    ids=[c[0] for c in CONFIG_ERRORS],
)
def test_wasm_config_errors_name_file_line_key(
    tmp_path: Path, case: str, line_text: str, line: int, key: str, message: str
) -> None:
    cfg = tmp_path / f"{case}.toml"
    cfg.write_text(f'[[route]]\nprefix = "/x"\nwasm = "{wasm_handler("hello")}"\n{line_text}\n')
    code, out = _run(["check", "-c", str(cfg), *state_args(tmp_path)], cwd=tmp_path)
    assert code == CONFIG_ERROR, out
    assert re.search(rf"{re.escape(cfg.name)}:{line}\b", out), out
    assert f"key `{key}`" in out, out
    assert message in out, out


STATIC_CONFIGS = [
    ("python_route_memory.toml", 6, "route[1].memory", "applies to wasm routes only"),
    ("static_route_timeout.toml", 5, "route[1].timeout", "applies to wasm routes only"),
    ("tenant_python.toml", 8, "tenant[1].route[1].python", "not `python`"),
]


@pytest.mark.parametrize(
    ("name", "line", "key", "message"), STATIC_CONFIGS, ids=[c[0] for c in STATIC_CONFIGS]
)
def test_wasm_keys_and_tenants_config_errors(
    tmp_path: Path, name: str, line: int, key: str, message: str
) -> None:
    cfg = WASM_APPS / name
    code, out = _run(
        ["check", "-c", str(cfg), "--pythonpath", str(WASM_APPS), *state_args(tmp_path)],
        cwd=tmp_path,
    )
    assert code == CONFIG_ERROR, out
    assert re.search(rf"{re.escape(name)}:{line}: key `{re.escape(key)}`", out), out
    assert message in out, out


def test_missing_wasm_file_in_config(tmp_path: Path) -> None:
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text('[[route]]\nprefix = "/x"\nwasm = "nope.wasm"\n')
    code, out = _run(["check", "-c", str(cfg), *state_args(tmp_path)], cwd=tmp_path)
    assert code == CONFIG_ERROR, out
    assert re.search(r"wsrun\.toml:3: key `route\[1\]\.wasm`", out), out
    assert str(tmp_path / "nope.wasm") in out, out


def test_serving_bad_wasm_config_fails_before_binding(tmp_path: Path) -> None:
    cfg = tmp_path / "wsrun.toml"
    cfg.write_text(f'[[route]]\nprefix = "/x"\nwasm = "{wasm_handler("hello")}"\nmemory = "0"\n')
    port = free_port()
    done = run_wsrun(
        ["-c", str(cfg), *state_args(tmp_path), "--bind", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        port=port,
    )
    assert done.code == CONFIG_ERROR, done.out
    assert not done.seen_open
    text = done.out
    assert "wsrun.toml:4: key `route[1].memory`" in text, text


#: An interface the host provides (`wasi:cli`), renamed to one it does not; same length, so
#: the patched component stays well-formed.
PROVIDED = b"wasi:cli/environment@"
LACKING = b"wasi:cli/xnvironment@"


def test_component_importing_what_the_host_lacks_is_refused(tmp_path: Path) -> None:
    """README: a component that imports what the host does not provide stops the start-up
    with a message naming the file (and the import); `wsrun check` reports the same."""
    data = wasm_handler("hello").read_bytes()
    assert PROVIDED in data, "hello.wasm no longer imports wasi:cli/environment"
    lacks = tmp_path / "lacks.wasm"
    lacks.write_bytes(data.replace(PROVIDED, LACKING))
    port = free_port()
    args = ["--wasm", f"/x={lacks}", *state_args(tmp_path)]
    done = run_wsrun([*args, "--bind", f"127.0.0.1:{port}"], cwd=tmp_path, port=port)
    assert done.code == LOAD_FAILED, done.out
    assert "listening on" not in done.out, "no worker may start serving"
    assert str(lacks) in done.out and LACKING.decode() in done.out, done.out
    checked = run_wsrun(["check", *args], cwd=tmp_path)
    assert checked.code == LOAD_FAILED, checked.out
    assert str(lacks) in checked.out and LACKING.decode() in checked.out, checked.out

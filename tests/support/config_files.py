"""TOML configurations the end-to-end tests write: a `[server]` section the test chooses,
the probe app and hello.wasm routes, and a tenant serving hello.wasm; and the check that a bad
setting stops the server with an error naming the file, line and key."""

from __future__ import annotations

from pathlib import Path

from support.launcher import Launcher
from support.paths import APPS
from support.wasm import wasm_handler

#: The jobs app (`tests/apps/jobs_app.py`) at `/app`, its state under `state/` beside the config.
JOBS_APP_CONFIG = """
[server]
state_dir = "state"

[[route]]
prefix = "/app"
python = "jobs_app:app"
"""


def probe_app(server: str, *, python_prefix: str = "/") -> str:
    """`[server]` with the test's lines first (so the first is line 2), the probe apps'
    pythonpath, and the probe app at `python_prefix`."""
    return (
        f"[server]\n{server}\n"
        f'pythonpath = ["{APPS}"]\n\n'
        f'[[route]]\nprefix = "{python_prefix}"\npython = "probe:app"\n'
    )


def probe_and_hello(server: str, *, python_prefix: str = "/", tenant: str = "") -> str:
    """`probe_app`, hello.wasm at `/hello`, then `tenant` (see `hello_tenant`)."""
    return (
        probe_app(server, python_prefix=python_prefix)
        + f'\n[[route]]\nprefix = "/hello"\nwasm = "{wasm_handler("hello")}"\n'
        + tenant
    )


def hello_tenant(hosts: list[str], *, prefix: str = "/", extra: str = "") -> str:
    """A `[[tenant]]` named `acme` answering for `hosts`, with `extra` lines (its own
    settings) and hello.wasm at `prefix`."""
    quoted = ", ".join(f'"{host}"' for host in hosts)
    return (
        f'\n[[tenant]]\nname = "acme"\nhosts = [{quoted}]\n{extra}\n'
        f'  [[tenant.route]]\n  prefix = "{prefix}"\n  wasm = "{wasm_handler("hello")}"\n'
    )


def write_config(directory: Path, text: str) -> Path:
    """Writes `text` as `directory/wsrun.toml`; returns its path."""
    cfg = directory / "wsrun.toml"
    cfg.write_text(text)
    return cfg


def assert_config_error(launcher: Launcher, cfg: Path, line: int, key: str, value: str) -> None:
    """Starting with `cfg` fails before serving, and the log names `cfg:line`, the key and
    the bad value."""
    srv = launcher.start(["-c", str(cfg)], wait="none")
    assert srv.wait_exit() != 0
    log = srv.log()
    assert f"{cfg}:{line}" in log and key in log and value in log, log

"""`[route.shadow]` and `[route.canary]` are validated like the rest of wsrun.toml: every
mistake is an error naming the file, the line and the dotted key, before anything is bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.launcher import run_wsrun
from support.paths import APPS
from support.wasm import wasm_handler

HEAD = f'[server]\npythonpath = ["{APPS}"]\n\n'


def _check(tmp: Path, route: str) -> tuple[int, str]:
    cfg = tmp / "wsrun.toml"
    cfg.write_text(HEAD + route)
    done = run_wsrun(["check", "-c", str(cfg)])
    return done.code, done.out


PY = '[[route]]\nprefix = "/a"\npython = "migrate_app:primary"\n'


@pytest.mark.parametrize(
    ("table", "line", "key", "message"),
    [
        (
            '[route.shadow]\nwasm = "HELLO"\nsamples = 1\n',
            9,
            "route[1].shadow.samples",
            "did you mean `sample`",
        ),
        ('[route.shadow]\nwasm = "missing.wasm"\n', 8, "route[1].shadow.wasm", "is not a file"),
        (
            '[route.shadow]\nwasm = "HELLO"\nsample = 1.5\n',
            9,
            "route[1].shadow.sample",
            "between 0 and 1",
        ),
        (
            '[route.shadow]\nwasm = "HELLO"\nignore = ["items.id"]\n',
            9,
            "route[1].shadow.ignore",
            "not a JSON path",
        ),
        ("[route.shadow]\nsample = 0.5\n", 7, "route[1].shadow", "needs a handler"),
        (
            '[route.canary]\nwasm = "HELLO"\npercent = 120\n',
            9,
            "route[1].canary.percent",
            "between 0 and 100",
        ),
        (
            '[route.canary]\nwasm = "HELLO"\npercent = 5\nsticky = "query:x"\n',
            10,
            "route[1].canary.sticky",
            "cookie:NAME",
        ),
        ('[route.canary]\nwasm = "HELLO"\n', 7, "route[1].canary", "needs `percent`"),
        (
            '[route.canary]\nwasm = "HELLO"\npercent = 5\nrollback_5xx_rate = -1\n',
            10,
            "route[1].canary.rollback_5xx_rate",
            "between 0 and 1",
        ),
    ],
)
def test_a_bad_table_names_file_line_and_key(
    tmp_path: Path, table: str, line: int, key: str, message: str
) -> None:
    text = PY + table.replace("HELLO", str(wasm_handler("hello")))
    code, out = _check(tmp_path, text)
    assert code == 2, out
    assert f"wsrun.toml:{line}: key `{key}`" in out, out
    assert message in out, out


def test_a_static_route_takes_no_canary(tmp_path: Path) -> None:
    route = (
        f'[[route]]\nprefix = "/s"\nstatic = "{tmp_path}"\n'
        f'[route.canary]\nwasm = "{wasm_handler("hello")}"\npercent = 5\n'
    )
    code, out = _check(tmp_path, route)
    assert code == 2, out
    assert "wsrun.toml:7: key `route[1].canary`" in out and "static" in out, out


def test_a_tenant_route_takes_no_python_shadow(tmp_path: Path) -> None:
    route = (
        '[[tenant]]\nname = "t"\nhosts = ["t.test"]\n'
        f'  [[tenant.route]]\n  prefix = "/"\n  wasm = "{wasm_handler("hello")}"\n'
        '  [tenant.route.shadow]\n  python = "migrate_app:shadow"\n'
    )
    code, out = _check(tmp_path, route)
    assert code == 2, out
    assert "key `tenant[1].route[1].shadow.python`" in out, out


def test_a_valid_shadow_and_canary_pass_the_check(tmp_path: Path) -> None:
    hello = wasm_handler("hello")
    route = (
        PY + f'[route.shadow]\nwasm = "{hello}"\nmethods = ["GET", "post"]\nsample = 0.5\n'
        'ignore = ["$.generated_at", "$.items[*].id", "header:date"]\n'
        f'[route.canary]\npython = "migrate_app:shadow"\npercent = 10\nsticky = "header:x-user"\n'
        "rollback_5xx_rate = 0.05\nrollback_window = 100\n"
    )
    code, out = _check(tmp_path, route)
    assert code == 0, out

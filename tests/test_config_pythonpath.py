"""The config file's own directory is on `sys.path`: an app next to its wsrun.toml imports
without `pythonpath = ["."]`, after any `pythonpath` entries, whatever the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from conftest import Launcher

ROUTE = '[[route]]\nprefix = "/"\npython = "{target}"\n'


def _app(body_expr: str, imports: str = "") -> str:
    """A WSGI module whose response body is the Python expression `body_expr`."""
    return (
        f"{imports}"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        f"    return [({body_expr}).encode()]\n"
    )


def test_app_next_to_its_config_file_imports_from_another_cwd(
    launcher: Launcher, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    elsewhere = tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    (site / "cfgdir_app.py").write_text(_app("'served from the config dir'"))
    (site / "wsrun.toml").write_text(ROUTE.format(target="cfgdir_app:app"))
    # Relative to the working directory, which holds no app: only the file's directory can.
    srv = launcher.start(["-c", "../site/wsrun.toml"], cwd=elsewhere)
    r = requests.get(srv.url + "/", timeout=5)
    assert (r.status_code, r.text) == (200, "served from the config dir")


def test_a_pythonpath_entry_wins_over_the_config_dir(launcher: Launcher, tmp_path: Path) -> None:
    site = tmp_path / "site"
    lib = site / "lib"
    lib.mkdir(parents=True)
    # The same module name in both places: the `pythonpath` entry must be found first ...
    (site / "shadowed_app.py").write_text(_app("'config dir'"))
    (lib / "shadowed_app.py").write_text(
        _app("'pythonpath, then ' + cfgdir_helper.VALUE", imports="import cfgdir_helper\n\n")
    )
    # ... and the config dir is still on the path after it.
    (site / "cfgdir_helper.py").write_text("VALUE = 'config dir helper'\n")
    toml = '[server]\npythonpath = ["lib"]\n\n' + ROUTE.format(target="shadowed_app:app")
    (site / "wsrun.toml").write_text(toml)
    srv = launcher.start(["-c", str(site / "wsrun.toml")], cwd=tmp_path)
    r = requests.get(srv.url + "/", timeout=5)
    assert (r.status_code, r.text) == (200, "pythonpath, then config dir helper")

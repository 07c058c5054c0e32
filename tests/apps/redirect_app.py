"""Uses `wsrun.headers.redirect` from the embedded package (no pip install)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from probe import record_call

from wsrun.headers import redirect


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    record_call(environ)
    if environ["PATH_INFO"] == "/perm":
        return redirect(start_response, "/target", permanent=True)
    if environ["PATH_INFO"] == "/iri":
        return redirect(start_response, "/café")
    return redirect(start_response, "/target")

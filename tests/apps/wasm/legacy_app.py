"""The "legacy" Flask app of the migration story: it keeps `/` while `/api/v2` moves to a
WASM handler (`--wasm /api/v2=handlers/echo.wasm`). Every call appends `METHOD PATH` to
$WSRUN_TEST_CALL_LOG, so a test can prove which requests reached Python."""

from __future__ import annotations

import os

from flask import Flask, request

app = Flask(__name__)


@app.before_request
def record_call() -> None:
    log = os.environ.get("WSRUN_TEST_CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{request.method} {request.full_path.rstrip('?')}\n")


@app.get("/")
def index() -> str:
    return "legacy home\n"


@app.get("/other")
def other() -> str:
    return "legacy other\n"


@app.get("/api/v1/items")
def items_v1() -> dict[str, list[int]]:
    return {"items": [1, 2, 3]}

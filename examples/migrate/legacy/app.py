"""The "legacy" app of the migration demo: a plain Flask app that owns the whole site.

wsrun serves it at `/` (`app:app` with `legacy/` on the Python path) while the new API,
`/api/v2`, is a WebAssembly component (`../api_v2`). Nothing here knows about that: the
WASM route is simply longer, so it wins for its own paths and Flask keeps everything else.
"""

from __future__ import annotations

from html import escape
from typing import TypedDict

from flask import Flask, Response, abort

app = Flask(__name__)


class User(TypedDict):
    id: int
    name: str
    email: str


#: The in-memory user directory (the WASM API serves the same people).
USERS: list[User] = [
    {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"},
    {"id": 2, "name": "Grace Hopper", "email": "grace@example.com"},
    {"id": 3, "name": "Alan Turing", "email": "alan@example.com"},
]

LINKS: list[tuple[str, str]] = [
    ("/users", "users (Flask)"),
    ("/users/1", "one user (Flask)"),
    ("/api/v1/users", "the old API, v1 (Flask)"),
    ("/api/v2/users", "the new API, v2 (WebAssembly)"),
    ("/api/v2/users/1", "one user, v2 (WebAssembly)"),
    ("/api/v2/health", "health of v2 (WebAssembly)"),
]


def find_user(user_id: int) -> User:
    for user in USERS:
        if user["id"] == user_id:
            return user
    abort(404)


@app.after_request
def mark(response: Response) -> Response:
    response.headers["X-Served-By"] = "flask"
    return response


@app.get("/")
def index() -> str:
    items = "".join(
        f"<li><a href='{escape(href)}'>{escape(href)}</a>: {escape(text)}</li>"
        for href, text in LINKS
    )
    return (
        "<!doctype html><title>Legacy app</title>"
        "<h1>A Flask app, migrating to WebAssembly one route at a time</h1>"
        f"<ul>{items}</ul>"
    )


@app.get("/users")
def users() -> dict[str, object]:
    return {"users": USERS, "count": len(USERS)}


@app.get("/health")
def health() -> dict[str, object]:
    """Mounted at `/api/v1` (shadow.toml) this answers `/api/v1/health` like v2's, but for the
    runtime: the one deliberate difference the shadow report shows."""
    return {"status": "ok", "runtime": "python", "api_version": None}


@app.get("/users/<int:user_id>")
def user(user_id: int) -> User:
    return find_user(user_id)


@app.get("/api/v1/users")
def api_v1_users() -> list[User]:
    """The old API: a bare JSON list (v2 wraps it in an object with a count)."""
    return USERS


@app.errorhandler(404)
def not_found(_error: Exception) -> tuple[dict[str, str], int]:
    return {"error": "not found"}, 404

"""A Fapws4-style script: `wsrun tests/apps/hello_script.py`.

Handlers return str, bytes, a list, a tuple or an open file; PATHS maps prefixes to them.
"""

from __future__ import annotations

import os

from fapws4.base import Environ, Start_response

SERVER = "127.0.0.1:1"  # the tests' --bind must win over this
MAX_BODY_SIZE = 1000
DEBUG = False

HERE = os.path.dirname(os.path.abspath(__file__))


def hello(env: Environ, start_response: Start_response) -> str:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "Hello World!!"


def as_bytes(env: Environ, start_response: Start_response) -> bytes:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return b"bytes body"


def as_list(env: Environ, start_response: Start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"list ", b"body"]


def as_tuple(env: Environ, start_response: Start_response) -> tuple[bytes, ...]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"tuple ", b"body")


def as_file(env: Environ, start_response: Start_response) -> object:
    start_response("200 OK", [("Content-Type", "text/x-python")])
    return open(os.path.join(HERE, "hello_script.py"), "rb")


def upload(env: Environ, start_response: Start_response) -> str:
    body = env["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return f"got {len(body)} bytes"


def where(env: Environ, start_response: Start_response) -> str:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return f"{env['SCRIPT_NAME']}|{env['PATH_INFO']}"


PATHS = [
    ("/", hello),
    ("/bytes", as_bytes),
    ("/list", as_list),
    ("/tuple", as_tuple),
    ("/file", as_file),
    ("/upload", upload),
    ("/where", where),
]

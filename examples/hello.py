"""A Fapws4-style wsrun script: `wsrun examples/hello.py`, then open http://127.0.0.1:8888/.

Each entry of PATHS maps a URL prefix to a handler(environ, start_response). Like Fapws4,
a handler may return str, bytes, a list or tuple of them, or an open file.
"""

from pathlib import Path
from typing import IO

from fapws4.base import Environ, Start_response
from wsrun.headers import redirect
from wsrun.views import Staticfile

HERE = Path(__file__).parent

SERVER = "0.0.0.0:8888"
MAX_BODY_SIZE = 10 * 1024 * 1024
DEBUG = False


def hello(env: Environ, start_response: Start_response) -> str:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return "Hello from wsrun! Try /echo, /file, /list, /static/hello.txt, /old\n"


def echo(env: Environ, start_response: Start_response) -> bytes:
    body: bytes = env["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return body


def as_list(env: Environ, start_response: Start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"one ", b"two ", b"three\n"]


def as_tuple(env: Environ, start_response: Start_response) -> tuple[str, ...]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ("a ", "tuple\n")


def this_file(env: Environ, start_response: Start_response) -> IO[bytes]:
    start_response("200 OK", [("Content-Type", "text/x-python")])
    return open(__file__, "rb")  # the server sends the file and closes it


def old(env: Environ, start_response: Start_response) -> list[bytes]:
    return redirect(start_response, "/", permanent=True)


PATHS = [
    ("/", hello),
    ("/echo", echo),
    ("/list", as_list),
    ("/tuple", as_tuple),
    ("/file", this_file),
    ("/static", Staticfile(HERE / "static", maxage=60)),
    ("/old", old),
]

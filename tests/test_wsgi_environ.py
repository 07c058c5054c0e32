"""PEP 3333 environ: every required key with the right type and value."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import requests

from support.http import free_port, parse_response, raw_exchange, read_response
from support.launcher import Launcher, Server
from support.paths import APPS, WAIT


def _environ(srv: Server, raw: bytes) -> dict[str, Any]:
    r = parse_response(raw_exchange(srv.port, raw).data)
    assert r.status == 200, r
    data = json.loads(r.body)
    assert isinstance(data, dict)
    return data


def test_required_keys_and_types(probe: Server) -> None:
    with socket.create_connection(("127.0.0.1", probe.port), timeout=3) as s:
        client_port = s.getsockname()[1]
        s.sendall(
            b"POST /some/path?a=1&b=%20c&d=%C3%A9 HTTP/1.1\r\nHost: example.test:1234\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n"
            b"X-Custom: hello\r\nConnection: close\r\n\r\nbody"
        )
        r = read_response(s)
    env = json.loads(r.body)
    types = env["__types__"]
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/some/path"
    assert env["QUERY_STRING"] == "a=1&b=%20c&d=%C3%A9"
    assert env["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert env["CONTENT_LENGTH"] == "4"
    assert env["SERVER_NAME"] == "example.test"
    assert types["SERVER_PORT"] == "str" and env["SERVER_PORT"] in ("1234", str(probe.port))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert types["REMOTE_PORT"] == "str" and env["REMOTE_PORT"] == str(client_port)
    assert env["HTTP_HOST"] == "example.test:1234"
    assert env["HTTP_X_CUSTOM"] == "hello"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    for key in (
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "HTTP_HOST",
        "wsgi.url_scheme",
    ):
        assert types[key] == "str", key
    assert types["wsgi.version"] == "tuple" and env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        assert types[key] == "bool", key
    assert env["__input_methods__"] == ["read", "readline", "readlines", "__iter__"]
    assert env["__errors_methods__"] == ["write", "writelines", "flush"]
    assert "wsgi.file_wrapper" in env


def test_get_without_body_content_length(probe: Server) -> None:
    env = _environ(probe, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert env.get("CONTENT_LENGTH") in (None, "", "0")
    assert env.get("CONTENT_TYPE") in (None, "")
    assert env["REQUEST_METHOD"] == "GET"


def test_path_info_percent_decoded_latin1(probe: Server) -> None:
    env = _environ(
        probe, b"GET /caf%C3%A9/a%20b?x=%C3%A9 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    )
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert env["QUERY_STRING"] == "x=%C3%A9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a b"


def test_repeated_headers_joined_and_underscores_dropped(probe: Server) -> None:
    env = _environ(
        probe,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nX-Multi: b\r\nX-Multi: c\r\n"
        b"X_Under: evil\r\nX-Dash: good\r\nConnection: close\r\n\r\n",
    )
    assert env["HTTP_X_MULTI"] == "a,b,c"
    assert env["HTTP_X_DASH"] == "good"
    assert "HTTP_X_UNDER" not in env, "a header name with '_' must be dropped"


def test_cookie_headers(probe: Server) -> None:
    env = _environ(
        probe,
        b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n",
    )
    # RFC 6265: several Cookie headers are one cookie-string joined with "; "
    assert env["HTTP_COOKIE"] in ("a=1; b=2", "a=1,b=2")


def test_non_ascii_header_value_is_latin1_str(probe: Server) -> None:
    env = _environ(
        probe, b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\nConnection: close\r\n\r\n"
    )
    assert env["HTTP_X_NAME"] == "caf\xc3\xa9"


def test_http10_protocol_and_host_missing(probe: Server) -> None:
    env = _environ(probe, b"GET /p HTTP/1.0\r\n\r\n")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert isinstance(env["SERVER_NAME"], str) and env["SERVER_NAME"]
    assert env["PATH_INFO"] == "/p"


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_without_host_server_name_is_the_address_connected_to(
    launcher: Launcher, bind: str
) -> None:
    """Behind a wildcard bind the local IP is asked of the socket only when a request has no
    Host; bound or wildcard, SERVER_NAME is then the address the client connected to."""
    port = free_port()
    srv = launcher.start(
        ["probe:app", "--pythonpath", str(APPS), "--bind", f"{bind}:{port}"], bind=False, port=port
    )
    for raw in (b"GET /p HTTP/1.0\r\n\r\n", b"POST /p HTTP/1.0\r\nContent-Length: 1\r\n\r\nx"):
        env = _environ(srv, raw)
        assert env["SERVER_NAME"] == "127.0.0.1", raw
        assert env["SERVER_PORT"] == str(port)
    with_host = _environ(srv, b"GET /p HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert with_host["SERVER_NAME"] == "a.test"
    assert with_host["SERVER_PORT"] == str(port)


def test_chunked_request_content_length_is_spooled_length(probe: Server) -> None:
    r = requests.post(probe.url + "/echo", data=iter([b"abc", b"defg"]), timeout=WAIT)
    assert r.status_code == 200
    assert r.content == b"abcdefg"
    assert r.headers["X-Env-Content-Length"] == "'7'"


def test_methods_pass_through(probe: Server) -> None:
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = requests.request(method, probe.url + "/m", timeout=WAIT)
        assert r.status_code == 200
        assert r.json()["REQUEST_METHOD"] == method


@pytest.mark.parametrize(
    ("flags", "multithread", "multiprocess"),
    [([], False, False), (["--threads", "4"], True, False), (["--workers", "2"], False, True)],
)
def test_multithread_multiprocess_flags(
    launcher: Launcher, flags: list[str], multithread: bool, multiprocess: bool
) -> None:
    srv = launcher.probe(*flags)
    env = requests.get(srv.url + "/", timeout=WAIT).json()
    assert env["wsgi.multithread"] is multithread
    assert env["wsgi.multiprocess"] is multiprocess


def test_values_that_usually_repeat_still_follow_each_request(probe: Server) -> None:
    """SERVER_NAME, SERVER_PORT and REMOTE_ADDR are reused from the previous request while
    they repeat; a change must show at once."""

    def env_from(source_ip: str, host: str) -> dict[str, Any]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.bind((source_ip, 0))
            s.connect(("127.0.0.1", probe.port))
            s.sendall(f"GET /env HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            r = read_response(s)
        data = json.loads(r.body)
        assert isinstance(data, dict)
        return data

    seen = [
        env_from("127.0.0.1", "one.test"),
        env_from("127.0.0.1", "one.test"),
        env_from("127.0.0.2", "two.test:81"),
        env_from("127.0.0.1", "one.test"),
    ]
    assert [e["SERVER_NAME"] for e in seen] == ["one.test", "one.test", "two.test", "one.test"]
    assert [e["REMOTE_ADDR"] for e in seen] == ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1"]
    assert {e["SERVER_PORT"] for e in seen} == {str(probe.port)}

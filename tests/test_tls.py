"""TLS: `--certfile`/`--keyfile` (`tls_cert`/`tls_key`) serve TLS with rustls on the bound
addresses; tenants bring their own certificates, chosen by SNI; a certificate replaced on disk
is used by the next handshake, a broken replacement is refused and logged; a bad certificate or
key is a start-up error naming the file and the config key, before anything is bound."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import config_files
from support.config_files import hello_tenant, probe_and_hello, probe_app
from support.http import free_port, parse_responses, recv_until_closed
from support.launcher import Launcher, Server, run_wsrun
from support.paths import APPS
from support.tls import CertPair, TestCA, install, tls_get
from support.wasm import hello_body


def write_config(tmp: Path, cert: CertPair, tenant: CertPair | None = None) -> Path:
    """A config serving the probe app at `/`, hello.wasm at `/hello`, and a tenant
    `acme.test` (its own certificate when given) with hello.wasm at `/`."""
    tenant_tls = f'tls_cert = "{tenant.cert}"\ntls_key = "{tenant.key}"' if tenant else ""
    server = f'tls_cert = "{cert.cert}"\ntls_key = "{cert.key}"'
    acme = hello_tenant(["acme.test", "*.acme.test"], extra=tenant_tls)
    return config_files.write_config(tmp, probe_and_hello(server, tenant=acme))


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
def tls_server(launcher: Launcher, tmp_path: Path, ca: TestCA) -> Iterator[tuple[Server, Path]]:
    """A TLS server whose default certificate (CN `gen1`, for localhost) lives at
    `server.pem`/`server.key` in the returned directory, and whose tenant has its own."""
    live = tmp_path / "live"
    live.mkdir()
    default = CertPair(live / "server.pem", live / "server.key")
    install(ca.issue("gen1", ["localhost"], cn="gen1"), default.cert, default.key)
    tenant = ca.issue("acme", ["acme.test", "*.acme.test"])
    cfg = write_config(tmp_path, default, tenant)
    yield launcher.start(["-c", str(cfg)]), live


def test_python_and_wasm_routes_are_served_over_tls(tls_server, ca: TestCA) -> None:
    srv, _ = tls_server
    probe = tls_get(srv.port, ca, "localhost", "/env")
    assert probe.response.status == 200
    environ = json.loads(probe.response.body)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert probe.alpn == "http/1.1"
    wasm = tls_get(srv.port, ca, "localhost", "/hello")
    assert (wasm.response.status, wasm.response.body.decode()) == (200, hello_body(0))
    assert "listening on https://" in srv.log()


def test_sni_picks_the_tenant_certificate(tls_server, ca: TestCA) -> None:
    srv, _ = tls_server
    for name in ("acme.test", "www.acme.test"):
        got = tls_get(srv.port, ca, name, "/")
        assert got.common_name() == "acme.test", name
        assert ("DNS", name if name == "acme.test" else "*.acme.test") in got.peer["subjectAltName"]
        assert got.response.body.decode() == hello_body(0)
    default = tls_get(srv.port, ca, "localhost", "/hello")
    assert default.common_name() == "gen1"


def test_a_replaced_certificate_is_used_by_the_next_handshake(tls_server, ca: TestCA) -> None:
    srv, live = tls_server
    assert tls_get(srv.port, ca, "localhost", "/hello").common_name() == "gen1"
    install(ca.issue("gen2", ["localhost"], cn="gen2"), live / "server.pem", live / "server.key")
    assert tls_get(srv.port, ca, "localhost", "/hello").common_name() == "gen2"
    assert srv.wait_log("TLS: reloaded")


def test_a_broken_replacement_keeps_the_previous_certificate(tls_server, ca: TestCA) -> None:
    srv, live = tls_server
    (live / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n")
    got = tls_get(srv.port, ca, "localhost", "/hello")
    assert got.common_name() == "gen1"
    assert got.response.status == 200
    assert srv.wait_log("cannot reload the certificate, the previous one stays")
    assert str(live / "server.pem") in srv.log()
    # A key that does not match the certificate is refused the same way.
    other = ca.issue("other", ["localhost"], cn="other")
    (live / "server.key").write_bytes(other.key.read_bytes())
    (live / "server.pem").write_bytes(ca.issue("gen3", ["localhost"], cn="gen3").cert.read_bytes())
    assert tls_get(srv.port, ca, "localhost", "/hello").common_name() == "gen1"
    assert srv.wait_log("does not match the certificate")


def start_fails(tmp_path: Path, args: list[str]) -> str:
    """Runs wsrun expecting a configuration error (exit 2) before anything is bound."""
    port = free_port()
    done = run_wsrun([*args, "--bind", f"127.0.0.1:{port}"], cwd=tmp_path, port=port)
    assert done.code == 2, done.out
    assert not done.seen_open
    assert "listening on" not in done.out
    return done.out


def test_start_up_errors_name_the_file_and_the_key(tmp_path: Path, ca: TestCA) -> None:
    good = ca.issue("good", ["localhost"])
    app = ["probe:app", "--pythonpath", str(APPS)]
    missing = tmp_path / "missing.pem"
    out = start_fails(tmp_path, [*app, "--certfile", str(missing), "--keyfile", str(good.key)])
    assert "--certfile" in out and str(missing) in out and "cannot read" in out

    wrong = ca.issue("wrong", ["localhost"])
    out = start_fails(tmp_path, [*app, "--certfile", str(good.cert), "--keyfile", str(wrong.key)])
    assert "--keyfile" in out and str(wrong.key) in out and "does not match" in out

    out = start_fails(tmp_path, [*app, "--certfile", str(good.cert)])
    assert "--certfile" in out and "--keyfile" in out

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    cfg = write_config(tmp_path, CertPair(garbage, good.key))
    out = start_fails(tmp_path, ["-c", str(cfg)])
    assert "server.tls_cert" in out and str(garbage) in out and "wsrun.toml:2" in out

    narrow = ca.issue("narrow", ["acme.test"])  # no *.acme.test
    cfg = write_config(tmp_path, good, narrow)
    out = start_fails(tmp_path, ["-c", str(cfg)])
    assert "tenant[1].tls_cert" in out and str(narrow.cert) in out
    assert "does not cover the tenant's host `*.acme.test`" in out


def test_one_tls_connection_serves_inline_gets_a_file_and_then_a_body(
    launcher: Launcher, tmp_path: Path, ca: TestCA
) -> None:
    """HTTP/1.1 over TLS takes the same paths as cleartext: pipelined GETs on the inline path
    (a Python app, a static file large enough for sendfile on a plain socket, copied through
    the TLS stream here), then a request with a body, which hyper serves for the rest of the
    connection. Every response arrives whole and in order, and both Python GETs see https."""
    pair = ca.issue("inline", ["localhost"])
    files = tmp_path / "files"
    files.mkdir()
    big = os.urandom(1_000_000)
    (files / "big.bin").write_bytes(big)
    server = f'tls_cert = "{pair.cert}"\ntls_key = "{pair.key}"'
    text = probe_app(server) + f'\n[[route]]\nprefix = "/files"\nstatic = "{files}"\n'
    srv = launcher.start(["-c", str(config_files.write_config(tmp_path, text))])
    requests = (
        b"GET /env HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /files/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /env HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    with ca.context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(requests)
        data, closed = recv_until_closed(tls, timeout=10)
    assert closed
    first, file, echo, last = parse_responses(data, ["GET", "GET", "POST", "GET"])
    assert [r.status for r in (first, file, echo, last)] == [200, 200, 200, 200]
    for probe in (first, last):
        assert json.loads(probe.body)["wsgi.url_scheme"] == "https"
    assert file.body == big
    assert echo.body == b"hello"

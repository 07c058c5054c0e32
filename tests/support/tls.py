"""Certificates for the TLS tests, made with `openssl`, and TLS clients over real sockets.

Owns: a throwaway CA and the certificates it signs (`TestCA`), one TLS request with the
certificate the client saw (`tls_get`), `curl` over HTTP/2 (`curl_http`).
Must not touch: servers (see `launcher`), plain HTTP helpers (see `http`).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.http import Response, read_response


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class CertPair:
    cert: Path
    key: Path


class TestCA:
    """A CA in `directory` that signs leaf certificates for the names a test asks for."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.pem"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=wsrun test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign",
            cwd=self.dir,
        )  # fmt: skip

    def issue(self, name: str, dns: list[str], cn: str | None = None) -> CertPair:
        """A key and a certificate signed by this CA, for the SAN DNS names `dns`, with common
        name `cn` (default: the first name), written to NAME.pem and NAME.key."""
        ext = self.dir / f"{name}.ext"
        ext.write_text("subjectAltName=" + ",".join(f"DNS:{d}" for d in dns) + "\n")
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn or dns[0]}",
            cwd=self.dir,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name,
            cwd=self.dir,
        )  # fmt: skip
        return CertPair(self.dir / f"{name}.pem", self.dir / f"{name}.key")

    def context(self, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
        """A client context trusting only this CA, offering `alpn`."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.set_alpn_protocols(list(alpn))
        return ctx


def install(pair: CertPair, cert: Path, key: Path) -> None:
    """Replaces `cert` and `key` on disk with `pair`'s, each by an atomic rename."""
    for src, dst in ((pair.key, key), (pair.cert, cert)):
        tmp = dst.with_suffix(dst.suffix + ".new")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)


@dataclass
class TlsResult:
    response: Response
    #: The certificate the client verified, as `ssl.SSLSocket.getpeercert()` gives it.
    peer: dict
    alpn: str | None

    def common_name(self) -> str:
        for rdn in self.peer.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return ""


def tls_get(
    port: int, ca: TestCA, server_name: str, path: str = "/", timeout: float = 10.0
) -> TlsResult:
    """One HTTP/1.1 GET over TLS to 127.0.0.1:`port`, with SNI and certificate verification
    for `server_name`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with ca.context().wrap_socket(raw, server_hostname=server_name) as tls:
        request = f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode())
        response = read_response(tls, timeout=timeout)
        return TlsResult(response, tls.getpeercert() or {}, tls.selected_alpn_protocol())


@dataclass
class CurlResult:
    code: int
    status: int
    version: str
    body: bytes


def curl_http(url: str, *args: str, timeout: float = 20.0) -> CurlResult:
    """`curl URL ARGS`: status, HTTP version used (`2`, `1.1`) and body."""
    marker = b"\n--wsrun-curl--"
    proc = subprocess.run(
        ["curl", "-sS", "--max-time", str(int(timeout)), *args, "-w",
         marker.decode() + "%{http_code} %{http_version}", url],
        capture_output=True,
        timeout=timeout + 5,
    )  # fmt: skip
    body, _, tail = proc.stdout.rpartition(marker)
    status, _, version = tail.decode().partition(" ")
    return CurlResult(proc.returncode, int(status or 0), version, body)

"""A `wsgiref.validate.validator`-wrapped app survives many request kinds: all 200 (or 204),
no AssertionError or WSGIWarning in the log."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
import requests

from support.http import parse_responses, raw_exchange
from support.launcher import Server
from support.paths import APPS, WAIT


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("validated"), name="validated")
    srv.start(["validated:app", "--pythonpath", str(APPS), "--spool-threshold", "4096"])
    yield srv
    srv.stop()


def _clean_log(srv: Server) -> None:
    """No validator complaint in the log, checked once a later request's wsgi.errors line is
    in it (a complaint about an earlier request would be logged before)."""
    before = srv.log_count("validated-errors")
    assert requests.get(srv.url + "/errors", timeout=WAIT).text == "ok"
    assert srv.wait_log("validated-errors", before + 1), srv.log()[-3000:]
    log = srv.log()
    for bad in ("AssertionError", "WSGIWarning", "Traceback"):
        assert bad not in log, log[-3000:]


def test_validator_many_request_kinds(validated: Server) -> None:
    url = validated.url
    s = requests.Session()
    assert s.get(url + "/plain", timeout=WAIT).text == "plain"
    h = s.head(url + "/plain", timeout=WAIT)
    assert h.status_code == 200 and h.headers["Content-Length"] == "5"
    for size in (0, 10, 5000, 300_000):
        body = os.urandom(size)
        r = s.post(url + "/echo", data=body, timeout=WAIT)
        assert r.status_code == 200, r.text
        assert r.text == f"{size} {hashlib.sha256(body).hexdigest()}"
    chunked = s.post(url + "/echo", data=iter([b"a" * 3000, b"b" * 3000]), timeout=WAIT)
    assert chunked.text == f"6000 {hashlib.sha256(b'a' * 3000 + b'b' * 3000).hexdigest()}"
    lines = s.post(url + "/lines", data=b"first\nsecond\nthird\nfourth", timeout=WAIT)
    assert lines.status_code == 200
    assert lines.text == repr((b"first\n", b"sec", [b"ond\n", b"third\n", b"fourth"]))
    big_lines = b"".join(b"%d\n" % i for i in range(3000))
    it = s.post(url + "/iterinput", data=big_lines, timeout=WAIT)
    assert it.text == "3000"
    assert s.get(url + "/gen", timeout=WAIT).text == "g1g2"
    assert s.get(url + "/write", timeout=WAIT).text == "w1w2"
    assert s.get(url + "/file", timeout=WAIT).content == b"f" * 10000
    assert s.get(url + "/realfile", timeout=WAIT).content == (APPS / "validated.py").read_bytes()
    assert s.get(url + "/nocontent", timeout=WAIT).status_code == 204
    assert s.get(url + "/errors", timeout=WAIT).text == "ok"
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        r = s.request(method, url + "/any/path?q=1", data=b"x", timeout=WAIT)
        assert r.status_code == 200 and r.text == f"{method} |/any/path"
    s.close()
    _clean_log(validated)


def test_validator_pipelined_and_http10(validated: Server) -> None:
    res = raw_exchange(
        validated.port,
        b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /gen HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nhi\r\n0\r\n\r\n"
        b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    rs = parse_responses(res.data, ["GET", "HEAD", "POST", "GET"])
    assert [r.status for r in rs] == [200, 200, 200, 200]
    assert rs[0].body == b"plain"
    assert rs[2].body.startswith(b"2 ")
    assert rs[3].body == "GET |/caf\xc3\xa9".encode()
    r10 = raw_exchange(validated.port, b"GET /gen HTTP/1.0\r\n\r\n")
    assert parse_responses(r10.data)[0].body == b"g1g2"
    _clean_log(validated)

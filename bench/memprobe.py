"""HTTP client helpers for the memory measurements in bench/core.sh (stdlib only).

python memprobe.py get URL N
    N keep-alive GETs; fails unless every answer is 200.
python memprobe.py upload URL BYTES
    POSTs a BYTES-long body generated on the fly (Content-Length set, sent in 1 MiB
    writes, nothing written to disk) and checks that the answer is `<BYTES> <sha256>` as
    computed here. Prints `ok <seconds> <MiB/s>`.
"""

import hashlib
import http.client
import os
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

SEND_CHUNK = 1024 * 1024
TIMEOUT_S = 120.0


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT_S)
    return conn, parts.path or "/"


def get(url: str, count: int) -> int:
    conn, path = _connect(url)
    for i in range(count):
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            print(f"request {i}: HTTP {resp.status}", file=sys.stderr)
            return 1
    conn.close()
    print(f"ok {count} requests")
    return 0


def upload(url: str, size: int) -> int:
    block = os.urandom(SEND_CHUNK)
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        left = size
        while left > 0:
            piece = block if left >= SEND_CHUNK else block[:left]
            digest.update(piece)
            left -= len(piece)
            yield piece

    conn, path = _connect(url)
    started = time.monotonic()
    conn.request(
        "POST",
        path,
        body=body(),
        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
    )
    resp = conn.getresponse()
    answer = resp.read().decode(errors="replace").strip()
    elapsed = time.monotonic() - started
    conn.close()
    expected = f"{size} {digest.hexdigest()}"
    if resp.status != 200 or answer != expected:
        print(f"upload failed: HTTP {resp.status}: {answer[:200]!r}", file=sys.stderr)
        print(f"expected: {expected}", file=sys.stderr)
        return 1
    print(f"ok {elapsed:.1f} {size / elapsed / 2**20:.0f}")
    return 0


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3 and argv[0] == "get":
            return get(argv[1], int(argv[2]))
        if len(argv) == 3 and argv[0] == "upload":
            return upload(argv[1], int(argv[2]))
    except (OSError, http.client.HTTPException) as exc:
        print(f"{argv[0]} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

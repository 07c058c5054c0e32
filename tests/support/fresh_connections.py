"""A load of clients that each open a new connection per request, so that connections keep
arriving in every listener's accept queue (used by the reload tests and bench/reload_shrink.py).

Owns: the client threads and their counts. Must not touch: servers (see `launcher`).
"""

from __future__ import annotations

import socket
import threading

from support.paths import WAIT


class FreshConnections:
    """Threads that each open a new connection per request (`GET /pid`, `Connection:
    close`) until stopped, so connections keep arriving in every listener's accept queue.
    Every error and every status but 200 is a failure: no connection is ever reused."""

    def __init__(self, url: str, threads: int = 4) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.addr = (host, int(port))
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> FreshConnections:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT)

    def _run(self) -> None:
        request = b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        while not self._stop.is_set():
            try:
                with socket.create_connection(self.addr, timeout=WAIT) as conn:
                    conn.sendall(request)
                    answer = b"".join(iter(lambda: conn.recv(65536), b""))
            except OSError as e:
                self.failures.append(f"{type(e).__name__}: {e}")
                continue
            if answer.startswith(b"HTTP/1.1 200 "):
                self.ok += 1
            else:
                self.failures.append(repr(answer[:40]))

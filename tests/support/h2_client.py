"""A raw HTTP/2 client for the HTTP/2 tests: Python `h2` over a real socket (cleartext h2c
with prior knowledge, or TLS with ALPN `h2`), able to send what a well-behaved client would not
(forbidden fields, floods of resets, CONTINUATION, PING and SETTINGS frames).

Owns: `H2Client` and its outcomes (`Reply`, `Refused`). Must not touch: servers (see
`launcher`), certificates (see `tls`).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from support.paths import WAIT
from support.tls import TestCA


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Refused:
    """A stream reset by the server, or the whole connection ended (GOAWAY or EOF)."""

    stream_reset: int | None = None  # RST_STREAM error code
    goaway: int | None = None  # GOAWAY error code
    closed: bool = False  # EOF or connection reset without a GOAWAY


@dataclass
class H2Client:
    sock: socket.socket
    conn: h2.connection.H2Connection
    events: list[h2.events.Event] = field(default_factory=list)
    ended: bool = False

    @classmethod
    def connect(
        cls,
        port: int,
        ca: TestCA | None = None,
        server_name: str = "localhost",
        strict: bool = True,
        pieces: Sequence[int] = (),
    ) -> H2Client:
        """Connects and sends the preface; `strict=False` lets forbidden fields through.
        `pieces`: sizes of the first writes, each followed by a pause, so that the preface
        reaches the server over several reads."""
        sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        if ca is not None:
            sock = ca.context(alpn=("h2",)).wrap_socket(sock, server_hostname=server_name)
            assert sock.selected_alpn_protocol() == "h2"  # type: ignore[attr-defined]
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding="utf-8",
            validate_outbound_headers=strict,
            normalize_outbound_headers=strict,
            validate_inbound_headers=False,
        )
        client = cls(sock, h2.connection.H2Connection(config=config))
        client.conn.initiate_connection()
        data = client.conn.data_to_send()
        for size in pieces:
            sock.sendall(data[:size])
            data = data[size:]
            time.sleep(0.05)
        sock.sendall(data)
        return client

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send(
        self,
        path: str,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        authority: str = "localhost",
        trailers: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Starts a request; returns its stream id. `trailers` end the stream after the body."""
        stream = self.conn.get_next_available_stream_id()
        head = [
            (":method", method),
            (":path", path),
            (":scheme", "http"),
            (":authority", authority),
        ]
        self.conn.send_headers(stream, [*head, *headers], end_stream=body is None)
        if body is not None:
            step = self.conn.max_outbound_frame_size
            for at in range(0, len(body), step):
                last = at + step >= len(body) and not trailers
                self.conn.send_data(stream, body[at : at + step], end_stream=last)
        if trailers:
            self.conn.send_headers(stream, list(trailers), end_stream=True)
        self.flush()
        return stream

    def pump(self, timeout: float = WAIT) -> bool:
        """Reads once and feeds the events; False once the connection has ended."""
        if self.ended:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.ended = True
            return False
        self.events.extend(self.conn.receive_data(data))
        with contextlib.suppress(OSError):
            self.flush()
        return True

    def goaway(self) -> int | None:
        for ev in self.events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                return int(ev.error_code)
        return None

    def outcome(self, stream: int, timeout: float = WAIT) -> Reply | Refused:
        """Waits for the stream's full response, or for its refusal."""
        deadline = time.monotonic() + timeout
        status, headers, body = 0, {}, b""
        while True:
            for ev in self.events:
                if getattr(ev, "stream_id", None) != stream:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                    status = int(headers[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, stream)
                elif isinstance(ev, h2.events.StreamEnded):
                    return Reply(status, headers, body)
                elif isinstance(ev, h2.events.StreamReset):
                    return Refused(stream_reset=int(ev.error_code))
            if self.goaway() is not None:
                return Refused(goaway=self.goaway())
            self.events = [e for e in self.events if getattr(e, "stream_id", None) != stream]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream {stream}: no outcome")
            if not self.pump(left):
                return Refused(goaway=self.goaway(), closed=True)

    def until_ended(self, timeout: float = WAIT) -> Refused:
        """Reads until the server ends the connection (GOAWAY then EOF, or EOF)."""
        deadline = time.monotonic() + timeout
        while self.goaway() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the server did not end the connection")
            try:
                if not self.pump(left):
                    break
            except h2.exceptions.ProtocolError:
                break
        return Refused(goaway=self.goaway(), closed=True)

    def remote_settings(self, timeout: float = WAIT) -> dict[int, int]:
        """The server's first SETTINGS."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    return {int(k): v.new_value for k, v in ev.changed_settings.items()}
            if not self.pump(deadline - time.monotonic()):
                raise ConnectionError("closed before SETTINGS")

"""The bodies `compress_app` sends, importable without wsrun (the tests compare them)."""

import json

ROWS = [
    {"id": i, "name": f"user {i}", "email": f"user{i}@example.com", "active": i % 3 == 0}
    for i in range(250)
]
JSON_BODY = json.dumps({"users": ROWS}).encode()
FIRST = b"first piece of a streamed body\n" * 4
SECOND = b"second piece\n"


def numbered(n: int) -> bytes:
    """The JSON document with `n` written over six digits in its middle: one length, one
    byte or more different per `n` (what `counter_app` sends as its `n`-th body)."""
    middle = len(JSON_BODY) // 2
    return JSON_BODY[:middle] + b"%06d" % n + JSON_BODY[middle + 6 :]

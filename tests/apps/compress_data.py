"""The bodies `compress_app` sends, importable without wsrun (the tests compare them)."""

import json

ROWS = [
    {"id": i, "name": f"user {i}", "email": f"user{i}@example.com", "active": i % 3 == 0}
    for i in range(250)
]
JSON_BODY = json.dumps({"users": ROWS}).encode()
FIRST = b"first piece of a streamed body\n" * 4
SECOND = b"second piece\n"

"""Request paths that try to leave a static root: one list for every static-file test.

Owns: the list. Each path, appended to a route prefix, aims at a file named `secret` next to
the served directory, at a `link` symlink out of it, or at a dotfile `.env` inside it: encoded
dots and slashes, backslashes, overlong UTF-8. Must not touch: servers or sockets.
"""

from __future__ import annotations

TRAVERSALS = [
    "/../secret",
    "/%2e%2e/secret",
    "/%2E%2E/secret",
    "/..%2fsecret",
    "/%2e%2e%2fsecret",
    "/sub/../../secret",
    "/sub/%2e%2e/%2e%2e/secret",
    "/sub/..%2f..%2fsecret",
    "/./../secret",
    "/%2e./secret",
    "/..%5csecret",
    "/..\\secret",
    "/sub\\..\\..\\secret",
    "/%c0%ae%c0%ae/secret",
    "/%c0%ae%c0%ae%c0%afsecret",
    "/%e0%80%ae%e0%80%ae/secret",
    "/sub%c0%af..%c0%af..%c0%afsecret",
    "/link",
    "/%2e%2e%2f.env",
    "/%2eenv",
    "/.%65nv",
]

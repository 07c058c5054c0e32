"""Summarise a callgrind profile of a server's worker: instructions per request and by object.

Usage: python callgrind_share.py CALLGRIND_OUT REQUESTS SERVER [TOP]

Reads the self cost (instructions executed, `Ir`) of every function in CALLGRIND_OUT, grouped
by the object (executable or shared library) it lives in, and prints:
- the instructions per request: all of them over the requests the worker served while the
  profile was collecting, counted as the calls of a function the server runs once per request
  (wsrun: `EnvironBuilder::build`; bjoern: `wsgi_call_application`), or REQUESTS (from wrk's
  count, an estimate: bench/instructions.sh passes the run's count scaled to the counted
  seconds) for a server without such a marker or a profile without its calls;
- each object's share of them;
- the server's own share (the `wsrun` binary; bjoern's extension and libev; Granian's
  extension), as the last line: `own share: N.NN%`;
- with TOP, the server's own TOP functions;
- when the profile was taken with `--cache-sim=yes` (bench/instructions.sh `CACHE_SIM=1`), the
  simulated first-level cache misses per request, instruction and data, and the server's share
  of each: code that runs few instructions can still cost cycles in misses.

Callgrind counts user-space instructions only: the kernel is not in the total, so a share here
is of the instructions the worker ran itself, not of its CPU time (see bench/README.md).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

NAMED = re.compile(r"\((\d+)\)(?:\s+(.*))?")

# A function each server calls exactly once per request it serves.
REQUEST_MARKERS = {
    "wsrun": "wsrun::python::environ::EnvironBuilder::build",
    "bjoern": "wsgi_call_application",
}


def own_object(server: str, obj: str) -> bool:
    """Whether `obj` (a path) is the server's own code rather than Python's or the system's."""
    name = Path(obj).name
    if server == "wsrun":
        return name == "wsrun"
    if server == "bjoern":
        return name.startswith("_bjoern") or name.startswith("libev")
    if server == "granian":
        return name.startswith("_granian")
    return False


class Profile:
    """Self cost per object and per (object, function) of one callgrind out file."""

    def __init__(self, marker: str | None = None) -> None:
        self.marker = marker
        self.marker_calls = 0
        self.by_object: Counter[str] = Counter()
        self.by_function: Counter[tuple[str, str]] = Counter()
        # Simulated L1 misses by object: "I1mr" (instruction), "D1m" (data, reads + writes).
        self.misses: dict[str, Counter[str]] = {"I1mr": Counter(), "D1m": Counter()}
        self._names: dict[tuple[str, str], str] = {}
        self._columns: dict[str, list[int]] = {}

    def _resolve(self, kind: str, text: str) -> str:
        # Callgrind compresses names: "(12) /lib/x.so" defines id 12, a later "(12)" reuses it.
        match = NAMED.match(text)
        if match is None:
            return text
        key = (kind, match.group(1))
        if match.group(2) is not None:
            self._names[key] = match.group(2)
        return self._names.get(key, text)

    def read(self, path: Path) -> None:
        obj = function = callee = ""
        call_cost_next = False
        with path.open(errors="replace") as lines:
            for line in lines:
                head = line[:1]
                if head.isdigit() or head in "+-*":
                    if call_cost_next:  # the inclusive cost of a call: not this function's own
                        call_cost_next = False
                        continue
                    fields = line.split()
                    if len(fields) >= 2 and fields[1].isdigit():
                        self.by_object[obj] += int(fields[1])
                        self.by_function[(obj, function)] += int(fields[1])
                        self._count_misses(obj, fields)
                elif line.startswith("events:"):
                    self._set_columns(line.split()[1:])
                elif line.startswith("ob="):
                    obj = self._resolve("ob", line[3:].strip())
                elif line.startswith("fn="):
                    function = self._resolve("fn", line[3:].strip())
                elif line.startswith("cob="):
                    self._resolve("ob", line[4:].strip())
                elif line.startswith("cfn="):
                    callee = self._resolve("fn", line[4:].strip())
                elif line.startswith("calls="):
                    call_cost_next = True
                    if callee == self.marker:
                        self.marker_calls += int(line[6:].split()[0])

    def _set_columns(self, events: list[str]) -> None:
        # A cost line is "position cost cost ...", one cost per event, trailing zeros left off.
        wanted = {"I1mr": ["I1mr"], "D1m": ["D1mr", "D1mw"]}
        for kind, names in wanted.items():
            self._columns[kind] = [events.index(n) + 1 for n in names if n in events]

    def _count_misses(self, obj: str, fields: list[str]) -> None:
        for kind, columns in self._columns.items():
            for column in columns:
                if column < len(fields) and fields[column].isdigit():
                    self.misses[kind][obj] += int(fields[column])


def print_misses(profile: Profile, requests: int, server: str) -> None:
    """The L1 misses per request and the server's share of them, if the profile has them."""
    for kind, label in (("I1mr", "instruction"), ("D1m", "data")):
        by_object = profile.misses[kind]
        total = sum(by_object.values())
        if total == 0:
            continue
        own = sum(n for obj, n in by_object.items() if own_object(server, obj))
        print(
            f"  L1 {label} misses: {total / requests:,.0f} per request, the server's own "
            f"{own / requests:,.0f} ({100 * own / total:.2f}%)"
        )


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    path, wrk_requests, server = Path(argv[0]), int(argv[1]), argv[2]
    top = int(argv[3]) if len(argv) == 4 else 0
    profile = Profile(REQUEST_MARKERS.get(server))
    profile.read(path)
    requests = profile.marker_calls or wrk_requests
    counted = "served, by the worker's calls" if profile.marker_calls else "by wrk's count"
    total = sum(profile.by_object.values())
    if total == 0 or requests <= 0:
        print(f"no instructions or no requests in {path}", file=sys.stderr)
        return 1
    print(
        f"  {total / requests:,.0f} instructions per request ({requests:,} requests {counted};"
        f" wrk's for the counted seconds {wrk_requests:,})"
    )
    for obj, cost in profile.by_object.most_common(6):
        print(f"    {100 * cost / total:6.2f}%  {Path(obj).name}")
    own = sum(cost for obj, cost in profile.by_object.items() if own_object(server, obj))
    if top:
        print(f"  the server's own top {top} functions (share of all instructions):")
        mine = [
            (key, cost) for key, cost in profile.by_function.items() if own_object(server, key[0])
        ]
        for (_, function), cost in sorted(mine, key=lambda item: -item[1])[:top]:
            print(f"    {100 * cost / total:6.3f}%  {function[:110]}")
    print_misses(profile, requests, server)
    print(
        f"  own share: {100 * own / total:.2f}%  ({own / requests:,.0f} instructions per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

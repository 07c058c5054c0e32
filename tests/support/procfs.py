"""/proc readers: the processes of a server and what they hold open.

Owns: reading /proc (children, file descriptors, memory counters, threads).
Must not touch: starting or signalling processes (see `launcher`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (the worker processes of a supervisor)."""
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        kids.extend(int(x) for x in text.split())
    return sorted(set(kids))


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def fd_links(pid: int) -> list[str]:
    links: list[str] = []
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return links
    for entry in entries:
        with contextlib.suppress(OSError):
            links.append(os.readlink(entry))
    return links


def deleted_fds(pids: Sequence[int], under: str | Path | None = None) -> list[str]:
    """Open-but-unlinked files of the given processes, optionally only those under a directory."""
    prefix = str(under) if under is not None else ""
    out: list[str] = []
    for pid in pids:
        for link in fd_links(pid):
            if link.endswith("(deleted)") and link.startswith(prefix):
                out.append(f"{pid}:{link}")
    return out


def proc_status_kib(pid: int, key: str) -> int:
    """A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def thread_nices(pid: int) -> dict[str, int]:
    """Each thread of PID by name (`comm`) with its nice value (field 19 of its `stat`)."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            comm = (task / "comm").read_text().strip()
            out[comm] = int(_stat_fields(task / "stat")[16])
    return out


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """CPU time (user + system) thread TID of process PID has used so far (fields 14 and 15 of
    its `stat`, in clock ticks)."""
    fields = _stat_fields(Path(f"/proc/{pid}/task/{tid}/stat"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str]:
    """The fields of a `stat` file after the command name: index 0 is field 3 (the state)."""
    stat = path.read_text()
    return stat[stat.rindex(")") + 2 :].split()

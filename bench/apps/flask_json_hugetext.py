"""`flask_json:app` with libpython's code on 2 MiB pages: the experiment of 2026-12-06.

    HUGETEXT=1 wsrun flask_json_hugetext:app --pythonpath bench/apps ...   # remapped
    HUGETEXT=0 wsrun flask_json_hugetext:app --pythonpath bench/apps ...   # as flask_json

With `HUGETEXT=1`, importing this module copies the 2 MiB-aligned span around libpython's
executable segment onto anonymous memory advised `MADV_HUGEPAGE`, makes it read-and-execute,
and moves it over the library's pages with `mremap` (Node's `--use-largepages` does this for
its own binary). Transparent huge pages must be `madvise` or `always`; `AnonHugePages` in the
worker's `/proc/PID/smaps_rollup` shows it took. It prints one line saying what it did. Only
read-only pages of the library are moved (the span is refused otherwise); the copy has the
same bytes, so the interpreter runs on as before, from fewer TLB entries. The measured result
(README, issue 12): no gain, so wsrun does not do this.
"""

import ctypes
import os

from flask_json import app

__all__ = ["app"]

HUGE_PAGE = 2 << 20
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
MADV_HUGEPAGE = 14
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2

libc = ctypes.CDLL(None, use_errno=True)
POINTER, SIZE, INT = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
libc.mmap.restype = POINTER
libc.mmap.argtypes = [POINTER, SIZE, INT, INT, INT, ctypes.c_long]
libc.mremap.restype = POINTER
libc.mremap.argtypes = [POINTER, SIZE, SIZE, INT, POINTER]
libc.madvise.argtypes = [POINTER, SIZE, INT]
libc.mprotect.argtypes = [POINTER, SIZE, INT]


def mappings(library: str) -> list[tuple[int, int, str]]:
    """(start, end, permissions) of each mapping of `library` in this process."""
    found: list[tuple[int, int, str]] = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and library in fields[5]:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                found.append((start, end, fields[1]))
    return found


def remap(library: str) -> str:
    """Moves the 2 MiB-aligned span around `library`'s code onto huge pages; says what it did."""
    segments = mappings(library)
    code = [(start, end) for start, end, perms in segments if "x" in perms]
    if not code:
        return f"no executable mapping of {library}"
    low = code[0][0] & ~(HUGE_PAGE - 1)
    high = (code[0][1] + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    covered = low
    for start, end, perms in sorted(segments):
        if end <= low or start >= high:
            continue
        if start > covered or "w" in perms:
            return f"span {low:#x}-{high:#x} is not all read-only pages of {library}"
        covered = end
    if covered < high:
        return f"span {low:#x}-{high:#x} runs past {library}"
    size = high - low
    raw = libc.mmap(
        None, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0
    )
    if raw is None or raw == ctypes.c_void_p(-1).value:
        return "mmap failed"
    aligned = (raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    libc.madvise(aligned, size, MADV_HUGEPAGE)
    ctypes.memmove(aligned, low, size)
    libc.mprotect(aligned, size, PROT_READ | PROT_EXEC)
    moved = libc.mremap(aligned, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, low)
    if moved != low:
        return f"mremap failed (errno {ctypes.get_errno()})"
    return f"{library}: {low:#x}-{high:#x} ({size >> 20} MiB) now on huge pages"


if os.environ.get("HUGETEXT") == "1":
    print("hugetext:", remap("libpython3"), flush=True)

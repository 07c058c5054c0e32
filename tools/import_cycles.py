#!/usr/bin/env python3
"""File-level import cycles in a Rust crate's src/ tree.

Lists, for every file, the other files of the crate it names (`use crate::...`, `use super::...`,
`use child::...` in a mod.rs, and the same paths written inline in code, e.g.
`super::service::percent_decode(...)`), following `pub use` re-exports to the file that defines
the item. Then prints every cycle (strongly connected component of more than one file).

    python3 tools/import_cycles.py [runtime/src] [--edges] [--skip config,services]

Exit status: 0 with no cycle, 1 with at least one. Approximate by design (regexes, not a Rust
parser): good enough for this crate's style of imports; a `use` inside a function counts too.
"""

import argparse
import re
import sys
from pathlib import Path

USE_RE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
PATH_RE = re.compile(r"(?<![\w:])((?:crate|super|self)(?:\s*::\s*\w+)+)")
MOD_DECL_RE = re.compile(
    r"(?:#\[path\s*=\s*\"([^\"]+)\"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;"
)
INLINE_MOD_RE = re.compile(r"\bmod\s+(\w+)\s*\{")


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (keeps offsets and line breaks)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or text.startswith('r"', i) or text.startswith("r#", i):
            j = _string_end(text, i)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _string_end(text, i):
    m = re.match(r'r(#*)"', text[i:])
    if m:
        close = '"' + m.group(1)
        j = text.find(close, i + len(m.group(0)))
        return len(text) if j < 0 else j + len(close)
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            return j + 1
        j += 1
    return len(text)


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}}` -> [[a, b], [a, c, d], [a, c, e]] (aliases and `*` dropped)."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    results = []

    def walk(prefix, s):
        depth, parts, start = 0, [], 0
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in filter(None, parts):
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                head = [seg for seg in part[:brace].split("::") if seg]
                walk(prefix + head, part[brace + 1 : -1])
                continue
            part = re.sub(r"\s+as\s+\w+$", "", part)
            results.append(prefix + [seg for seg in part.split("::") if seg and seg != "*"])

    walk([], tree)
    return results


class Crate:
    def __init__(self, src):
        self.src = Path(src)
        self.files = {}  # module path (tuple) -> Path
        self.texts = {}  # module path -> cleaned text
        self.children = {}  # module path -> set of child names declared with `mod x;`
        self._collect(self.src / "lib.rs", ())

    def _collect(self, path, modpath):
        text = strip_comments_and_strings(path.read_text())
        self.files[modpath] = path
        self.texts[modpath] = text
        self.children[modpath] = set()
        is_dir_owner = path.name in ("lib.rs", "mod.rs")
        base = path.parent if is_dir_owner else path.parent / path.stem
        for m in MOD_DECL_RE.finditer(text):
            explicit, name = m.group(1), m.group(2)
            if explicit:
                child = path.parent / explicit
            elif (base / f"{name}.rs").exists():
                child = base / f"{name}.rs"
            else:
                child = base / name / "mod.rs"
            if child.exists():
                self.children[modpath].add(name)
                self._collect(child, (*modpath, name))

    def resolve(self, modpath, segs, depth=0):
        """The module file an absolute-or-relative path lands in (following re-exports)."""
        if not segs:
            return None
        absolute = list(modpath)
        first, rest = segs[0], list(segs[1:])
        if first == "crate":
            absolute = []
        elif first == "self":
            pass
        elif first == "super":
            absolute = absolute[:-1]
            while rest and rest[0] == "super":
                absolute = absolute[:-1]
                rest = rest[1:]
        elif first in self.children.get(self._file_of(modpath), set()):
            rest = [first, *rest]
            absolute = list(self._file_of(modpath))
        else:
            return None  # an external crate, std, or a local name
        while rest:
            nxt = tuple([*absolute, rest[0]])
            if nxt in self.files:
                absolute.append(rest.pop(0))
                continue
            break
        target = self._file_of(tuple(absolute))
        if rest and depth < 8:
            followed = self.reexport(target, rest[0], depth)
            if followed is not None:
                return followed
        return target

    def _file_of(self, modpath):
        modpath = tuple(modpath)
        while modpath not in self.files and modpath:
            modpath = modpath[:-1]
        return modpath

    def reexport(self, modpath, name, depth):
        for m in USE_RE.finditer(self.texts[modpath]):
            if not m.group(0).lstrip().startswith("pub"):
                continue
            for segs in expand_use_tree(m.group(1)):
                if segs and segs[-1] == name:
                    return self.resolve(modpath, segs, depth + 1)
        return None

    def edges(self):
        graph = {}
        for modpath, text in self.texts.items():
            targets = set()
            inline = inline_module_spans(text)
            for m in USE_RE.finditer(text):
                base = modpath + inline_at(inline, m.start())
                for segs in expand_use_tree(m.group(1)):
                    targets.add(self.resolve(base, segs))
            for m in PATH_RE.finditer(text):
                base = modpath + inline_at(inline, m.start())
                segs = [s.strip() for s in m.group(1).split("::")]
                targets.add(self.resolve(base, segs))
            targets.discard(None)
            targets.discard(modpath)
            graph[modpath] = targets
        return graph


def inline_module_spans(text):
    """(start, end, name) of each inline `mod name { ... }` block."""
    spans = []
    for m in INLINE_MOD_RE.finditer(text):
        depth, k = 0, m.end() - 1
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        spans.append((m.end(), k, m.group(1)))
    return spans


def inline_at(spans, pos):
    return tuple(name for start, end, name in spans if start <= pos < end)


def cycles(graph):
    """Tarjan's strongly connected components with more than one node."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", default="runtime/src")
    parser.add_argument("--edges", action="store_true", help="print every file's imports")
    parser.add_argument(
        "--skip", default="", help="top-level modules to leave out, comma-separated"
    )
    args = parser.parse_args()
    crate = Crate(args.src)
    skip = {s for s in args.skip.split(",") if s}
    graph = {
        k: {t for t in v if not (t and t[0] in skip)}
        for k, v in crate.edges().items()
        if not (k and k[0] in skip)
    }
    name = lambda m: str(crate.files[m].relative_to(crate.src))  # noqa: E731
    if args.edges:
        for m in sorted(graph, key=name):
            print(f"{name(m)} -> {', '.join(sorted(map(name, graph[m]))) or '-'}")
    found = cycles(graph)
    for comp in found:
        members = set(comp)
        print("cycle: " + ", ".join(sorted(map(name, comp))))
        for m in sorted(comp, key=name):
            inside = sorted(name(t) for t in graph[m] if t in members)
            print(f"  {name(m)} -> {', '.join(inside)}")
    if not found:
        print("no file-level import cycle")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""Finding the files a ledger pattern names: ``glob`` semantics, bounded.

The standard ``glob.glob(pattern, recursive=True)`` follows directory symlinks without remembering where it has
been: under ``**``, two symlink loops make it walk an exponentially growing tree (100 % CPU, for ever, and the
daemon with it). :func:`find` walks the same way but

* enters each real directory (device, inode) at most once per remaining part of the pattern, so a symlink loop —
  or a symlink to a folder already walked — is cut at its second visit;
* descends at most ``MAX_DEPTH`` folders below the pattern's static prefix;
* is meant to run off the event loop (the tailer calls it through ``asyncio.to_thread``).

Like ``glob``: ``**`` matches zero or more folders, names starting with a dot match only a pattern part starting
with a dot, and the result holds each file once (by the first path found, in sorted order).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_DEPTH = 32
"""Folders below a pattern's static prefix that ``**`` descends into."""


@dataclass(slots=True)
class Found:
    """The files a pattern names, and whether the walk was cut short by the depth limit."""

    paths: list[str] = field(default_factory=list)
    too_deep: bool = False
    loops: int = 0
    """Directories reached a second time (through a symlink) and not walked again."""


def static_prefix(pattern: str) -> str:
    """Return the deepest folder of ``pattern`` that has no glob characters."""
    parts = Path(pattern).parts
    static: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        static.append(part)
    if len(static) == len(parts):
        static = static[:-1]
    return str(Path(*static)) if static else "."


def find(pattern: str, max_depth: int = MAX_DEPTH) -> Found:
    """Return the regular files and other entries ``pattern`` matches, as ``glob.glob(pattern, recursive=True)``
    would on a tree without symlink loops; never more than ``max_depth`` folders deep, never a folder twice."""
    found = Found()
    if not glob.has_magic(pattern):
        if os.path.lexists(pattern):
            found.paths.append(pattern)
        return found
    parts = Path(pattern).parts
    fixed = 0
    while fixed < len(parts) - 1 and not glob.has_magic(parts[fixed]):
        fixed += 1
    root = str(Path(*parts[:fixed])) if fixed else "."
    _Walker(found, max_depth, relative=not fixed).walk(root, parts[fixed:], 0)
    return found


class _Walker:
    def __init__(self, found: Found, max_depth: int, relative: bool) -> None:
        self.found = found
        self.max_depth = max_depth
        self.relative = relative
        self.seen: set[tuple[int, int, int]] = set()
        self.emitted: set[str] = set()

    def emit(self, path: str) -> None:
        if path not in self.emitted:
            self.emitted.add(path)
            self.found.paths.append(path)

    def join(self, folder: str, name: str) -> str:
        return name if self.relative and folder == "." else os.path.join(folder, name)

    def enter(self, folder: str, parts: tuple[str, ...], depth: int) -> None:
        """Walk ``folder`` with ``parts`` left, unless it is too deep or was walked with them already."""
        try:
            st = os.stat(folder)
        except OSError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        key = (st.st_dev, st.st_ino, len(parts))
        if key in self.seen:
            self.found.loops += 1
            return
        if depth > self.max_depth:
            self.found.too_deep = True
            return
        self.seen.add(key)
        self.walk(folder, parts, depth)

    def walk(self, folder: str, parts: tuple[str, ...], depth: int) -> None:
        head, rest = parts[0], parts[1:]
        if head == "**":
            if rest:
                self.walk(folder, rest, depth)
            for entry in self.entries(folder, hidden=False):
                if not rest:
                    self.emit(self.join(folder, entry.name))
                if _is_dir(entry):
                    self.enter(self.join(folder, entry.name), parts, depth + 1)
            return
        if not glob.has_magic(head):
            path = self.join(folder, head)
            if not rest:
                if os.path.lexists(path):
                    self.emit(path)
            else:
                self.enter(path, rest, depth + 1)
            return
        for entry in self.entries(folder, hidden=head.startswith(".")):
            if not fnmatch.fnmatchcase(entry.name, head):
                continue
            if not rest:
                self.emit(self.join(folder, entry.name))
            elif _is_dir(entry):
                self.enter(self.join(folder, entry.name), rest, depth + 1)

    @staticmethod
    def entries(folder: str, hidden: bool) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                found = [e for e in it if hidden or not e.name.startswith(".")]
        except OSError:
            return []
        return sorted(found, key=lambda e: e.name)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink, as glob does; enter() cuts the loops
    except OSError:
        return False

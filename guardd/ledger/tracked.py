"""Following one ledger file: its identity, its committed position, and finding it again after a rotation.

A file is known by (device, inode, fingerprint of the first line). :class:`Tracked` is one open file and its
position, which is always its committed checkpoint (:meth:`Tracked.committed` moves it only after the batch's
transaction commits); :meth:`Tracked.resume` trusts a stored checkpoint only if the file still has that fingerprint,
is at least that long and the bytes before the offset still hash the same. :func:`find_rotated_while_down`,
:func:`find_copy`, :func:`same_file` and :func:`truncated_since` find a file again after a rename-and-create or a
copy-and-truncate rotation. Nothing here reads lines or writes the store: that is :mod:`guardd.ledger.tailer`.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from guardd.ledger.discovery import static_prefix
from guardd.ledger.lines import fingerprint, tail_hash
from guardd.store.api import BatchResult, Checkpoint

log = logging.getLogger("guardd.ledger")


@dataclass(frozen=True, slots=True)
class LedgerSpec:
    """One ``[[ledgers]]`` entry with its path resolved."""

    pattern: str
    fmt: str = "auto"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Tracked:
    """One followed ledger file: its open descriptor, identity and committed position."""

    spec: LedgerSpec
    path: str
    fd: int
    dev: int
    ino: int
    fp: str | None
    offset: int = 0
    events: int = 0
    quarantined: int = 0
    last_event_ms: int | None = None
    rotated_at: float | None = None
    tail: str = ""
    last_growth: float = field(default_factory=time.monotonic)

    def checkpoint(self, offset: int, size: int, quarantined: int) -> Checkpoint:
        """The checkpoint this file will have once a batch ending at ``offset`` is committed."""
        assert self.fp is not None
        return Checkpoint(
            self.spec.pattern,
            self.path,
            self.dev,
            self.ino,
            self.fp,
            offset,
            size,
            tail_hash(self.fd, offset),
            self.events,
            quarantined,
            self.last_event_ms,
        )

    def committed(self, checkpoint: Checkpoint, result: BatchResult) -> None:
        """Move to ``checkpoint`` — only once the transaction that stored it has committed."""
        self.offset, self.tail, self.quarantined = checkpoint.offset, checkpoint.tail, checkpoint.quarantined
        self.events += result.stored
        if result.max_ts is not None:
            self.last_event_ms = max(result.max_ts, self.last_event_ms or 0)

    def resume(self, known: Mapping[tuple[int, int, str], Checkpoint], size: int) -> None:
        """Move to this file's checkpoint in ``known`` (by device, inode and fingerprint) when the file of ``size``
        bytes still holds what it covered; log when it no longer does (the file is then read from the start)."""
        if self.fp is None:
            return
        cp = known.get((self.dev, self.ino, self.fp))
        if cp is None:
            return
        if cp.offset <= size and tail_hash(self.fd, cp.offset) == cp.tail:
            self.offset, self.events, self.quarantined = cp.offset, cp.events, cp.quarantined
            self.tail = cp.tail
            self.last_event_ms = cp.last_event_ms
        else:
            log.warning(
                "ledger file changed under its checkpoint; re-reading it (duplicates are skipped)",
                extra={"ctx": {"ledger": self.path}},
            )


def identities(found: list[tuple[LedgerSpec, list[str]]]) -> dict[tuple[int, int], str]:
    """The (device, inode) of every path in ``found`` that still names a file, to its path."""
    out: dict[tuple[int, int], str] = {}
    for _spec, paths in found:
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            out[(st.st_dev, st.st_ino)] = path
    return out


def find_rotated_while_down(
    specs: list[LedgerSpec],
    known: Mapping[tuple[int, int, str], Checkpoint],
    tracked_files: dict[tuple[int, int], Tracked],
    found: list[tuple[LedgerSpec, list[str]]],
) -> None:
    """Add to ``tracked_files`` the files to drain whose ``known`` checkpoint no path in ``found`` holds any more
    (rotated while guardd was down), or which hold the lines a copy-and-truncate cut from a watched file, searching
    the folders of ``specs``. Runs in a thread, before the first read: it only opens files and adds them."""
    if not known:
        return
    seen: dict[tuple[int, int], str] = {key: t.path for key, t in tracked_files.items()}
    seen.update(identities(found))
    wanted = {(cp.dev, cp.ino): cp for cp in known.values() if (cp.dev, cp.ino) not in seen}
    # Copy-and-truncate while guardd was down: the watched file is the same inode, but no longer holds what
    # its checkpoint covered; the lines past the checkpoint are only in the copy, found by its first line.
    latest = {(cp.dev, cp.ino): cp for cp in known.values()}  # in id order: the newest content last
    copied = {cp.fingerprint: cp for key, cp in latest.items() if key in seen and truncated_since(seen[key], cp)}
    if not wanted and not copied:
        return
    for spec in specs:
        folder = static_prefix(spec.pattern)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in tracked_files or key in seen or not stat.S_ISREG(st.st_mode):
                continue
            cp = wanted.get(key)
            if cp is None and not copied:
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except OSError:
                continue
            fp = fingerprint(fd)
            if cp is None and fp is not None:
                cp = copied.pop(fp, None)  # the copy of a truncated file: resume where its original stopped
            if cp is None or fp != cp.fingerprint or st.st_size <= cp.offset:
                os.close(fd)
                continue
            tracked = Tracked(spec, entry.path, fd, st.st_dev, st.st_ino, cp.fingerprint)
            if (cp.dev, cp.ino) != key and tail_hash(fd, cp.offset) == cp.tail:
                tracked.offset, tracked.tail, tracked.last_event_ms = cp.offset, cp.tail, cp.last_event_ms
            tracked.resume(known, st.st_size)  # the copy's own checkpoint, when an earlier run drained some
            tracked.rotated_at = time.monotonic()
            tracked_files[(st.st_dev, st.st_ino)] = tracked
            log.info("draining a ledger file rotated while guardd was down", extra={"ctx": {"ledger": entry.path}})


def truncated_since(path: str, cp: Checkpoint) -> bool:
    """True when the file at ``path`` (the inode of ``cp``) no longer holds the bytes ``cp`` covered."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return fingerprint(fd) != cp.fingerprint or size < cp.offset or tail_hash(fd, cp.offset) != cp.tail
    finally:
        os.close(fd)


def same_file(path: str, st: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def find_copy(path: str, fp: str | None, offset: int, exclude: tuple[int, int]) -> str | None:
    """Return a file beside ``path`` that starts like the old content (``fp``) and reaches past ``offset``."""
    if fp is None:
        return None
    folder = str(Path(path).parent)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) == exclude or st.st_size <= offset:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if fingerprint(fd) == fp:
                return entry.path
        finally:
            os.close(fd)
    return None

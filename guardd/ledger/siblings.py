"""Rotated siblings: the generations of a ledger file that rotations made while guardd was down.

A file rotated once while guardd was down is found again by its checkpointed identity
(:func:`guardd.ledger.tracked.find_rotated_while_down`). A file rotated twice is not: the generation written in
between (``app.jsonl`` → ``app.jsonl.1`` → ``app.jsonl.2``, or a second copy-and-truncate) is an inode guardd never
saw, and a glob like ``logs/*.jsonl`` does not match the rotated name. So at start, beside each ledger file it
knows (every path its ledger's checkpoints name, and every path the pattern matches now), guardd looks at the
names logrotate gives rotated files: ``NAME.N``, ``NAME-DATE`` and ``NAME.DATE`` (DATE: digits with ``-``, ``_``
or ``.``, as any ``dateformat`` writes), uncompressed or compressed. It reads a sibling, to its end and then as
a rotated file is drained, when:

- it is a regular file that nothing follows yet, and its (device, inode, fingerprint) has no checkpoint (a file
  with one was read, and is drained from there by ``find_rotated_while_down``);
- it was modified after the newest checkpoint of its ledger was saved: older files hold nothing written since
  guardd last read (history from before guardd ran is not its business).

Nothing is counted twice. A sibling that starts like a checkpointed file (its first line's fingerprint: the copy
of a copy-and-truncate) starts at that checkpoint's offset when the bytes before it still hash the same, exactly
as ``find_rotated_while_down`` resumes a copy; otherwise it is read from its start, and its lines get the keys they
would have had anyway: an id is ``g:<id>``, and an id-less line is keyed by (fingerprint, offset, bytes), which a
copy or a renamed file keeps. Siblings are read oldest first (by modification time), so the last snapshot of a
streaming id is the one that wins.

A sibling that matches but cannot be read — compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``, …) or not openable —
may hold lines guardd never counted: it is returned (path -> why) for ``status`` and ``check`` to warn about, and
logged as a WARNING naming it. A ``.gz`` that is the compressed copy of a file read to its end is not reported:
its first line's fingerprint matches a checkpoint whose offset is its uncompressed size (gzip's trailer). Any
other compressed file is only suspected, as guardd does not read inside it.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import stat
import time
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from guardd.ledger.lines import FINGERPRINT_BYTES, fingerprint, fingerprint_of, tail_hash
from guardd.ledger.tracked import LedgerSpec, Tracked, identities
from guardd.store.api import Checkpoint

log = logging.getLogger("guardd.ledger")

ROTATED_SUFFIX = re.compile(r"[.-]\d(?:[\d._-]*\d)?")
"""What logrotate appends to a rotated file's name: ``.N``, or ``-DATE`` / ``.DATE`` in any ``dateformat``."""
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lzo", ".br", ".Z", ".zip")
MISSED = "may hold lines guardd never counted (rotated while it was down)"
CLOCK_SLACK = 2.0
"""Seconds before a checkpoint's save time that still count as after it: a file's mtime comes from the kernel's
coarse clock (a tick behind), and lines are read a moment before their checkpoint is saved."""


def rotated_from(name: str, base: str) -> str | None:
    """Return how the file ``name`` is a rotated generation of ``base`` — ``""`` uncompressed, else its
    compression suffix (``".gz"``) — or None when it is not one."""
    if not name.startswith(base) or name == base:
        return None
    suffix = name[len(base) :]
    compression = next((c for c in COMPRESSED if suffix.endswith(c)), "")
    suffix = suffix.removesuffix(compression) if compression else suffix
    return compression if ROTATED_SUFFIX.fullmatch(suffix) else None


def find_rotated_siblings(
    specs: list[LedgerSpec],
    known: Mapping[tuple[int, int, str], Checkpoint],
    tracked_files: dict[tuple[int, int], Tracked],
    found: list[tuple[LedgerSpec, list[str]]],
) -> dict[str, str]:
    """Add to ``tracked_files`` (oldest first) the rotated siblings of known ledger files that guardd never read
    and that were modified after their ledger's newest checkpoint; return those it cannot read (path -> why).
    Runs in a thread at start, after ``find_rotated_while_down``: it only opens files and adds them."""
    newest: dict[str, datetime] = {}
    bases: dict[str, set[str]] = {}
    for cp in known.values():
        if cp.updated_at is not None and (cp.ledger not in newest or cp.updated_at > newest[cp.ledger]):
            newest[cp.ledger] = cp.updated_at
        bases.setdefault(cp.ledger, set()).add(cp.path)
    for spec, paths in found:
        bases.setdefault(spec.pattern, set()).update(paths)
    watched = set(identities(found)) | set(tracked_files)
    by_fp = {cp.fingerprint: cp for cp in known.values()}  # in id order: the newest content of a fingerprint last
    read_to: dict[tuple[int, int], int] = {}
    for cp in known.values():
        read_to[(cp.dev, cp.ino)] = max(cp.offset, read_to.get((cp.dev, cp.ino), 0))
    unread: dict[str, str] = {}
    new: list[tuple[float, str, os.stat_result, LedgerSpec]] = []
    for spec in specs:
        since = newest.get(spec.pattern)
        if since is None:
            continue  # nothing of this ledger was ever read: there is nothing to have missed
        for path, st, compression in _siblings(bases.get(spec.pattern, set())):
            key = (st.st_dev, st.st_ino)
            if key in watched or not st.st_size or st.st_mtime <= since.timestamp() - CLOCK_SLACK:
                continue
            watched.add(key)
            if compression == ".gz" and _read_to_its_end(path, known):
                continue
            if compression:
                unread[path] = f"compressed ({compression}): guardd reads only uncompressed files; it {MISSED}"
            elif read_to.get(key, -1) < st.st_size:  # else read to its end under this identity already
                new.append((st.st_mtime, path, st, spec))
    for _mtime, path, st, spec in sorted(new, key=lambda item: (item[0], item[1])):
        why = _follow(spec, path, st, known, by_fp, tracked_files, newest[spec.pattern])
        if why is not None:
            unread[path] = why
    for path, why in sorted(unread.items()):
        log.warning("a rotated ledger file cannot be read: %s", why, extra={"ctx": {"ledger": path}})
    return unread


def _read_to_its_end(path: str, known: Mapping[tuple[int, int, str], Checkpoint]) -> bool:
    """True when the gzip file at ``path`` holds a file guardd read to its end: its first line is a checkpoint's,
    and its uncompressed size (gzip's trailer, modulo 4 GiB) is that checkpoint's offset."""
    try:
        with gzip.open(path, "rb") as f:
            fp = fingerprint_of(f.read(FINGERPRINT_BYTES))
        with open(path, "rb") as raw:
            raw.seek(-4, os.SEEK_END)
            size = int.from_bytes(raw.read(4), "little")
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return False
    return fp is not None and any(cp.fingerprint == fp and cp.offset % (1 << 32) == size for cp in known.values())


def _siblings(bases: set[str]) -> list[tuple[str, os.stat_result, str]]:
    """The regular files beside ``bases`` whose names are rotated generations of them, with their compression."""
    names: dict[str, set[str]] = {}
    for base in bases:
        names.setdefault(str(Path(base).parent), set()).add(Path(base).name)
    out: list[tuple[str, os.stat_result, str]] = []
    for folder, wanted in sorted(names.items()):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            kinds = [c for c in (rotated_from(entry.name, base) for base in wanted) if c is not None]
            if not kinds:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((entry.path, st, kinds[0]))
    return out


def _follow(
    spec: LedgerSpec,
    path: str,
    st: os.stat_result,
    known: Mapping[tuple[int, int, str], Checkpoint],
    by_fp: Mapping[str, Checkpoint],
    tracked_files: dict[tuple[int, int], Tracked],
    since: datetime,
) -> str | None:
    """Start draining the sibling at ``path``; return why it cannot be read (None: it is followed, or it turned
    out to be a file already read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return f"cannot be opened ({exc.strerror or exc}); it {MISSED}"
    fp = fingerprint(fd)
    if fp is not None and (st.st_dev, st.st_ino, fp) in known:
        os.close(fd)  # read under this very identity: find_rotated_while_down drains it when it grew
        return None
    tracked = Tracked(spec, path, fd, st.st_dev, st.st_ino, fp)
    cp = by_fp.get(fp) if fp is not None else None
    if cp is not None and st.st_mtime <= since.timestamp():
        # A copy made by a copy-and-truncate while guardd ran: it read the copy's tail then, and a later line of
        # a streaming id may have replaced it since; reading it again would put the older line back.
        os.close(fd)
        return None
    if cp is not None and cp.offset <= st.st_size and tail_hash(fd, cp.offset) == cp.tail:
        # The copy of a checkpointed file (copy-and-truncate): what the checkpoint covers was counted.
        tracked.offset, tracked.tail, tracked.last_event_ms = cp.offset, cp.tail, cp.last_event_ms
    tracked.rotated_at = time.monotonic()
    tracked_files[(st.st_dev, st.st_ino)] = tracked
    log.info(
        "reading a rotated ledger file guardd never read (rotated while it was down)",
        extra={"ctx": {"ledger": path, "from_offset": tracked.offset}},
    )
    return None

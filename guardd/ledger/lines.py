"""Reading ledger files: complete lines in blocks of bounded size, file fingerprints and tail hashes.

Lines are bounded before anything decodes them: in size (``MAX_LINE``, by :func:`iter_blocks`) and in depth
(``MAX_DEPTH``, by :func:`may_be_too_deep` and :func:`too_deep`).

A file's *fingerprint* is a hash of its first line (at most its first 1 KiB): stable once that line is complete,
because ledgers are append-only. Parsing the lines is :mod:`guardd.ledger.parse`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LINE = 1 << 20
MAX_DEPTH = 64  # arrays and objects inside each other; a ledger line needs about five
BLOCK = MAX_LINE + 1  # a block of this size without a newline is the start of an over-long line
FINGERPRINT_BYTES = 1024
TAIL_BYTES = 64


def fingerprint(fd: int) -> str | None:
    """Return the fingerprint of the open file ``fd``, or None while its first line is incomplete."""
    return fingerprint_of(os.pread(fd, FINGERPRINT_BYTES, 0))


def fingerprint_of(head: bytes) -> str | None:
    """Return the fingerprint of a file that starts with ``head`` (its first ``FINGERPRINT_BYTES`` at least)."""
    head = head[:FINGERPRINT_BYTES]
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.blake2b(head, digest_size=10).hexdigest()


def tail_hash(fd: int, offset: int) -> str:
    """Return a hash of the bytes just before ``offset`` (to check, on resume, that the file was not rewritten)."""
    start = max(0, offset - TAIL_BYTES)
    return hashlib.blake2b(os.pread(fd, offset - start, start), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Block:
    """Complete lines read from a file: ``data`` holds whole lines, each ending in ``\\n`` and none longer than
    ``MAX_LINE``; ``data`` is None for one over-long line at ``offset`` that was skipped unread."""

    offset: int
    data: bytes | None
    end: int


def iter_blocks(fd: int, start: int, stop: int | None = None) -> Iterator[Block]:
    """Yield the complete lines of ``fd`` from ``start`` (to ``stop``) in blocks of at most ``BLOCK`` bytes.

    A read of ``BLOCK`` bytes that holds no newline can only be the start of a line longer than ``MAX_LINE``:
    it is skipped in ``BLOCK``-sized reads and yielded as ``Block(offset, None, end)`` once its end is found.
    An unfinished last line is left for the next call. Memory stays under two blocks whatever the file holds.
    """
    pos = start
    while stop is None or pos < stop:
        want = BLOCK if stop is None else min(BLOCK, stop - pos)
        data = os.pread(fd, want, pos)
        if not data:
            return
        last = data.rfind(b"\n")
        if last >= 0:
            yield Block(pos, data[: last + 1], pos + last + 1)
            pos += last + 1
            continue
        if len(data) < BLOCK:
            return  # an unfinished last line (or the end of the range): read it when it is complete
        scan = pos + len(data)
        while True:
            more = os.pread(fd, BLOCK, scan)
            if not more:
                return  # the long line is not finished yet
            newline = more.find(b"\n")
            if newline >= 0:
                yield Block(pos, None, scan + newline + 1)
                pos = scan + newline + 1
                break
            scan += len(more)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_OPENERS = bytes(b for b in range(256) if b not in b"[{\n")
_MANY_OPENERS = re.compile(rb"[\[{]{%d}" % (MAX_DEPTH + 1))


def may_be_too_deep(data: bytes) -> bool:
    """Return False when no line of the block ``data`` can nest deeper than ``MAX_DEPTH`` (none has more
    openers); True when one might, and its lines must be checked one by one. Runs in C: ~1 ms per MiB."""
    return _MANY_OPENERS.search(data.translate(None, _NOT_OPENERS)) is not None


def too_deep(line: bytes) -> bool:
    """Return True when ``line`` nests arrays and objects more than ``MAX_DEPTH`` deep (brackets in strings do not
    count). Checked before decoding: a decoder's own limit depends on the stack it runs on, so the two parse
    paths could disagree, and it raises RecursionError."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for byte in _STRING.sub(b"", line).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False

"""What runs in an ingest worker process: parse a byte range of a ledger and hand the batch back packed.

Kept apart from :mod:`guardd.services.backfill` and :mod:`guardd.ledger.pool` so that a worker imports only the
parser (about 8 MB less per worker than importing the store and asyncio).
"""

from __future__ import annotations

import gc
import os
import select
import threading

from guardd.core.money import Money
from guardd.ledger.parse import LineParser, read_batch

WORKER_NICE = 0
"""The workers' niceness. Not lowered: at nice 10 they got a small share of the CPU whenever another program ran
(the same 300k-line ingest took 27-45 s instead of 14-16 s at load 11), while the writer they feed waited for them."""


_WRITER = 0


class FileMoved(Exception):
    """The file the writer holds open cannot be reached from this worker (then the writer reads it itself)."""


def init(writer: int) -> None:
    """Set up a worker for the ingesting process ``writer``."""
    global _WRITER
    _WRITER = writer
    # A worker ends with the process it parses for, even a killed one (kill -9 runs no clean-up); otherwise it
    # would wait forever on its task queue and hold the command's stdout open.
    watch = os.pidfd_open(writer)
    threading.Thread(target=_exit_when_readable, args=(watch,), daemon=True).start()
    if WORKER_NICE:
        os.nice(WORKER_NICE)
    # Parsing allocates millions of tuples and no reference cycles: the cyclic collector would only rescan
    # them (a third of the parse time, measured); reference counting frees everything.
    gc.disable()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])
    os._exit(1)


_PARSERS: dict[tuple[object, ...], LineParser] = {}


def parse_range(
    path: str,
    fd: int,
    dev: int,
    ino: int,
    fp: str,
    fmt: str,
    labels: dict[str, str],
    max_event_cost: Money,
    start: int,
    stop: int,
) -> bytes:
    """Parse the complete lines in ``[start, stop)`` of the file the writer holds open as ``fd`` (device ``dev``,
    inode ``ino``; at ``path`` when it was opened); return them packed. Raise :class:`FileMoved` when that file can
    be reached neither through the writer's descriptor nor at ``path``."""
    key = (fmt, tuple(sorted(labels.items())), max_event_cost)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = LineParser(fmt, labels, max_event_cost)
    own = _open(f"/proc/{_WRITER}/fd/{fd}", dev, ino)  # the same file even when renamed away since
    if own is None:
        own = _open(path, dev, ino)
    if own is None:
        raise FileMoved(f"{path}: not reachable from a parsing worker")
    try:
        return read_batch(own, fp, path, parser, start, stop, limit=stop - start).pack()
    finally:
        os.close(own)


def _open(path: str, dev: int, ino: int) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (dev, ino):
        os.close(fd)
        return None
    return fd

"""What runs in an ingest worker process: parse a byte range of a ledger and hand the batch back packed.

Kept apart from :mod:`guardd.services.backfill` so that a worker imports only the parser (about 8 MB less per worker
than importing the store and asyncio).
"""

from __future__ import annotations

import gc
import os
import select
import threading

from guardd.core.money import Money
from guardd.ledger.parse import LineParser, read_batch

WORKER_NICE = 10


def init(writer: int) -> None:
    """Set up a worker for the ingesting process ``writer``."""
    # A worker ends with the process it parses for, even a killed one (kill -9 runs no clean-up); otherwise it
    # would wait forever on its task queue and hold the command's stdout open.
    watch = os.pidfd_open(writer)
    threading.Thread(target=_exit_when_readable, args=(watch,), daemon=True).start()
    # The writer is the narrowest stage: a worker yields the CPU to it, and parses with what is left.
    os.nice(WORKER_NICE)
    # Parsing allocates millions of tuples and no reference cycles: the cyclic collector would only rescan
    # them (a third of the parse time, measured); reference counting frees everything.
    gc.disable()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])
    os._exit(1)


_PARSERS: dict[tuple[object, ...], LineParser] = {}


def parse_range(
    path: str, fp: str, fmt: str, labels: dict[str, str], max_event_cost: Money, start: int, stop: int
) -> bytes:
    """Parse the complete lines of ``path`` in ``[start, stop)`` (in a worker process); return them packed."""
    key = (fmt, tuple(sorted(labels.items())), max_event_cost)
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = LineParser(fmt, labels, max_event_cost)
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_batch(fd, fp, path, parser, start, stop, limit=stop - start).pack()
    finally:
        os.close(fd)

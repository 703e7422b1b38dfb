"""``guardd ingest``: a one-shot, idempotent backfill of ledger files into the store.

Reads each file from its start in bounded memory, with the same parser and the same event keys as the tailer,
so a backfill of a file the daemon also follows (or a second backfill) stores nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from guardd.adapters.events_store import EventStore
from guardd.adapters.ledger import read_batch
from guardd.adapters.ledger_lines import LineParser, fingerprint
from guardd.core.money import Money
from guardd.errors import UsageError


@dataclass(slots=True)
class IngestSummary:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unpriced: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unpriced": self.unpriced,
            "seconds": round(self.seconds, 3),
        }


async def ingest_files(
    events: EventStore,
    paths: list[str],
    fmt: str,
    labels: dict[str, str],
    max_event_cost: Money,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Store every line of ``paths``; return the counts (``stored + duplicates + quarantined == read``).

    ``progress`` is called with the number of bytes read after each batch. Raise UsageError for a path that is
    not a readable file (before anything is stored).
    """
    _check_readable(paths)
    summary = IngestSummary()
    started = time.perf_counter()
    parser = LineParser(fmt, labels, max_event_cost)
    await events.load_series()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            fp = fingerprint(fd)
            if fp is None:
                continue  # empty, or a first line still being written: nothing complete to read
            position = 0
            while True:
                # Parse, then write: running both at once makes the two threads fight over the GIL.
                rows, bad, lines, end = await asyncio.to_thread(read_batch, fd, fp, path, parser, position)
                if end == position:
                    break
                result = await events.write_batch(rows, bad)
                summary.read += lines
                summary.stored += result.stored
                summary.duplicates += result.duplicates
                summary.quarantined += result.quarantined
                summary.unpriced += result.unpriced
                if progress:
                    progress(end - position)
                position = end
        finally:
            os.close(fd)
    summary.seconds = time.perf_counter() - started
    return summary


def _check_readable(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{path}: not readable")

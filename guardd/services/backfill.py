"""``guardd ingest``: a one-shot, idempotent backfill of ledger files into the store.

Reads each file from its start in bounded memory, with the same parser and the same event keys as the tailer,
so a backfill of a file the daemon also follows (or a second backfill) stores nothing twice.

A large file is parsed by worker processes while this process writes, through the same pool as the daemon's
catch-up (:mod:`guardd.ledger.pool`): ranges parsed in parallel, written strictly in file order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

from guardd.core.batch import Parsed
from guardd.core.money import Money
from guardd.errors import UsageError
from guardd.ledger.lines import fingerprint
from guardd.ledger.parse import LineParser, read_batch
from guardd.ledger.pool import RANGE_BYTES, Pool, RangeLost, Source
from guardd.store.api import EventsAPI, IngestSummary

log = logging.getLogger("guardd.ingest")


async def ingest_files(
    events: EventsAPI,
    paths: list[str],
    fmt: str,
    labels: dict[str, str],
    max_event_cost: Money,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    range_bytes: int = RANGE_BYTES,
) -> IngestSummary:
    """Store every line of ``paths``; return the counts (``stored + duplicates + quarantined == read``).

    ``progress`` is called with the number of bytes read after each batch. ``workers`` is the number of parsing
    processes: by default one per core, used for files of ``ledger.pool.PARALLEL_BYTES`` and more; a number given
    explicitly is used for any file longer than one range of ``range_bytes``; 0 parses everything in this
    process. Raise UsageError for a path that is not a readable file (before anything is stored).
    """
    _check_readable(paths)
    summary = IngestSummary()
    started = time.perf_counter()
    parser = LineParser(fmt, labels, max_event_cost)
    await events.load_series()
    # The rows of a batch are acyclic: no need for the cyclic collector to rescan them while they are written.
    collecting = gc.isenabled()
    gc.disable()
    try:
        async with events.bulk_load():
            await _ingest_paths(
                events, paths, fmt, labels, max_event_cost, progress, Pool(workers, range_bytes), parser, summary
            )
    finally:
        if collecting:
            gc.enable()
    summary.seconds = time.perf_counter() - started
    return summary


async def _ingest_paths(
    events: EventsAPI,
    paths: list[str],
    fmt: str,
    labels: dict[str, str],
    max_event_cost: Money,
    progress: Callable[[int], None] | None,
    pool: Pool,
    parser: LineParser,
    summary: IngestSummary,
) -> None:
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                fp = fingerprint(fd)
                if fp is None:
                    continue  # empty, or a first line still being written: nothing complete to read
                st = os.fstat(fd)
                position: int | None = 0
                if pool.worth(st.st_size):
                    source = Source(path, fd, st.st_dev, st.st_ino, fp, fmt, labels, max_event_cost)
                    position = await _parallel(pool, source, st.st_size, events, summary, progress)
                if position is None:
                    continue
                async for parsed in _sequential(fd, fp, path, parser, position):
                    await _store(events, parsed, summary, progress)
            finally:
                os.close(fd)
    finally:
        pool.close()


async def _store(
    events: EventsAPI, parsed: Parsed, summary: IngestSummary, progress: Callable[[int], None] | None
) -> None:
    result = await events.write_batch(parsed)
    summary.read += parsed.lines
    summary.stored += result.stored
    summary.duplicates += result.duplicates
    summary.quarantined += result.quarantined
    summary.unpriced += result.unpriced
    if progress:
        progress(parsed.end - parsed.start)


async def _sequential(fd: int, fp: str, path: str, parser: LineParser, position: int = 0) -> AsyncIterator[Parsed]:
    while True:
        # Parse, then write: running both at once makes the two threads fight over the GIL.
        parsed = await asyncio.to_thread(read_batch, fd, fp, path, parser, position)
        if parsed.end == position:
            return
        yield parsed
        position = parsed.end


async def _parallel(
    pool: Pool,
    source: Source,
    size: int,
    events: EventsAPI,
    summary: IngestSummary,
    progress: Callable[[int], None] | None,
) -> int | None:
    """Store ``source`` through the pool's workers; return None when all of it is stored, else the byte to read on
    from in this process (a worker died, or could not reach the file; what was written stays)."""
    pipeline = pool.pipeline(source, 0, size)
    try:
        while (parsed := await pipeline.next()) is not None:
            await _store(events, parsed, summary, progress)
    except RangeLost as lost:
        if lost.broken:
            # A worker died (killed, out of memory): the others are stopped, and this ingest starts none again.
            log.warning("a parsing worker died; reading %s on in this process from byte %d", source.path, lost.at)
            pool.close(kill=True)
            pool.workers = 0
        return lost.at
    finally:
        pipeline.abandon()
    return None


def _check_readable(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{path}: not readable")

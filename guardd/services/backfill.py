"""``guardd ingest``: a one-shot, idempotent backfill of ledger files into the store.

Reads each file from its start in bounded memory, with the same parser and the same event keys as the tailer,
so a backfill of a file the daemon also follows (or a second backfill) stores nothing twice.

A large file is parsed by worker processes while this process writes: parsing is pure Python and SQLite's
inserts hold a core of their own, so on two cores the two overlap instead of taking turns under one GIL. The
file is cut into ranges at line boundaries; workers parse ranges in parallel, and their results are written
strictly in file order (so "the last line wins" means the same as when one process reads the file). At most
``IN_FLIGHT`` parsed ranges wait for the writer, which bounds memory whatever the file's size.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from guardd.core.batch import Parsed
from guardd.core.money import Money
from guardd.errors import UsageError
from guardd.ledger.lines import fingerprint
from guardd.ledger.parse import LineParser, read_batch
from guardd.ledger.worker import init, parse_range
from guardd.store.api import EventsAPI, IngestSummary

log = logging.getLogger("guardd.ingest")

PARALLEL_BYTES = 32 << 20  # smaller files are parsed in this process: starting workers costs more than it saves
RANGE_BYTES = 4 << 20
IN_FLIGHT = 4


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
    processes: by default one per core, used for files of ``PARALLEL_BYTES`` and more; a number given
    explicitly is used for any file longer than one range of ``range_bytes``; 0 parses everything in this
    process. Raise UsageError for a path that is not a readable file (before anything is stored).
    """
    _check_readable(paths)
    summary = IngestSummary()
    started = time.perf_counter()
    parser = LineParser(fmt, labels, max_event_cost)
    await events.load_series()
    threshold = PARALLEL_BYTES if workers is None else range_bytes + 1
    if workers is None:
        workers = os.cpu_count() or 1
    # The rows of a batch are acyclic: no need for the cyclic collector to rescan them while they are written.
    collecting = gc.isenabled()
    gc.disable()
    try:
        async with events.bulk_load():
            await _ingest_paths(
                events, paths, fmt, labels, max_event_cost, progress, workers, threshold, range_bytes, parser, summary
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
    workers: int,
    threshold: int,
    range_bytes: int,
    parser: LineParser,
    summary: IngestSummary,
) -> None:
    pool: ProcessPoolExecutor | None = None
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                fp = fingerprint(fd)
                if fp is None:
                    continue  # empty, or a first line still being written: nothing complete to read
                size = os.fstat(fd).st_size
                if workers > 0 and size >= threshold:
                    if pool is None:
                        pool = _pool(workers)
                    spans = _ranges(fd, size, range_bytes)
                    try:
                        async for parsed in _parallel(pool, path, fp, fmt, labels, max_event_cost, spans):
                            await _store(events, parsed, summary, progress)
                    except _WorkersLost as lost:
                        # A worker died (killed, out of memory): what was written stays; the rest of the file,
                        # and any later file, is parsed here.
                        log.warning("a parsing worker died; reading %s on in this process from byte %d", path, lost.at)
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool, workers = None, 0
                        async for parsed in _sequential(fd, fp, path, parser, lost.at):
                            await _store(events, parsed, summary, progress)
                else:
                    async for parsed in _sequential(fd, fp, path, parser):
                        await _store(events, parsed, summary, progress)
            finally:
                os.close(fd)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


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
    pool: ProcessPoolExecutor,
    path: str,
    fp: str,
    fmt: str,
    labels: dict[str, str],
    max_event_cost: Money,
    ranges: list[tuple[int, int]],
) -> AsyncIterator[Parsed]:
    """Yield the parsed ``ranges`` in order; raise :class:`_WorkersLost` at the first range a worker did not
    return (every range before it has been yielded)."""
    loop = asyncio.get_running_loop()
    pending: deque[tuple[int, asyncio.Future[bytes]]] = deque()
    todo = iter(ranges)

    def submit() -> None:
        span = next(todo, None)
        if span is not None:
            job = loop.run_in_executor(pool, parse_range, path, fp, fmt, labels, max_event_cost, span[0], span[1])
            pending.append((span[0], job))

    try:
        for _ in range(IN_FLIGHT):
            submit()
        while pending:
            start, job = pending[0]
            try:
                packed = await job
                pending.popleft()
                submit()
            except BrokenProcessPool:
                raise _WorkersLost(start) from None
            yield Parsed.unpack(packed)
    except BrokenProcessPool:  # the pool broke before the first range came back: nothing was yielded
        raise _WorkersLost(ranges[0][0]) from None
    finally:
        # Not job.cancel(): on Python 3.11 cancelling a range's future races with the pool's own thread marking it
        # failed when a worker died; that thread then dies of InvalidStateError before stopping the surviving
        # workers, and `guardd ingest` hangs at exit. The caller's pool.shutdown(cancel_futures=True) drops the
        # ranges not started, from the pool's side; here their outcome is only collected, so none goes unread.
        for _start, job in pending:
            job.add_done_callback(_collect)


def _collect(job: asyncio.Future[bytes]) -> None:
    if not job.cancelled():
        job.exception()


class _WorkersLost(Exception):
    def __init__(self, at: int) -> None:
        super().__init__(f"parsing workers lost at byte {at}")
        self.at = at


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers fork from a clean, single-threaded server process, never from this one (which runs
    # the SQLite thread); the parser's modules are imported once, in the server.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["guardd.ledger.worker"])
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=init, initargs=(os.getpid(),))


def _ranges(fd: int, size: int, step: int) -> list[tuple[int, int]]:
    """Cut ``[0, size)`` into ranges of about ``step`` bytes that begin and end at line boundaries."""
    out: list[tuple[int, int]] = []
    start = 0
    while start < size:
        stop = start + step
        while stop < size:  # move the cut to just after the next newline
            chunk = os.pread(fd, 1 << 16, stop)
            newline = chunk.find(b"\n")
            if newline >= 0:
                stop += newline + 1
                break
            stop += len(chunk)
        stop = min(stop, size)
        out.append((start, stop))
        start = stop
    return out


def _check_readable(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{path}: not readable")

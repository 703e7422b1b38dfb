"""``guardd ingest``: a one-shot, idempotent backfill of ledger files into the store.

Reads each file from its start in bounded memory, with the same parser and the same event keys as the tailer,
so a backfill of a file the daemon also follows (or a second backfill) stores nothing twice.

A file that a configured ``[[ledgers]]`` entry covers (:func:`ledgers_of`: the first entry whose pattern names the
same file, as the daemon's tailer claims it) is read as that ledger: with its labels — ``--label`` adds to them
and wins on a key both name, a line's own labels win over both — and its format unless ``--format`` names one.
Without this, a backfill of a followed file stored (or, before review F9 was fixed, rewrote) its events without
the ledger's labels, out of every budget that matches them (review F10).

A large file is parsed by worker processes while this process writes, through the same pool as the daemon's
catch-up (:mod:`guardd.ledger.pool`): ranges parsed in parallel, written strictly in file order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

from guardd.core.batch import Parsed
from guardd.core.money import Money
from guardd.errors import UsageError
from guardd.ledger.discovery import find
from guardd.ledger.lines import fingerprint
from guardd.ledger.parse import LineParser, read_batch
from guardd.ledger.pool import RANGE_BYTES, Pool, RangeLost, Source
from guardd.ledger.tracked import LedgerSpec
from guardd.store.api import EventsAPI, IngestSummary

log = logging.getLogger("guardd.ingest")


def ledgers_of(paths: Iterable[str], specs: Sequence[LedgerSpec]) -> dict[str, LedgerSpec]:
    """Return, for each of ``paths`` that a ledger of ``specs`` covers, that ledger: the first (in the
    configuration's order) whose pattern names the same file (device and inode: a relative path, a symlink or
    another spelling is the same file), the one the daemon's tailer follows it as."""
    wanted: dict[tuple[int, int], list[str]] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # _check_readable says why
        wanted.setdefault((st.st_dev, st.st_ino), []).append(path)
    out: dict[str, LedgerSpec] = {}
    for spec in specs:
        if len(out) == sum(map(len, wanted.values())):
            break
        for found in find(spec.pattern).paths:
            try:
                st = os.stat(found)
            except OSError:
                continue
            for path in wanted.get((st.st_dev, st.st_ino), ()):
                out.setdefault(path, spec)
    return out


async def ingest_files(
    events: EventsAPI,
    paths: list[str],
    fmt: str | None,
    labels: dict[str, str],
    max_event_cost: Money,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    range_bytes: int = RANGE_BYTES,
    ledgers: Mapping[str, LedgerSpec] | None = None,
) -> IngestSummary:
    """Store every line of ``paths``; return the counts (``stored + duplicates + quarantined == read``).

    ``ledgers``: the configured ledger covering each path that one covers (:func:`ledgers_of`); its labels, under
    ``labels``, go on every event of the file, and its format is used when ``fmt`` is None (else ``auto``).

    ``progress`` is called with the number of bytes read after each batch. ``workers`` is the number of parsing
    processes: by default one per core, used for files of ``ledger.pool.PARALLEL_BYTES`` and more; a number given
    explicitly is used for any file longer than one range of ``range_bytes``; 0 parses everything in this
    process. Raise UsageError for a path that is not a readable file (before anything is stored).
    """
    _check_readable(paths)
    summary = IngestSummary()
    started = time.perf_counter()
    await events.load_series()
    # The rows of a batch are acyclic: no need for the cyclic collector to rescan them while they are written.
    collecting = gc.isenabled()
    gc.disable()
    try:
        async with events.bulk_load():
            reads = [_how(path, fmt, labels, (ledgers or {}).get(path)) for path in paths]
            await _ingest_paths(events, reads, max_event_cost, progress, Pool(workers, range_bytes), summary)
    finally:
        if collecting:
            gc.enable()
    summary.seconds = time.perf_counter() - started
    return summary


def _how(
    path: str, fmt: str | None, labels: dict[str, str], ledger: LedgerSpec | None
) -> tuple[str, str, dict[str, str]]:
    """``(path, format, labels)`` that ``path`` is read with (see the module's docstring)."""
    if ledger is None:
        return path, fmt or "auto", labels
    return path, fmt or ledger.fmt, {**ledger.labels, **labels}


async def _ingest_paths(
    events: EventsAPI,
    reads: list[tuple[str, str, dict[str, str]]],
    max_event_cost: Money,
    progress: Callable[[int], None] | None,
    pool: Pool,
    summary: IngestSummary,
) -> None:
    parsers: dict[tuple[str, tuple[tuple[str, str], ...]], LineParser] = {}
    try:
        for path, fmt, labels in reads:
            how = (fmt, tuple(sorted(labels.items())))
            parser = parsers.get(how) or parsers.setdefault(how, LineParser(fmt, labels, max_event_cost))
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

"""The tailer's catch-up: a backlog parsed by the worker processes ``guardd ingest`` uses (:mod:`guardd.ledger.pool`).

When a file holds at least the pool's threshold of bytes past its committed position (a large file found at start,
or one that grew while guardd was down), :meth:`CatchUp.read` hands the tailer that backlog range by range, in file
order, parsed ahead by the workers (otherwise it parses a batch itself); the tailer writes each with its checkpoint.
Nothing here writes or moves a position. A file's ranges parsed ahead outlive a poll that stopped between two of
them (the daemon reads a backlog in slices), and are dropped when the committed position is not where they start
(a failed write) or the file was truncated. While a catch-up runs, the store is tuned for a bulk load
(``EventsAPI.bulk_load``) and the cyclic garbage collector is off, as in ``guardd ingest``; both are restored when
it ends, or when the tailer is closed in the middle (:meth:`CatchUp.aclose`).
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack

from guardd.core.batch import Parsed
from guardd.ledger.parse import LineParser, read_batch
from guardd.ledger.pool import Pipeline, Pool, RangeLost, Source
from guardd.store.api import EventsAPI

log = logging.getLogger("guardd.ledger")

STOP_CHECK = 0.05  # seconds between two looks at ``keep_going`` while a parsing worker finishes a range


class Not(enum.Enum):
    """Why :meth:`CatchUp.next` returned no range."""

    STOPPED = "asked to stop while a worker parsed the next range"
    HERE = "no backlog for the workers: parse the next batch in this process"


class CatchUp:
    """The pool and the pipelines of the files being caught up, for one tailer (one caller at a time)."""

    def __init__(self, workers: int | None, events: EventsAPI) -> None:
        self.pool = Pool(workers)
        """Parsing processes for a backlog (see :class:`~guardd.ledger.pool.Pool` for ``workers``)."""
        self.events = events
        self._bulk_load = AsyncExitStack()
        self.ranges = 0
        """Ranges parsed by the workers so far."""
        self._pipelines: dict[tuple[int, int], Pipeline] = {}
        self._bulk_on = False
        self._collecting = False

    async def read(
        self, source: Source, offset: int, go: Callable[[], bool], parser: LineParser, limit: int
    ) -> Parsed | None:
        """The lines of ``source`` after ``offset`` (its committed position): the next range parsed by a worker
        while a backlog lasts, else about ``limit`` bytes of them parsed here by ``parser``; None when ``go`` said
        stop while a worker parsed the next range. ``end == offset`` in the result when nothing complete is left."""
        parsed = await self.next(source, offset, go)
        if parsed is Not.STOPPED:
            return None
        if parsed is Not.HERE:
            return await asyncio.to_thread(read_batch, source.fd, source.fp, source.path, parser, offset, None, limit)
        return parsed

    async def next(self, source: Source, offset: int, go: Callable[[], bool]) -> Parsed | Not:
        """The next range of ``source``'s backlog from ``offset`` (its committed position), parsed by a worker;
        :attr:`Not.HERE` when the caller should parse on itself, :attr:`Not.STOPPED` when ``go`` said stop."""
        key = (source.dev, source.ino)
        pipeline = self._pipelines.get(key)
        if pipeline is not None and pipeline.position != offset:
            self.drop(key)
            pipeline = None
        if pipeline is None:
            size = os.fstat(source.fd).st_size
            if not self.pool.worth(size - offset):
                return Not.HERE
            if not self.pool.running:
                await asyncio.to_thread(self.pool.start)  # the forkserver's start must not block the event loop
            pipeline = self._pipelines[key] = self.pool.pipeline(source, offset, size)
            await self._bulk(True)
        while not await pipeline.wait(STOP_CHECK):
            if not go():
                return Not.STOPPED  # the ranges parsed ahead wait for the next poll
        try:
            parsed = await pipeline.next()
        except RangeLost as lost:
            self.drop(key)
            if lost.broken:
                log.warning(
                    "a parsing worker died; reading on in this process from byte %d",
                    lost.at,
                    extra={"ctx": {"ledger": source.path}},
                )
                self.pool.close(kill=True)  # the next backlog starts new workers
            return Not.HERE
        if parsed is None:
            self.drop(key)  # every range is stored: what was appended since is read by the caller
            return Not.HERE
        self.ranges += 1
        return parsed

    def drop(self, key: tuple[int, int]) -> None:
        """Forget the ranges parsed ahead for the file ``key`` (device, inode)."""
        pipeline = self._pipelines.pop(key, None)
        if pipeline is not None:
            pipeline.abandon()

    async def idle(self) -> None:
        """After a poll: when no file is being caught up, stop the workers and end the bulk-load tuning."""
        if not self._pipelines and self.pool.running:
            self.pool.close(wait=False)  # the workers' memory goes back until the next backlog
        if not self._pipelines:
            await self._bulk(False)

    def close(self) -> None:
        """Drop every pipeline and end the workers at once (never waiting for a range being parsed). In async code
        use :meth:`aclose`, which also gives the store its tuning back."""
        for key in list(self._pipelines):
            self.drop(key)
        self.pool.close(kill=True)
        if self._bulk_on and self._collecting:
            gc.enable()
        self._bulk_on = False

    async def aclose(self) -> None:
        """:meth:`close`, and end the store's bulk-load tuning (the daemon's stop, a reload)."""
        bulk = self._bulk_on
        self.close()
        if bulk:
            try:
                await self._bulk_load.aclose()
            except Exception as exc:  # a failing store must not stop the stop
                log.warning("could not end the bulk-load tuning of the store: %s", exc)

    async def _bulk(self, on: bool) -> None:
        if on == self._bulk_on:
            return
        self._bulk_on = on
        if on:
            # The rows of a range are acyclic: no need for the cyclic collector to rescan them while they are written.
            self._collecting = gc.isenabled()
            gc.disable()
        elif self._collecting:
            gc.enable()
        if on:
            await self._bulk_load.enter_async_context(self.events.bulk_load())
        else:
            await self._bulk_load.aclose()

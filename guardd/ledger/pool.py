"""Parsing a large stretch of a ledger in worker processes, for ``guardd ingest`` and the daemon's catch-up alike.

Parsing is pure Python and the writer's SQLite inserts hold a core of their own, so on two cores the two overlap
instead of taking turns under one GIL. A stretch ``[start, size)`` of a file is cut into ranges at line boundaries
(:func:`cut`); a :class:`Pipeline` has at most :data:`IN_FLIGHT` of them parsed ahead by the workers and hands
them back **strictly in file order**, so "the last line wins" means the same as when one process reads the file,
and memory stays bounded whatever the file's size. The caller writes each range (with its checkpoint, for the
tailer) before it asks for the next: nothing here writes, or moves a position.

A worker parses the file *the writer holds open* (through ``/proc/<writer>/fd/<fd>``, checked by device and inode),
not whatever the path names now: a file renamed away during a catch-up is still the file parsed. When a worker dies
(killed, out of memory) or the file cannot be reached that way, :meth:`Pipeline.next` raises :class:`RangeLost`
with the first byte not handed back; every range before it was. The caller reads on in its own process from there.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from guardd.core.batch import Parsed
from guardd.core.money import Money
from guardd.ledger.worker import FileMoved, init, parse_range

PARALLEL_BYTES = 32 << 20  # a smaller stretch is parsed in the writer: starting workers costs more than it saves
RANGE_BYTES = 2 << 20  # per worker task: 2 MiB keeps a worker at ~20 MB PSS (4 MiB: ~26 MB)
IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class Source:
    """A ledger file open in the writing process as ``fd`` (device ``dev``, inode ``ino``, fingerprint ``fp``), and
    how its lines are parsed."""

    path: str
    fd: int
    dev: int
    ino: int
    fp: str
    fmt: str
    labels: dict[str, str] = field(default_factory=dict)
    max_event_cost: Money = 0


class RangeLost(Exception):
    """The range starting at byte ``at`` was not parsed (a worker died, or the file could not be reached);
    ``broken`` when the pool's workers are gone."""

    def __init__(self, at: int, broken: bool) -> None:
        super().__init__(f"parsing workers lost at byte {at}")
        self.at = at
        self.broken = broken


def threshold(workers: int | None, range_bytes: int) -> int:
    """The smallest stretch worth parsing in workers: :data:`PARALLEL_BYTES` by default; with a number of workers
    given explicitly, anything longer than one range."""
    return PARALLEL_BYTES if workers is None else range_bytes + 1


class Pool:
    """Worker processes parsing for this (the writing) process; started at the first :meth:`pipeline`.

    ``workers`` None means one per core; 0 means none (:meth:`worth` is then always False).
    """

    def __init__(self, workers: int | None = None, range_bytes: int = RANGE_BYTES) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.range_bytes = range_bytes
        self._explicit = workers is not None
        self._executor: ProcessPoolExecutor | None = None

    def worth(self, stretch: int) -> bool:
        """Whether ``stretch`` bytes are better parsed by the workers than in this process."""
        limit = threshold(self.workers if self._explicit else None, self.range_bytes)
        return self.workers > 0 and stretch >= limit

    def start(self) -> None:
        """Start the workers now (this blocks while the forkserver imports the parser: call it in a thread where
        an event loop must stay responsive); :meth:`pipeline` otherwise starts them."""
        if self._executor is None:
            # forkserver: workers fork from a clean, single-threaded server process, never from this one (which
            # runs the SQLite thread); the parser's modules are imported once, in the server.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["guardd.ledger.worker"])
            executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init, initargs=(os.getpid(),))
            executor.submit(os.getpid)  # the first task launches the processes
            self._executor = executor

    def pipeline(self, source: Source, start: int, size: int) -> Pipeline:
        """Start parsing ``[start, size)`` of ``source`` ahead, in ranges of about ``range_bytes``."""
        self.start()
        assert self._executor is not None
        return Pipeline(self._executor, source, cut(source.fd, start, size, self.range_bytes))

    @property
    def running(self) -> bool:
        return self._executor is not None

    def close(self, wait: bool = True, kill: bool = False) -> None:
        """Stop the workers once the ranges they are parsing are done (waiting for that, or not), or at once
        (``kill``: for a stop that must not wait on a range's parse). A later :meth:`pipeline` starts new ones."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list((executor._processes or {}).values()) if kill else []
        results = executor._result_queue if kill else None
        executor.shutdown(wait=wait and not kill, cancel_futures=True)
        for process in processes:
            try:
                process.kill()
            except (OSError, ValueError):
                pass  # it has exited already
        for process in processes:
            process.join(5)
        if results is not None:
            # A worker killed while sending its result leaves half a message in the result pipe, and the pool's
            # thread blocks reading the rest for ever: the interpreter then hangs at exit joining it. This process
            # holds the pipe's last writing end (the workers' went with them): closing it turns the wait into an
            # end of file, which the pool's thread handles as a broken pool and ends.
            results._writer.close()  # type: ignore[attr-defined]


class Pipeline:
    """Ranges of one file, parsed ahead by the pool's workers and handed back in order by :meth:`next`."""

    def __init__(self, executor: ProcessPoolExecutor, source: Source, spans: list[tuple[int, int]]) -> None:
        self.source = source
        self.position = spans[0][0] if spans else 0
        """The first byte of the next range :meth:`next` returns (the end of the last one it returned)."""
        self._executor = executor
        self._todo = deque(spans)
        self._pending: deque[tuple[int, asyncio.Future[bytes]]] = deque()
        for _ in range(IN_FLIGHT):
            self._submit()

    @property
    def done(self) -> bool:
        return not self._pending

    def _submit(self) -> None:
        if not self._todo:
            return
        start, stop = self._todo.popleft()
        s = self.source
        try:
            job = asyncio.get_running_loop().run_in_executor(
                self._executor, parse_range, s.path, s.fd, s.dev, s.ino, s.fp, s.fmt, s.labels, s.max_event_cost,
                start, stop,
            )  # fmt: skip
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down by close()
            job = asyncio.get_running_loop().create_future()
            job.set_exception(BrokenProcessPool("the parsing workers are gone"))
        self._pending.append((start, job))

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the next range; return whether it is ready (or there is none)."""
        if not self._pending:
            return True
        job = self._pending[0][1]
        if not job.done():
            await asyncio.wait([job], timeout=timeout)  # never cancels the job: see abandon()
        return job.done()

    async def next(self) -> Parsed | None:
        """Return the next range parsed (None when all are), and start parsing one more ahead. Raise
        :class:`RangeLost` when it was not parsed; every range before it was returned."""
        if not self._pending:
            return None
        start, job = self._pending[0]
        try:
            packed = await asyncio.shield(job)
        except BrokenProcessPool:
            raise RangeLost(start, broken=True) from None
        except FileMoved:
            raise RangeLost(start, broken=False) from None
        self._pending.popleft()
        self._submit()
        parsed = Parsed.unpack(packed)
        if parsed.start != self.position:  # cannot happen (ranges are cut at line ends): never skip a byte
            raise RangeLost(self.position, broken=False)
        self.position = parsed.end
        return parsed

    def abandon(self) -> None:
        """Drop the ranges still pending (their results are read by nobody)."""
        # Not job.cancel(): on Python 3.11 cancelling a range's future races with the pool's own thread marking it
        # failed when a worker died; that thread then dies of InvalidStateError before stopping the surviving
        # workers, and the writer hangs at exit. Pool.close() drops the ranges not started, from the pool's side;
        # here their outcome is only collected, so none goes unread.
        for _start, job in self._pending:
            job.add_done_callback(_collect)
        self._pending.clear()
        self._todo.clear()


def _collect(job: asyncio.Future[bytes]) -> None:
    if not job.cancelled():
        job.exception()


def cut(fd: int, start: int, size: int, step: int) -> list[tuple[int, int]]:
    """Cut ``[start, size)`` into ranges of about ``step`` bytes that end just after a newline (the last one ends
    at ``size``)."""
    out: list[tuple[int, int]] = []
    while start < size:
        stop = start + step
        while stop < size:  # move the cut to just after the next newline
            chunk = os.pread(fd, 1 << 16, stop)
            newline = chunk.find(b"\n")
            if newline >= 0:
                stop += newline + 1
                break
            if not chunk:
                break
            stop += len(chunk)
        stop = min(stop, size)
        out.append((start, stop))
        start = stop
    return out

"""The ledger tailer: follows every configured path and glob the way a production log shipper does.

Identity of a file is (device, inode, fingerprint of the first line). The tailer keeps each file open, so after a
rename-and-create rotation it drains late writes from the old inode (until it has been quiet for
``DRAIN_QUIET``) while it starts on the new file. Its checkpoint — the byte after the last complete line, plus a
hash of the bytes before it — is committed in the same transaction as the events it covers, so ``kill -9`` at
any moment loses nothing and counts nothing twice. On resume the checkpoint is trusted only if the file still
has that fingerprint, is at least that long, and the bytes before the offset still hash the same; otherwise the
file is re-read from the start, which is always safe because event keys are content-based.

A backlog (a large file found at start, or one that grew while guardd was down) is parsed by the worker processes
``guardd ingest`` uses (:mod:`guardd.ledger.catchup`), handed back in file order and each range written with its
checkpoint as above. Only the tailer writes: the workers only read the file.

Copy-and-truncate: when a file shrinks, the lines written between the last read and the truncation are in the
copy; the tailer looks for a file in the same folder with the old fingerprint and reads the missing range from
it. A file whose checkpoint matches no watched path on start-up (rotated while guardd was down) is found the
same way, by inode, in the watched folders.

This module reads: :class:`Tailer` finds the files, reads their new lines and stores them. Following one file —
its identity, its position, finding it after a rotation — is :mod:`guardd.ledger.tracked`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Callable

from guardd.core.money import Money
from guardd.ledger.catchup import CatchUp
from guardd.ledger.discovery import MAX_DEPTH, Found, find, static_prefix
from guardd.ledger.lines import fingerprint, tail_hash
from guardd.ledger.parse import BATCH_BYTES, LineParser, read_batch
from guardd.ledger.pool import Source
from guardd.ledger.siblings import find_rotated_siblings
from guardd.ledger.tracked import LedgerSpec, Tracked, find_copy, find_rotated_while_down, same_file
from guardd.store.api import BatchResult, Checkpoint, EventsAPI

__all__ = ["DRAIN_QUIET", "SLOW_DISCOVERY", "LedgerSpec", "Tailer"]

log = logging.getLogger("guardd.ledger")

DRAIN_QUIET = 30.0
SLOW_DISCOVERY = 1.0  # seconds; a slower search for ledger files is logged


class Tailer:
    """Follows the ledgers of the configuration and stores what they say. Not thread-safe; one per daemon, and
    only one :meth:`poll` at a time (the daemon's worker is its only caller).

    A file's position in memory is always its committed checkpoint: it moves only after the transaction that
    stores a batch commits, so a batch whose write fails is simply read again from there on the next poll.
    """

    def __init__(
        self, specs: list[LedgerSpec], events: EventsAPI, max_event_cost: Money, workers: int | None = None
    ) -> None:
        self.specs = specs
        self.events = events
        self.cost = max_event_cost
        self.catchup = CatchUp(workers, events)
        """The backlog's parsing processes (``workers`` as for ``guardd ingest --workers``)."""
        self.parsers = {s.pattern: LineParser(s.fmt, s.labels, max_event_cost) for s in specs}
        self.tracked: dict[tuple[int, int], Tracked] = {}
        self._known: dict[tuple[int, int, str], Checkpoint] = {}
        self._started = False
        self._warned: set[tuple[str, str]] = set()
        self.batch_bytes = BATCH_BYTES
        self.behind = False
        """True when the last :meth:`poll` stopped before reading everything (asked to stop between batches)."""
        self.unreadable: dict[str, str] = {}
        """Ledger files the last :meth:`poll` found but could not open (path -> why): their spend is not counted.
        The daemon records them where ``status`` and ``check`` read them (contract §7: never OK in silence)."""
        self.missed: dict[str, str] = {}
        """Rotated ledger files found at start that guardd cannot read (compressed, not openable) and that may hold
        lines it never counted (path -> why; :mod:`guardd.ledger.siblings`); ``status`` and ``check`` warn."""

    def folders(self) -> list[str]:
        """Return the folders the watched patterns live in (for inotify)."""
        out: list[str] = []
        for spec in self.specs:
            folder = static_prefix(spec.pattern)
            if folder not in out:
                out.append(folder)
        return out

    async def start(self) -> None:
        for cp in await self.events.checkpoints():
            self._known[(cp.dev, cp.ino, cp.fingerprint)] = cp
        self._started = True

    async def aclose(self) -> None:
        """:meth:`close`, ending a catch-up's tuning of the store too (in async code, use this one)."""
        await self.catchup.aclose()
        self.close()

    def close(self) -> None:
        """Close every file and end the parsing workers at once (never waiting for a range being parsed)."""
        self.catchup.close()
        for tracked in self.tracked.values():
            os.close(tracked.fd)
        self.tracked.clear()

    async def poll(self, keep_going: Callable[[], bool] | None = None) -> list[BatchResult]:
        """Look at every watched file once, store whatever new complete lines they hold, and return what was
        stored (one result per batch).

        ``keep_going`` is asked before every batch; when it answers False the poll stops there (every batch so far
        is committed) and :attr:`behind` is set. Globbing runs in a thread, off the event loop. A failed write
        raises :class:`~guardd.errors.StoreError` and leaves every position at its committed value.
        """
        go = keep_going or (lambda: True)
        self.behind = False
        found = await self._find_files()
        if not self._started:
            await self.start()
            await asyncio.to_thread(find_rotated_while_down, self.specs, self._known, self.tracked, found)
            self.missed = await asyncio.to_thread(find_rotated_siblings, self.specs, self._known, self.tracked, found)
        results: list[BatchResult] = []
        unreadable: dict[str, str] = {}
        for spec, paths in found:
            for path in paths:
                error = self._discover(spec, path)
                if error is not None:
                    unreadable[path] = error
        self.unreadable = unreadable
        for key in list(self.tracked):
            if not go():
                self.behind = True
                break
            tracked = self.tracked[key]
            batches = await self._read(tracked, go)
            results.extend(batches)
            if batches:
                _log_ingested(tracked.path, batches)
            if tracked.rotated_at is not None and time.monotonic() - tracked.last_growth > DRAIN_QUIET:
                log.info("finished draining rotated ledger file", extra={"ctx": {"ledger": tracked.path}})
                self.catchup.drop(key)
                os.close(tracked.fd)
                del self.tracked[key]
        await self.catchup.idle()
        return results

    # ---- discovery --------------------------------------------------------------------------------------
    async def _find_files(self) -> list[tuple[LedgerSpec, list[str]]]:
        """Return the files each pattern names now. The search runs in a thread (it never blocks the event
        loop), is bounded (see :mod:`guardd.ledger.discovery`), and is logged when it is slow, deep or loops."""
        started = time.monotonic()
        found = await asyncio.to_thread(lambda: [(spec, find(spec.pattern)) for spec in self.specs])
        elapsed = time.monotonic() - started
        if elapsed > SLOW_DISCOVERY:
            log.warning(
                "finding ledger files took %.1fs; narrow the ledger patterns",
                elapsed,
                extra={"ctx": {"patterns": ",".join(s.pattern for s in self.specs)}},
            )
        for spec, result in found:
            self._warn_once(spec, result)
        return [(spec, sorted(result.paths)) for spec, result in found]

    def _warn_once(self, spec: LedgerSpec, result: Found) -> None:
        if result.too_deep and (spec.pattern, "deep") not in self._warned:
            self._warned.add((spec.pattern, "deep"))
            log.warning(
                "ledger pattern reaches folders more than %d deep; those are not searched",
                MAX_DEPTH,
                extra={"ctx": {"pattern": spec.pattern}},
            )
        if result.loops and (spec.pattern, "loops") not in self._warned:
            self._warned.add((spec.pattern, "loops"))
            log.info(
                "ledger pattern reaches a folder twice (a symlink loop?); each folder is searched once",
                extra={"ctx": {"pattern": spec.pattern}},
            )

    def _discover(self, spec: LedgerSpec, path: str) -> str | None:
        """Start following ``path`` if it is a new regular file; return why it cannot be opened (None: fine)."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None  # gone since the search (or a dangling link): nothing to read
        except OSError as exc:
            return self._cannot_open(path, exc)
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino)
        if key in self.tracked:
            tracked = self.tracked[key]
            tracked.path, tracked.rotated_at = path, None
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            return self._cannot_open(path, exc)
        tracked = Tracked(spec, path, fd, st.st_dev, st.st_ino, fingerprint(fd))
        tracked.resume(self._known, st.st_size)
        self.tracked[key] = tracked
        return None

    def _cannot_open(self, path: str, exc: OSError) -> str:
        """Log a ledger file that cannot be opened (once, until it could be) and return why."""
        error = exc.strerror or str(exc)
        if path not in self.unreadable:
            log.warning("cannot open ledger file: %s; its spend is not counted", error, extra={"ctx": {"ledger": path}})
        return error

    # ---- reading ----------------------------------------------------------------------------------------
    async def _read(self, tracked: Tracked, go: Callable[[], bool]) -> list[BatchResult]:
        try:
            st = os.fstat(tracked.fd)
        except OSError:
            return []
        if tracked.rotated_at is None and not same_file(tracked.path, st):
            tracked.rotated_at = time.monotonic()
        size = st.st_size
        results: list[BatchResult] = []
        if tracked.fp is None:
            tracked.fp = fingerprint(tracked.fd)
            if tracked.fp is None:
                return results
            tracked.resume(self._known, size)
        rewritten = (
            tracked.offset > 0 and size >= tracked.offset and tail_hash(tracked.fd, tracked.offset) != tracked.tail
        )
        if size < tracked.offset or rewritten:
            # Shrunk, or truncated and regrown past our offset between two looks: the bytes before it changed.
            self.catchup.drop((tracked.dev, tracked.ino))
            results.extend(await self._truncated(tracked, size))
        if size <= tracked.offset:
            return results
        tracked.last_growth = time.monotonic()
        fp = tracked.fp
        assert fp is not None
        while True:
            if not go():
                self.behind = True
                break
            spec = tracked.spec
            source = Source(tracked.path, tracked.fd, tracked.dev, tracked.ino, fp, spec.fmt, spec.labels, self.cost)
            parsed = await self.catchup.read(source, tracked.offset, go, self.parsers[spec.pattern], self.batch_bytes)
            if parsed is None:  # asked to stop while a worker parsed the next range
                self.behind = True
                break
            if parsed.end == tracked.offset:
                break
            # The checkpoint goes into the batch's own transaction: both land, or neither does; the position in
            # memory follows only once they have.
            checkpoint = tracked.checkpoint(parsed.end, size, tracked.quarantined + len(parsed.bad))
            result = await self.events.write_batch(parsed, checkpoint)
            tracked.committed(checkpoint, result)
            results.append(result)
        return results

    async def _truncated(self, tracked: Tracked, size: int) -> list[BatchResult]:
        """The file shrank (copy-and-truncate, or a truncation): read what the copy holds past our offset, then
        start the file again from its beginning."""
        old_fp, old_offset = tracked.fp, tracked.offset
        results: list[BatchResult] = []
        copy = find_copy(tracked.path, old_fp, old_offset, exclude=(tracked.dev, tracked.ino))
        if copy is not None and old_fp is not None:
            fd = os.open(copy, os.O_RDONLY)
            try:
                parser = self.parsers[tracked.spec.pattern]
                position = old_offset
                while True:
                    parsed = await asyncio.to_thread(read_batch, fd, old_fp, copy, parser, position)
                    if parsed.end == position:
                        break
                    results.append(await self.events.write_batch(parsed, None))
                    position = parsed.end
            finally:
                os.close(fd)
            log.info("read the tail of a copy-truncated ledger from its copy", extra={"ctx": {"ledger": copy}})
        else:
            log.warning("ledger file was truncated", extra={"ctx": {"ledger": tracked.path}})
        tracked.offset, tracked.events, tracked.quarantined, tracked.tail = 0, 0, 0, ""
        tracked.fp = fingerprint(tracked.fd) if size else None
        return results


def _log_ingested(path: str, batches: list[BatchResult]) -> None:
    ctx = {
        "ledger": path,
        "stored": sum(b.stored for b in batches),
        "duplicates": sum(b.duplicates for b in batches),
        "set_aside": sum(b.quarantined for b in batches),
    }
    log.debug("ingested ledger file", extra={"ctx": ctx})

"""Usage events in the shared store: the PostgreSQL side of :class:`guardd.store.api.EventsAPI`.

Writing a batch (:mod:`guardd.store.postgres.ingest`): ``COPY`` into a staging table, then set-based statements that
take their row locks in one global order, so that batches from several hosts run side by side and totals stay
exact (no writers' lock). Events are unique by a 64-bit hash of their key (``h``); the key text beside it tells
two keys with one hash apart.

Lines without a generation id are keyed by the instance too (``h:<instance>:…``), so two hosts' identical lines in
their own files stay two events; a generation id counts once across all instances.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from guardd.core.budgets import Dimensions
from guardd.errors import StoreError
from guardd.store.event_reads import EventReads
from guardd.store.postgres.db import Conn, PgStore
from guardd.store.postgres.dialect import PG
from guardd.store.shared import dims_of, sig_columns

if TYPE_CHECKING:
    from guardd.core.batch import Parsed
    from guardd.store.api import BatchResult, Checkpoint, Priced, UnpricedEvent

__all__ = ["PgEventStore"]

log = logging.getLogger("guardd.store")


class PgEventStore(EventReads):
    """Events, series, rollups, this instance's file checkpoints and quarantine in a :class:`PgStore` (the reads
    are shared with SQLite: :class:`~guardd.store.event_reads.EventReads`)."""

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.instance = store.instance
        self.db, self.d = store, PG
        self._known: set[int] = set()
        self._summarize_failed = False
        self._optimistic = True  # the last batch met no stored key: the next tries a plain insert first

    def _checkpoint_filter(self) -> tuple[str, Sequence[Any]]:
        return " WHERE instance = ?", (self.instance,)

    def key(self, k: str) -> str:
        """Return the stored key of a batch key: generation ids as they are, line hashes under this instance."""
        # The write path, imported where it is used: status imports this module only to read.
        from guardd.store.postgres.ingest import stored_key

        return stored_key(k, self.instance)

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """Many batches in a row (``guardd ingest``): nothing to tune (each batch is one COPY already)."""
        yield

    # ---- series -------------------------------------------------------------------------------------------
    async def load_series(self) -> dict[int, Dimensions]:
        rows = await self.store.fetchall("SELECT id, sig FROM series")
        self._known = {sid for sid, _ in rows}
        return {sid: dims_of(sig) for sid, sig in rows}

    async def _add_series(self, conn: Conn, series: dict[int, str]) -> None:
        """Store the series of a batch not known to be stored yet (in id order), checking their signatures."""
        missing = sorted((sid, sig) for sid, sig in series.items() if sid not in self._known)
        if not missing:
            return
        ids, sigs = [sid for sid, _ in missing], [sig for _, sig in missing]
        columns = [sig_columns(sig) for sig in sigs]
        await conn.execute(
            "INSERT INTO series(id, sig, model, key, provider, labels)"
            " SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            (ids, sigs, *(list(col) for col in zip(*columns, strict=True))),
        )
        cur = await conn.execute("SELECT id, sig FROM series WHERE id = ANY(%s)", (ids,))
        stored: dict[int, str] = {sid: sig for sid, sig in await cur.fetchall()}
        for sid, sig in missing:
            if stored.get(sid) != sig:  # two signatures with one 64-bit hash: never merge their spend
                raise StoreError(f"series id collision between {sig!r} and {stored.get(sid)!r}")
            self._known.add(sid)

    # ---- writing ------------------------------------------------------------------------------------------
    async def write_batch(self, parsed: Parsed, checkpoint: Checkpoint | None = None) -> BatchResult:
        """Store ``parsed`` and ``checkpoint`` in one transaction (see :mod:`guardd.store.postgres.ingest`); a
        transaction the database chose as a deadlock victim is run again whole (nothing was advanced)."""
        # The write path, imported where it is used: status imports this module only to read.
        from guardd.store.postgres.ingest import copy_text, deadlock_retried
        from guardd.store.setaside_log import log_set_aside

        # The COPY text is built off the event loop (a batch is ~30,000 rows): the loop keeps serving meanwhile.
        payload = await asyncio.to_thread(copy_text, parsed.row_iter(), self.instance)
        result = await deadlock_retried(lambda: self._write_once(parsed, checkpoint, payload))
        log_set_aside(parsed.bad)  # committed: now each line set aside is said once
        if result.stored:
            await self._summarize()
        return result

    async def _write_once(self, parsed: Parsed, checkpoint: Checkpoint | None, payload: bytes) -> BatchResult:
        from guardd.store.api import BatchResult
        from guardd.store.batch_writes import advanced, save_checkpoint
        from guardd.store.postgres.ingest import Writer

        result = BatchResult(quarantined=len(parsed.bad), duplicates=parsed.duplicates)
        try:
            async with self.store.transaction("events") as conn:
                writer = Writer(conn, self.instance, self._optimistic)
                await self._add_series(conn, parsed.series)
                await writer.events(parsed, payload, result)
                if parsed.bad:
                    now = datetime.now(UTC)
                    await conn.cursor().executemany(
                        "INSERT INTO quarantine(instance, source, path, byte_offset, reason, excerpt, at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(self.instance, q.source, q.path, q.offset, q.reason, q.excerpt, now) for q in parsed.bad],
                    )
                if checkpoint is not None:
                    await save_checkpoint(PG, conn, advanced(checkpoint, result), self.instance, datetime.now(UTC))
        except BaseException:
            self._known.clear()  # series added by the rolled-back transaction are not stored after all
            raise
        self._optimistic = not writer.stored_met
        return result

    async def _summarize(self) -> None:
        """Summarize the page ranges of the events' BRIN time index that batches filled (schema 7), after the commit:
        a raw window edge then reads only the ranges whose times overlap it. Only an aid to reads (a range not
        summarized is read whole, never missed), so a failure — a role that does not own the table may not
        summarize — is logged, once, and the batch stands."""
        try:
            await self.store.fetchone("SELECT brin_summarize_new_values('events_ts')")
        except StoreError as exc:
            if not self._summarize_failed:
                log.warning("the events' time index is not summarized (raw window edges read slower): %s", exc)
            self._summarize_failed = True

    async def set_cost(self, priced: Sequence[Priced]) -> int:
        """Price still-unpriced events (``Priced.id`` is the event's key hash); rollups follow. Return how many
        were priced."""
        from guardd.store.postgres.ingest import deadlock_retried  # the write path: see write_batch

        if not priced:
            return 0
        costs = {p.id: p.cost for p in priced}
        return await deadlock_retried(lambda: self._set_cost_once(costs))

    async def _set_cost_once(self, costs: dict[int, int]) -> int:
        """One try of :meth:`set_cost`: the events are locked in key-hash order (``FOR UPDATE``: one priced by a
        concurrent batch meanwhile is read as it committed, and skipped), then the rollups, then the waiting
        token counts — the order every writer keeps (:mod:`guardd.store.postgres.ingest`)."""
        from guardd.core.batch import ENTRY, add_to_hours
        from guardd.store.postgres.ingest import DELETE_LOCKED, DOLLARS, apply_rollups

        hours: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * ENTRY)
        async with self.store.transaction("events") as conn:
            cur = await conn.execute(
                "SELECT h, k, ts, series FROM events WHERE cost IS NULL AND h = ANY(%s) ORDER BY h FOR UPDATE",
                (sorted(costs),),
            )
            found = await cur.fetchall()
            for h, _k, ts, series in found:
                add_to_hours(hours, ts, series, None, -1)
                add_to_hours(hours, ts, series, costs[h], +1)
            if found:
                ids = [h for h, *_ in found]
                await conn.execute(
                    f"UPDATE events e SET cost = p.cost * {DOLLARS} FROM unnest(%s::bigint[], %s::bigint[])"
                    " AS p(h, cost) WHERE e.h = p.h AND e.cost IS NULL",
                    (ids, [costs[h] for h in ids]),
                )
            await apply_rollups(conn, hours)
            if found:
                await conn.execute(DELETE_LOCKED.format(table="unpriced"), ([k for _, k, *_ in found],))
        return len(found)

    async def unpriced_events(self, limit: int = 5000) -> list[UnpricedEvent]:
        # The write path, imported where it is used: status imports this module only to read.
        from guardd.store.api import UnpricedEvent
        from guardd.store.postgres.ingest import hash_sql

        rows = await self.store.fetchall(
            "SELECT e.h, s.model, u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens,"
            " CASE WHEN e.k LIKE 'g:%%' THEN substr(e.k, 3) END FROM unpriced u"
            f" JOIN events e ON e.h IN ({hash_sql('u.k')}, {hash_sql('u.k', 1)}) AND e.k = u.k"
            " JOIN series s ON s.id = e.series WHERE e.cost IS NULL ORDER BY e.h LIMIT %s",
            (limit,),
        )
        return [UnpricedEvent(*r) for r in rows]

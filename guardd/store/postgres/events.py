"""Usage events in the shared store: the PostgreSQL side of :class:`guardd.store.api.EventsAPI`.

Writing a batch: the rows go by ``COPY`` into a temporary table, then one ``INSERT … ON CONFLICT (k) DO NOTHING``
moves the new ones into ``events``; keys already stored are compared with the batch's line, and where the line
changed (a later streaming snapshot) the stored event is updated and its spend moved (the last line wins, as in
SQLite). Rollups per hour and UTC day are corrected in the same transaction. Writers of events — every instance's
ingest, pricing — take one transaction-scoped advisory lock, so overlapping batches from several hosts are
serialised and totals stay exact; the lock ends with the transaction (commit, rollback or a dropped connection),
so it cannot be stranded on a pooled connection.

Lines without a generation id are keyed by the instance too (``h:<instance>:…``), so two hosts' identical lines in
their own files stay two events; a generation id counts once across all instances.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from guardd.core.batch import Parsed, add_to_hours
from guardd.core.budgets import Dimensions
from guardd.errors import StoreError
from guardd.store.api import BatchResult, Checkpoint, Priced, UnpricedEvent
from guardd.store.event_reads import EventReads
from guardd.store.postgres.db import EVENTS_LOCK, Conn, PgStore, pico
from guardd.store.postgres.dialect import PG
from guardd.store.setaside_log import log_set_aside
from guardd.store.sqlite.events import dims_of

_DOLLARS = "0.000000000001"  # pico-dollars times this is exact numeric dollars

_BATCH_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS batch_rows (k text NOT NULL, ts bigint NOT NULL, series bigint NOT NULL,"
    " cost bigint) ON COMMIT DELETE ROWS"
)


_ROLLUP_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS batch_rollups (level smallint NOT NULL, bucket bigint NOT NULL,"
    " series bigint NOT NULL, cost numeric NOT NULL, events bigint NOT NULL, unpriced bigint NOT NULL)"
    " ON COMMIT DELETE ROWS"
)


class PgEventStore(EventReads):
    """Events, series, rollups, this instance's file checkpoints and quarantine in a :class:`PgStore` (the reads
    are shared with SQLite: :class:`~guardd.store.event_reads.EventReads`)."""

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.instance = store.instance
        self.db, self.d = store, PG

    def _checkpoint_filter(self) -> tuple[str, Sequence[Any]]:
        return " WHERE instance = ?", (self.instance,)

    def key(self, k: str) -> str:
        """Return the stored key of a batch key: generation ids as they are, line hashes under this instance."""
        return k if k.startswith("g:") else f"h:{self.instance}:{k[2:]}"

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """Many batches in a row (``guardd ingest``): nothing to tune (each batch is one COPY already)."""
        yield

    # ---- series -------------------------------------------------------------------------------------------
    async def load_series(self) -> dict[int, Dimensions]:
        rows = await self.store.fetchall("SELECT id, sig FROM series")
        return {sid: dims_of(sig) for sid, sig in rows}

    async def _add_series(self, conn: Conn, series: dict[int, str]) -> None:
        if not series:
            return
        ids, sigs = list(series), list(series.values())
        columns = [_sig_columns(sig) for sig in sigs]
        await conn.execute(
            "INSERT INTO series(id, sig, model, key, provider, labels)"
            " SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            (ids, sigs, *(list(col) for col in zip(*columns, strict=True))),
        )
        cur = await conn.execute("SELECT id, sig FROM series WHERE id = ANY(%s)", (ids,))
        stored: dict[int, str] = {sid: sig for sid, sig in await cur.fetchall()}
        for sid, sig in series.items():
            if stored.get(sid) != sig:  # two signatures with one 64-bit hash: never merge their spend
                raise StoreError(f"series id collision between {sig!r} and {stored.get(sid)!r}")

    # ---- writing ------------------------------------------------------------------------------------------
    async def write_batch(self, parsed: Parsed, checkpoint: Checkpoint | None = None) -> BatchResult:
        """Store ``parsed`` and ``checkpoint`` in one transaction (see the module's docstring)."""
        result = BatchResult(quarantined=len(parsed.bad), duplicates=parsed.duplicates)
        async with self.store.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
            await self._add_series(conn, parsed.series)
            before = (await (await conn.execute("SELECT coalesce(max(id), 0) FROM events")).fetchone() or (0,))[0]
            await conn.execute(_BATCH_TABLE)
            async with conn.cursor().copy("COPY batch_rows (k, ts, series, cost) FROM STDIN") as copy:
                for k, ts, series, cost, *_ in parsed.row_iter():
                    await copy.write_row((self.key(k), ts, series, cost))
            cur = await conn.execute(
                f"INSERT INTO events (k, ts, series, cost, instance) SELECT k, ts, series, cost * {_DOLLARS}, %s"
                " FROM batch_rows ORDER BY k ON CONFLICT (k) DO NOTHING",
                (self.instance,),
            )
            inserted = max(cur.rowcount, 0)
            hours = parsed.hours
            result.stored = inserted
            result.unpriced = sum(entry[2] for entry in hours.values())
            result.series = {sid for _hour, sid in hours}
            result.max_ts = parsed.max_ts
            if inserted < parsed.count:
                await self._correct(conn, before, hours, result)
            await _apply(conn, hours)
            if parsed.tokens:
                await conn.cursor().executemany(
                    "INSERT INTO unpriced(k, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (k) DO UPDATE SET prompt_tokens = excluded.prompt_tokens,"
                    " completion_tokens = excluded.completion_tokens, reasoning_tokens = excluded.reasoning_tokens,"
                    " cached_tokens = excluded.cached_tokens",
                    [(self.key(k), *rest[:4]) for k, *rest in parsed.tokens.values()],
                )
            if parsed.bad:
                now = datetime.now(UTC)
                await conn.cursor().executemany(
                    "INSERT INTO quarantine(instance, source, path, byte_offset, reason, excerpt, at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(self.instance, q.source, q.path, q.offset, q.reason, q.excerpt, now) for q in parsed.bad],
                )
            if checkpoint is not None:
                last = checkpoint.last_event_ms
                if result.max_ts is not None:
                    last = max(result.max_ts, last or 0)
                cp = replace(checkpoint, events=checkpoint.events + result.stored, last_event_ms=last)
                await self._save_checkpoint(conn, cp)
        log_set_aside(parsed.bad)  # committed: now each line set aside is said once
        return result

    async def _correct(
        self, conn: Conn, before: int, hours: dict[tuple[int, int], list[int]], result: BatchResult
    ) -> None:
        """The rows whose key was already stored (ids up to ``before``): count them as duplicates, take them out
        of ``hours``, and where the line changed, update the event and move its spend (the last line wins)."""
        cur = await conn.execute(
            "SELECT b.k, b.ts, b.series, b.cost, e.id, e.ts, e.series, e.cost FROM batch_rows b"
            " JOIN events e ON e.k = b.k WHERE e.id <= %s",
            (before,),
        )
        updates: list[tuple[int, int, int | None, int]] = []
        priced: list[str] = []
        for k, ts, series, cost, eid, old_ts, old_series, old_dollars in await cur.fetchall():
            old_cost = None if old_dollars is None else pico(old_dollars)
            result.duplicates += 1
            result.unpriced -= cost is None
            if (old_ts, old_series, old_cost) == (ts, series, cost):
                add_to_hours(hours, ts, series, cost, -1)  # already counted when it was stored
                continue
            add_to_hours(hours, old_ts, old_series, old_cost, -1)  # the new line replaces the old one
            updates.append((ts, series, cost, eid))
            if cost is not None and old_cost is None:
                priced.append(k)
            result.series.add(old_series)
        if updates:
            await conn.cursor().executemany(
                f"UPDATE events SET ts = %s, series = %s, cost = %s::bigint * {_DOLLARS} WHERE id = %s", updates
            )
        if priced:
            await conn.execute("DELETE FROM unpriced WHERE k = ANY(%s)", (priced,))

    async def _save_checkpoint(self, conn: Conn, cp: Checkpoint) -> None:
        await conn.execute(
            "INSERT INTO files(instance, ledger, path, dev, ino, fingerprint, byte_offset, size, tail, events,"
            " quarantined, last_event_ms, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now())"
            " ON CONFLICT (instance, dev, ino, fingerprint) DO UPDATE SET ledger = excluded.ledger,"
            " path = excluded.path, byte_offset = excluded.byte_offset, size = excluded.size, tail = excluded.tail,"
            " events = excluded.events, quarantined = excluded.quarantined,"
            " last_event_ms = excluded.last_event_ms, updated_at = excluded.updated_at",
            (
                self.instance,
                cp.ledger,
                cp.path,
                cp.dev,
                cp.ino,
                cp.fingerprint,
                cp.offset,
                cp.size,
                cp.tail,
                cp.events,
                cp.quarantined,
                cp.last_event_ms,
            ),
        )

    async def set_cost(self, priced: Sequence[Priced]) -> int:
        """Price still-unpriced events; rollups follow. Return how many were priced."""
        if not priced:
            return 0
        costs = {p.id: p.cost for p in priced}
        hours: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        async with self.store.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
            cur = await conn.execute(
                "SELECT id, ts, series FROM events WHERE cost IS NULL AND id = ANY(%s)", (list(costs),)
            )
            found = await cur.fetchall()
            for eid, ts, series in found:
                add_to_hours(hours, ts, series, None, -1)
                add_to_hours(hours, ts, series, costs[eid], +1)
            if found:
                ids = [eid for eid, _, _ in found]
                await conn.execute(
                    f"UPDATE events e SET cost = p.cost * {_DOLLARS} FROM unnest(%s::bigint[], %s::bigint[])"
                    " AS p(id, cost) WHERE e.id = p.id AND e.cost IS NULL",
                    (ids, [costs[eid] for eid in ids]),
                )
                await conn.execute("DELETE FROM unpriced WHERE k IN (SELECT k FROM events WHERE id = ANY(%s))", (ids,))
            await _apply(conn, hours)
        return len(found)

    # ---- reading ------------------------------------------------------------------------------------------
    async def unpriced_events(self, limit: int = 5000) -> list[UnpricedEvent]:
        rows = await self.store.fetchall(
            "SELECT e.id, s.model, u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens,"
            " CASE WHEN e.k LIKE 'g:%%' THEN substr(e.k, 3) END FROM unpriced u JOIN events e ON e.k = u.k"
            " JOIN series s ON s.id = e.series WHERE e.cost IS NULL ORDER BY e.id LIMIT %s",
            (limit,),
        )
        return [UnpricedEvent(*r) for r in rows]


async def _apply(conn: Conn, hours: dict[tuple[int, int], list[int]]) -> None:
    """Add per-(hour, series) deltas ``[cost, events, unpriced]`` to the hour and UTC-day rollups: COPY into a
    temporary table, then one upsert in key order (the same order in every writer)."""
    await conn.execute(_ROLLUP_TABLE)
    async with conn.cursor().copy(
        "COPY batch_rollups (level, bucket, series, cost, events, unpriced) FROM STDIN"
    ) as copy:
        for row in _rollup_rows(hours):
            await copy.write_row(row)
    await conn.execute(
        f"INSERT INTO rollups(level, bucket, series, cost, events, unpriced) SELECT level, bucket, series,"
        f" cost * {_DOLLARS}, events, unpriced FROM batch_rollups ORDER BY level, bucket, series"
        " ON CONFLICT (level, bucket, series) DO UPDATE SET cost = rollups.cost + excluded.cost,"
        " events = rollups.events + excluded.events, unpriced = rollups.unpriced + excluded.unpriced"
    )


def _rollup_rows(hours: dict[tuple[int, int], list[int]]) -> Iterator[tuple[int, int, int, int, int, int]]:
    days: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (hour, series), entry in hours.items():
        cost, events, unpriced = entry[0], entry[1], entry[2]
        day = days[(hour // 24, series)]
        day[0] += cost
        day[1] += events
        day[2] += unpriced
        if cost or events or unpriced:
            yield (0, hour, series, cost, events, unpriced)
    for (day_bucket, series), (cost, events, unpriced) in days.items():
        if cost or events or unpriced:
            yield (1, day_bucket, series, cost, events, unpriced)


def _sig_columns(sig: str) -> tuple[str, str | None, str | None, str]:
    model, key, provider, labels = json.loads(sig)
    return model, key, provider, json.dumps(dict(labels), sort_keys=True)

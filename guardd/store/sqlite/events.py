"""Usage events in the store: exactly-once batches, and window sums that stay fast at any history size.

Writing: :meth:`EventStore.write_batch` stores a batch of parsed events, its quarantined lines and (optionally) a
file checkpoint in **one** transaction, so a crash at any moment leaves either all of it or none. Events are
keyed for dedupe (same generation id → one event, the last line wins); a key already stored is a duplicate,
and if its line changed (a later streaming snapshot) the stored event and the rollups are corrected.

Reading: spend is kept in rollups — per series (a distinct model/key/provider/labels combination), per hour and
per UTC day. A window's sum is the full UTC days inside it, plus the full hours at its edges, plus the raw events
of the partial hours at the very edges (an index on ``ts``). So a month over ten million events reads a few
thousand rollup rows, and any window — local midnights in any zone, rolling minutes — is summed exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from operator import add
from typing import TypeVar

from guardd.core.batch import ENTRY, Health, Parsed, Row, add_to_hours, key_hash
from guardd.core.budgets import Dimensions
from guardd.errors import StoreError
from guardd.store.api import BatchResult, Checkpoint, Priced, Sum, UnpricedEvent
from guardd.store.batch_writes import Stored, advanced, correct, count_new, save_checkpoint
from guardd.store.dialect import SQLITE
from guardd.store.event_reads import EventReads
from guardd.store.setaside_log import log_set_aside
from guardd.store.shared import dims_of, plan, sig_columns, to_ms
from guardd.store.sqlite.db import Store

__all__ = ["BatchResult", "Checkpoint", "EventStore", "Sum", "dims_of", "plan", "to_ms"]

T = TypeVar("T")

BULK_CHECKPOINT_PAGES = 16384


class EventStore(EventReads):
    """Events, series, rollups, file checkpoints and quarantine of one :class:`Store` (the reads are shared with
    PostgreSQL: :class:`~guardd.store.event_reads.EventReads`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db, self.d = store, SQLITE
        self._known: set[int] = set()

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """Many batches in a row (``guardd ingest``): the WAL is checkpointed every 64 MiB instead of every 4 MiB
        (each checkpoint syncs the database), then once at the end."""
        await self.store.pragma(f"wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            await self.store.pragma("wal_autocheckpoint = 1000")
            await self.store.pragma("wal_checkpoint(PASSIVE)")

    # ---- series -------------------------------------------------------------------------------------------
    async def load_series(self) -> dict[int, Dimensions]:
        rows = await self.store.fetchall("SELECT id, sig FROM series")
        self._known = {sid for sid, _ in rows}
        return {sid: dims_of(sig) for sid, sig in rows}

    async def _add_series(self, series: dict[int, str]) -> None:
        missing = [(sid, sig) for sid, sig in series.items() if sid not in self._known]
        if not missing:
            return
        conn = self.store.conn
        await conn.executemany(
            "INSERT OR IGNORE INTO series(id, sig, model, key, provider, labels) VALUES (?, ?, ?, ?, ?, ?)",
            [(sid, sig, *sig_columns(sig)) for sid, sig in missing],
        )
        for chunk in _chunks(missing, 500):
            marks = ",".join("?" * len(chunk))
            rows = await self.store.fetchall(f"SELECT id, sig FROM series WHERE id IN ({marks})", [i for i, _ in chunk])
            stored: dict[int, str] = {sid: sig for sid, sig in rows}
            for sid, sig in chunk:
                if stored.get(sid) != sig:  # two signatures with one 64-bit hash: never merge their spend
                    raise StoreError(f"series id collision between {sig!r} and {stored.get(sid)!r}")
                self._known.add(sid)

    # ---- writing ------------------------------------------------------------------------------------------
    async def write_batch(self, parsed: Parsed, checkpoint: Checkpoint | None = None) -> BatchResult:
        """Store ``parsed`` (its rows, unpriced token counts, series and quarantined lines) and ``checkpoint`` in
        one transaction and return what happened. A key already stored is a duplicate; if its line changed (a
        later streaming snapshot, a re-priced line) the stored event and the rollups are corrected: last line
        wins."""
        result = BatchResult(quarantined=len(parsed.bad), duplicates=parsed.duplicates)
        try:
            await self._write(parsed, checkpoint, result)
        except BaseException:
            self._known.clear()  # series added by the rolled-back transaction are not stored after all
            raise
        log_set_aside(parsed.bad)  # committed: now each line set aside is said once
        return result

    async def _write(self, parsed: Parsed, checkpoint: Checkpoint | None, result: BatchResult) -> None:
        async with self.store.transaction("events") as conn:
            await self._add_series(parsed.series)
            async with conn.execute("SELECT coalesce(max(id), 0) FROM events") as cur:
                before = (await cur.fetchone() or (0,))[0]
            # Fast path: insert everything; the unique index on the key hash ignores what is already there.
            changes = conn.total_changes
            await conn.executemany(
                "INSERT OR IGNORE INTO events(h, k, ts, series, cost) VALUES (?, ?, ?, ?, ?)", parsed.insert_rows()
            )
            inserted = conn.total_changes - changes
            count_new(parsed, inserted, result)
            hours = parsed.hours
            kept: dict[str, int] = {}
            if inserted < parsed.count:
                kept = await self._correct(parsed.row_dict(), before, hours, result)
            await self._apply(hours)
            if parsed.health:
                await conn.executemany(
                    "INSERT OR REPLACE INTO health(k, ts, series, ok, status, latency_ms, error)"
                    " VALUES (?,?,?,?,?,?,?)",
                    _in_kept_series(parsed.health.values(), kept),
                )
            if parsed.tokens:
                await conn.executemany(
                    "INSERT OR REPLACE INTO unpriced(k, prompt_tokens, completion_tokens, reasoning_tokens,"
                    " cached_tokens) VALUES (?,?,?,?,?)",
                    parsed.tokens.values(),
                )
            if parsed.bad:
                now = datetime.now(UTC).isoformat()
                await conn.executemany(
                    "INSERT OR IGNORE INTO quarantine(source, path, offset, reason, excerpt, at) VALUES (?,?,?,?,?,?)",
                    [(q.source, q.path, q.offset, q.reason, q.excerpt, now) for q in parsed.bad],
                )
            if checkpoint is not None:
                await save_checkpoint(SQLITE, conn, advanced(checkpoint, result), None, datetime.now(UTC))

    async def _correct(
        self, rows: dict[str, Row], before: int, hours: dict[tuple[int, int], list[int]], result: BatchResult
    ) -> dict[str, int]:
        """Handle the rows the insert ignored because their key was already stored (:func:`correct`): fold the
        correction into ``hours`` (which counted every row as new) and ``result``; update the changed events' cost
        and time (never their series). Return the stored series of the keys whose new line named another."""
        conn = self.store.conn
        fix = correct(rows, await self._stored_before(rows, before, result))
        fix.settle(hours, result)
        if fix.updates:
            changed = [(u.ts, u.cost, u.ref) for u in fix.updates]
            await conn.executemany("UPDATE events SET ts=?, cost=? WHERE id=?", changed)
        if fix.seen:
            await conn.executemany("DELETE FROM health WHERE k = ?", [(k,) for k in fix.seen])  # the batch's follow
        if fix.priced:
            await conn.executemany("DELETE FROM unpriced WHERE k = ?", [(k,) for k in fix.priced])
        return fix.kept

    async def _stored_before(self, rows: dict[str, Row], before: int, result: BatchResult) -> list[Stored]:
        """Return the events stored before this batch (ids up to ``before``)
        under the keys of ``rows``. A row the insert ignored although its key is not stored lost its hash to
        another key (a 64-bit collision, in the store or in this batch): it is stored now under its second hash,
        or found there, and ``result.stored`` counts it."""
        conn = self.store.conn
        by_hash: dict[int, list[str]] = defaultdict(list)
        for k in rows:
            by_hash[key_hash(k)].append(k)
        found: list[Stored] = []
        collided: list[str] = []
        for chunk in _chunks(list(by_hash), 5000):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT h, k, id, ts, series, cost FROM events WHERE h IN ({marks})"
            async with conn.execute(sql, chunk) as cur:
                async for h, stored_k, eid, ts, series, cost in cur:
                    for k in by_hash[h]:
                        if k != stored_k:
                            collided.append(k)
                        elif eid <= before:
                            found.append(Stored(k, eid, ts, series, cost))
        for k in collided:
            second = key_hash(k, 1)
            async with conn.execute("SELECT k, id, ts, series, cost FROM events WHERE h = ?", (second,)) as cur:
                stored = await cur.fetchone()
            if stored is None:
                _, ts, series, cost = rows[k][:4]
                await conn.execute(
                    "INSERT INTO events(h, k, ts, series, cost) VALUES (?,?,?,?,?)", (second, k, ts, series, cost)
                )
                result.stored += 1
            elif stored[0] == k:
                found.append(Stored(k, *stored[1:]))
            else:  # two 64-bit collisions for one key: never merge two events' spend
                raise StoreError(f"event key hash collision between {k!r} and {stored[0]!r}")
        return found

    async def _apply(self, hours: dict[tuple[int, int], list[int]]) -> None:
        """Add per-(hour, series) deltas (:data:`~guardd.core.batch.ENTRY`) to the hour and UTC-day rollups."""
        upsert = (
            "INSERT INTO rollups(level, bucket, series, cost, events, unpriced, prompt_tokens, completion_tokens,"
            " reasoning_tokens, cached_tokens) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(level, bucket, series) DO UPDATE SET cost = cost + excluded.cost, "
            "events = events + excluded.events, unpriced = unpriced + excluded.unpriced, "
            "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
            "completion_tokens = completion_tokens + excluded.completion_tokens, "
            "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, "
            "cached_tokens = cached_tokens + excluded.cached_tokens"
        )
        await self.store.conn.executemany(upsert, _hour_rows(hours))
        await self.store.conn.executemany(upsert, _day_rows(hours))

    async def set_cost(self, priced: Sequence[Priced]) -> int:
        """Price unpriced events; rollups follow. Return how many were priced."""
        if not priced:
            return 0
        hours: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * ENTRY)
        count = 0
        async with self.store.transaction("events") as conn:
            for chunk in _chunks(list(priced), 500):
                marks = ",".join("?" * len(chunk))
                costs = {p.id: p.cost for p in chunk}
                sql = f"SELECT id, ts, series FROM events WHERE cost IS NULL AND id IN ({marks})"
                async with conn.execute(sql, list(costs)) as cur:
                    found = list(await cur.fetchall())
                for eid, ts, series in found:
                    add_to_hours(hours, ts, series, None, -1)
                    add_to_hours(hours, ts, series, costs[eid], +1)
                    count += 1
                await conn.executemany(
                    "UPDATE events SET cost = ? WHERE id = ? AND cost IS NULL",
                    [(costs[eid], eid) for eid, _, _ in found],
                )
                await conn.executemany(
                    "DELETE FROM unpriced WHERE k = (SELECT k FROM events WHERE id = ?)",
                    [(eid,) for eid, _, _ in found],
                )
            await self._apply(hours)
        return count

    # ---- reading ------------------------------------------------------------------------------------------
    async def unpriced_events(self, limit: int = 5000) -> list[UnpricedEvent]:
        """Return up to ``limit`` unpriced events with what pricing them needs."""
        waiting = await self.store.fetchall(
            "SELECT k, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens FROM unpriced LIMIT ?",
            (limit,),
        )
        tokens: dict[str, tuple[int, int, int, int]] = {k: (p, c, r, ca) for k, p, c, r, ca in waiting}
        hashes = [h for k in tokens for h in (key_hash(k), key_hash(k, 1))]  # the second: after a collision
        out: list[UnpricedEvent] = []
        for chunk in _chunks(hashes, 500):
            marks = ",".join("?" * len(chunk))
            rows = await self.store.fetchall(
                f"SELECT e.id, e.k, s.model FROM events e JOIN series s ON s.id = e.series"
                f" WHERE e.h IN ({marks}) AND e.cost IS NULL",
                chunk,
            )
            for eid, k, model in rows:
                if k in tokens:
                    p, c, r, ca = tokens[k]
                    out.append(UnpricedEvent(eid, model, p, c, r, ca, k[2:] if k.startswith("g:") else None))
        return out


def _hour_rows(hours: dict[tuple[int, int], list[int]]) -> Iterator[tuple[int, ...]]:
    # Generators, so that the store's thread (which iterates them) does this work, not the event loop's.
    for (hour, series), entry in hours.items():
        if any(entry):
            yield (0, hour, series, *entry)


def _day_rows(hours: dict[tuple[int, int], list[int]]) -> Iterator[tuple[int, ...]]:
    days: dict[tuple[int, int], list[int]] = {}
    for (hour, series), entry in hours.items():
        key = (hour // 24, series)
        day = days.get(key)
        days[key] = list(entry) if day is None else list(map(add, day, entry))
    for (day_bucket, series), entry in days.items():
        if any(entry):
            yield (1, day_bucket, series, *entry)


def _in_kept_series(facts: Iterable[Health], kept: dict[str, int]) -> Iterable[Health]:
    """The health ``facts`` of a batch, each under the series its event keeps (``kept``: the stored one, when the
    batch's line named another; :func:`~guardd.store.batch_writes.correct`)."""
    if not kept:
        return facts
    return [f if f[0] not in kept else (f[0], f[1], kept[f[0]], *f[3:]) for f in facts]


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

"""Writing a parsed batch into the shared store, fast (for :class:`~guardd.store.postgres.events.PgEventStore`).

One transaction per batch (:class:`Writer`), in this order:

1. The rows are one ``COPY`` text built beforehand (:mod:`~guardd.store.postgres.copytext`, in C where built) in
   the columns of ``events``, with each event's 64-bit key hash (:func:`event_hash`), sorted by it (the unique
   index is walked once, not all over).
   While the last batch met no stored key, the text goes straight into ``events`` in a savepoint (the fast path:
   no staging, no speculative insertion). A stored key ends only the savepoint (:meth:`Writer._insert`).
2. Otherwise the text goes into a temporary staging table (no WAL, private to the session), and ``INSERT …
   SELECT … ORDER BY h ON CONFLICT (h) DO NOTHING`` moves the new events into ``events``. When fewer rows went in
   than the batch holds, the rows that met a stored event are read back, locked (``FOR UPDATE``, in key-hash
   order: a row another batch is correcting is read as that batch committed it), and corrected as SQLite does
   (:func:`~guardd.store.batch_writes.correct`): a duplicate counts once; the event keeps the series it was
   stored in (who spent is fixed by the first arrival); a changed cost or time (a later streaming snapshot)
   replaces the stored one and its spend moves to its new hour (the last line wins); a key whose hash another
   key holds is stored under its second hash (``md5('1:' || key)``), a third is refused, never merged.
3. The hour and UTC-day rollups (spend, events, unpriced, and the token counts of schema 3), then the health facts
   (those of corrected keys deleted first), then the token counts of unpriced events (those priced now deleted
   first), each set-based in key order; quarantined lines and the file checkpoint are the instance's own. The
   hours after the latest stored hour are inserted plainly in a savepoint, after the upsert of those up to it
   (:func:`apply_rollups`: still key order); a row a concurrent batch inserted meanwhile rolls back only the
   savepoint, and those hours are upserted.

No writers' lock: batches of several hosts run side by side. Totals stay exact because each step is atomic per key
under READ COMMITTED: an insert that meets a key another open transaction inserted waits for it to end, then
skips the key (committed) or inserts it (rolled back); the read-back then sees the committed row, locked. When
two hosts store one id at once with different lines, the line of the transaction that commits last is stored and
counted ("the last line wins" means the last commit). Deadlocks: every transaction takes its locks in one global
order — series (by id), events (by key hash: inserts, then the locked read-back), rollups (by level, bucket,
series), health (by key), unpriced (by key), then rows of its own instance — so no cycle of waits can form; a
deadlock the order cannot rule out (a second key hash, taken after others) makes the database roll the batch back
whole, and it is run again (:func:`deadlock_retried`). Pricing (``set_cost``) keeps the same order.

Why the key hash: a ``bigint`` unique index is about half the size of one on the key text and compares without a
collation; the key text stays in the row to tell two keys with one hash apart. The hash is md5's first 8 bytes,
so that SQL can compute it too (``('x' || left(md5(k), 16))::bit(64)::bigint``, used by the migration).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from guardd.core.batch import Parsed, Row
from guardd.errors import StoreError
from guardd.store.api import BatchResult
from guardd.store.batch_writes import Correction, Stored, correct, count_new
from guardd.store.postgres.copytext import GLOBAL_KINDS as GLOBAL_KINDS
from guardd.store.postgres.copytext import copy_text as copy_text
from guardd.store.postgres.copytext import rollup_text
from guardd.store.postgres.copytext import stored_key as stored_key
from guardd.store.postgres.db import Conn, pico

log = logging.getLogger("guardd.store")
T = TypeVar("T")

DOLLARS = "0.000000000001"  # pico-dollars times this is exact numeric dollars

_COLUMNS = "h, k, ts, series, cost, instance"
"""The columns of :func:`copy_text`'s lines: those of ``events``, so that a batch of new keys goes straight in."""
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_events (h bigint NOT NULL, k text NOT NULL, ts bigint NOT NULL,"
    " series bigint NOT NULL, cost numeric, instance text NOT NULL) ON COMMIT DELETE ROWS"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM stage_events ORDER BY h ON CONFLICT (h) DO NOTHING"
_TOKENS = "prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens"
_STAGE_ROLLUPS = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_rollups (bucket bigint NOT NULL, series bigint NOT NULL,"
    " cost numeric NOT NULL, events bigint NOT NULL, unpriced bigint NOT NULL, prompt_tokens bigint NOT NULL,"
    " completion_tokens bigint NOT NULL, reasoning_tokens bigint NOT NULL, cached_tokens bigint NOT NULL)"
    " ON COMMIT DELETE ROWS"
)
_SUMS = f"sum(cost), sum(events), sum(unpriced), {', '.join(f'sum({t})' for t in _TOKENS.split(', '))}"
_ADD = (
    " ON CONFLICT (level, bucket, series) DO UPDATE SET cost = rollups.cost + excluded.cost,"
    " events = rollups.events + excluded.events, unpriced = rollups.unpriced + excluded.unpriced,"
    " prompt_tokens = rollups.prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = rollups.completion_tokens + excluded.completion_tokens,"
    " reasoning_tokens = rollups.reasoning_tokens + excluded.reasoning_tokens,"
    " cached_tokens = rollups.cached_tokens + excluded.cached_tokens"
)
_ROLLUP_COLUMNS = f"level, bucket, series, cost, events, unpriced, {_TOKENS}"
_HOURS = f"SELECT 0, bucket, series, cost * {DOLLARS}, events, unpriced, {_TOKENS} FROM stage_rollups"
# Hours, then days (the order of the rollups' key), each sorted on its own: one sort of the hour rows alone costs
# less than a sort of hours and days appended (≈ 1 µs a rollup row, bench/pg_statements.py). The hours are split
# at the latest stored hour (see apply_rollups): those up to it are upserted, those after it inserted.
_STORED_HOURS = f"INSERT INTO rollups ({_ROLLUP_COLUMNS}) {_HOURS} WHERE bucket <= %s ORDER BY bucket, series{_ADD}"
_NEW_HOURS = f"INSERT INTO rollups ({_ROLLUP_COLUMNS}) {_HOURS} WHERE bucket > %s ORDER BY bucket, series"
# The UTC day of an hour in integer arithmetic, floored for hours before 1970 too (SQL's / truncates toward zero):
# ≈ 0.25 µs a staged row less than floor(bucket / 24.0) in numeric.
_DAY = "bucket / 24 - (bucket % 24 < 0)::int"
_DAY_ROLLUPS = (
    f"INSERT INTO rollups ({_ROLLUP_COLUMNS})"
    f" SELECT 1, day, series, cost * {DOLLARS}, events, unpriced, {_TOKENS} FROM ("
    f" SELECT {_DAY} AS day, series, {_SUMS} FROM stage_rollups GROUP BY 1, 2"
    f" HAVING sum(events) <> 0 OR sum(cost) <> 0 OR sum(unpriced) <> 0 OR sum(prompt_tokens) <> 0"
    f" OR sum(completion_tokens) <> 0 OR sum(reasoning_tokens) <> 0 OR sum(cached_tokens) <> 0"
    f") AS days (day, series, cost, events, unpriced, {_TOKENS}) ORDER BY day, series{_ADD}"
)
_STAGE_HEALTH = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_health (k text NOT NULL, ts bigint NOT NULL, series bigint NOT NULL,"
    " ok integer NOT NULL, status integer, latency_ms float8, error text) ON COMMIT DELETE ROWS"
)
_HEALTH = (
    "INSERT INTO health (k, ts, series, ok, status, latency_ms, error)"
    " SELECT k, ts, series, ok <> 0, status, latency_ms, error FROM stage_health ORDER BY k"
    " ON CONFLICT (k) DO UPDATE SET ts = excluded.ts, series = excluded.series, ok = excluded.ok,"
    " status = excluded.status, latency_ms = excluded.latency_ms, error = excluded.error"
)
# Rows deleted by key are locked first, in key order, as the upserts after them lock theirs.
DELETE_LOCKED = "DELETE FROM {table} WHERE k IN (SELECT k FROM {table} WHERE k = ANY(%s) ORDER BY k FOR UPDATE)"
_STAGE_UNPRICED = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_unpriced (k text NOT NULL, prompt_tokens bigint NOT NULL,"
    " completion_tokens bigint NOT NULL, reasoning_tokens bigint NOT NULL, cached_tokens bigint NOT NULL)"
    " ON COMMIT DELETE ROWS"
)
_UNPRICED = (
    f"INSERT INTO unpriced (k, {_TOKENS}) SELECT k, {_TOKENS} FROM stage_unpriced ORDER BY k"
    " ON CONFLICT (k) DO UPDATE SET prompt_tokens = excluded.prompt_tokens,"
    " completion_tokens = excluded.completion_tokens, reasoning_tokens = excluded.reasoning_tokens,"
    " cached_tokens = excluded.cached_tokens"
)


DEADLOCK_TRIES = 5


async def deadlock_retried(once: Callable[[], Awaitable[T]], tries: int = DEADLOCK_TRIES) -> T:
    """Run the transaction ``once`` makes; when the database ends it as a deadlock victim (SQLSTATE 40P01: it
    rolled back whole, nothing was advanced), run it again, up to ``tries`` times in all. Every writer takes its
    locks in one global order, so a deadlock is not expected; this is the guard for an order this module cannot
    impose (a plan that visits rows otherwise, a second key hash taken after others)."""
    for attempt in range(1, tries + 1):
        try:
            return await once()
        except StoreError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.DeadlockDetected) or attempt == tries:
                raise
            log.warning("a batch met a deadlock in the shared store and is written again (try %d): %s", attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def event_hash(k: str, attempt: int = 0) -> int:
    """Return the signed 64-bit key hash of the stored event key ``k`` (``attempt`` 1: its second hash, taken
    when another key holds the first). SQL: ``('x' || left(md5(k), 16))::bit(64)::bigint``."""
    data = (f"{attempt}:{k}" if attempt else k).encode()
    return int.from_bytes(hashlib.md5(data, usedforsecurity=False).digest()[:8], "big", signed=True)


def hash_sql(column: str, attempt: int = 0) -> str:
    """The SQL expression of :func:`event_hash` over ``column``."""
    text = f"'{attempt}:' || {column}" if attempt else column
    return f"('x' || left(md5({text}), 16))::bit(64)::bigint"


@dataclass(slots=True)
class Writer:
    """Writes one batch on ``conn`` for ``instance``, inside a top-level transaction — never in a savepoint: the rows
    this transaction inserted are told from those stored before by their ``xmin``, which a subtransaction changes
    (:meth:`_insert`'s own savepoint is released or rolled back before any row is told apart)."""

    conn: Conn
    instance: str
    optimistic: bool = True
    """Try a plain insert first (see :meth:`_insert`)."""
    stored_met: bool = False
    """Whether the batch met a stored key (the caller's next :attr:`optimistic`)."""

    def key(self, k: str) -> str:
        return stored_key(k, self.instance)

    async def events(self, parsed: Parsed, payload: bytes, result: BatchResult) -> None:
        """Store the rows of ``payload`` (:func:`copy_text` of ``parsed``) in ``events``; correct the rows that met
        stored events; add the rollups, health facts and token counts. Fills ``result``. Every lock is taken in the
        one global order of the module's docstring (no writers' lock: concurrent batches run side by side)."""
        conn = self.conn
        inserted = await self._insert(payload, parsed.count)
        self.stored_met = self.stored_met or inserted < parsed.count
        count_new(parsed, inserted, result)
        hours = parsed.hours
        fix = None
        if inserted < parsed.count:  # corrected in a copy: a transaction run again starts from the parser's hours
            hours = {key: list(entry) for key, entry in hours.items()}
            fix = await self._correct(parsed, hours, result)
        await apply_rollups(conn, hours)
        if fix is not None and fix.seen:  # the batch's own health facts follow
            await conn.execute(DELETE_LOCKED.format(table="health"), (fix.seen,))
        if parsed.health:
            kept = {} if fix is None else fix.kept  # a fact goes under the series its event keeps
            key = self.key
            facts = ((key(k), ts, kept.get(key(k), sid), *rest) for k, ts, sid, *rest in parsed.health.values())
            await copy_rows(conn, _STAGE_HEALTH, "stage_health", facts, _HEALTH)
        if fix is not None and fix.priced:
            await conn.execute(DELETE_LOCKED.format(table="unpriced"), (fix.priced,))
        if parsed.tokens:
            tokens = ((self.key(k), *rest[:4]) for k, *rest in parsed.tokens.values())
            await copy_rows(conn, _STAGE_UNPRICED, "stage_unpriced", tokens, _UNPRICED)

    async def _insert(self, payload: bytes, rows: int) -> int:
        """Insert the ``rows`` of ``payload`` whose keys are new; return how many. When :attr:`optimistic`, the
        text goes by ``COPY`` straight into ``events`` first, in a savepoint: no staging table, no speculative
        insertion, rows written a page at a time (≈ 5 µs a row less in the backend than a staged ``INSERT … ON
        CONFLICT``), and a batch of new keys — the common case — is done. A stored key (one a concurrent batch
        committed meanwhile included) ends only the savepoint; the text then goes into the staging table and from
        there with ``ON CONFLICT DO NOTHING``, at the top level (whose ``xmin`` :meth:`_correct` tells)."""
        conn = self.conn
        if self.optimistic:
            try:
                async with conn.transaction(), conn.cursor().copy(f"COPY events ({_COLUMNS}) FROM STDIN") as copy:
                    await copy.write(payload)
                return rows
            except psycopg.errors.UniqueViolation:
                self.stored_met = True
        await conn.execute(_STAGE)
        async with conn.cursor().copy(f"COPY stage_events ({_COLUMNS}) FROM STDIN") as copy:
            await copy.write(payload)
        cur = await conn.execute(_INSERT)
        return max(cur.rowcount, 0)

    async def _correct(
        self, parsed: Parsed, hours: dict[tuple[int, int], list[int]], result: BatchResult
    ) -> Correction:
        """Handle the staged rows the insert skipped (see the module's step 3, :func:`correct`); ``hours`` counted
        every row as new. The stored rows are read locked (``FOR UPDATE``, in key-hash order): a concurrent batch
        correcting the same event waits for this one to commit and then reads what it stored, so that each
        correction takes out exactly the spend the rollups hold for the event."""
        conn = self.conn
        rows = {self.key(k): row for k, row in parsed.row_dict().items()}
        cur = await conn.execute(
            "SELECT b.k, e.h, e.k, e.ts, e.series, e.cost FROM stage_events b JOIN events e ON e.h = b.h"
            " WHERE e.xmin <> pg_current_xact_id()::xid OR e.k <> b.k ORDER BY e.h FOR UPDATE OF e"
        )
        found: list[Stored] = []
        for k, h, stored_k, ts, series, dollars in await cur.fetchall():
            if stored_k == k:
                found.append(Stored(k, h, ts, series, None if dollars is None else pico(dollars)))
            else:
                second = await self._second_hash(k, rows[k], result)
                if second is not None:
                    found.append(second)
        fix = correct(rows, sorted(found, key=lambda f: f.ref))
        fix.settle(hours, result)
        if fix.updates:
            columns = [[u.ref, u.ts, u.cost] for u in fix.updates]  # never the series: the first arrival's stays
            await conn.execute(
                f"UPDATE events e SET ts = u.ts, cost = u.cost * {DOLLARS} FROM unnest(%s::bigint[], %s::bigint[],"
                " %s::bigint[]) AS u(h, ts, cost) WHERE e.h = u.h",
                [list(column) for column in zip(*columns, strict=True)],
            )
        return fix

    async def _second_hash(self, k: str, row: Row, result: BatchResult) -> Stored | None:
        """``k`` lost its hash to another key: store it under its second hash (None: stored now, counted in
        ``result.stored``), or return the event already stored there as found. A third key is refused."""
        second = event_hash(k, 1)
        cur = await self.conn.execute("SELECT k, ts, series, cost FROM events WHERE h = %s", (second,))
        stored = await cur.fetchone()
        _, ts, series, cost = row[:4]
        if stored is None:
            await self.conn.execute(
                f"INSERT INTO events (h, k, ts, series, cost, instance) VALUES (%s, %s, %s, %s, %s::bigint * {DOLLARS},"
                " %s)",
                (second, k, ts, series, cost, self.instance),
            )
            result.stored += 1
            return None
        if stored[0] == k:
            return Stored(k, second, stored[1], stored[2], None if stored[3] is None else pico(stored[3]))
        raise StoreError(f"event key hash collision between {k!r} and {stored[0]!r}")  # never merge two events


async def copy_rows(conn: Conn, create: str, table: str, rows: Iterable[tuple[object, ...]], upsert: str) -> None:
    """COPY ``rows`` (psycopg formats and escapes them) into the staging ``table`` (made by ``create``), then run
    ``upsert`` from it."""
    await conn.execute(create)
    async with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)
    await conn.execute(upsert)


async def apply_rollups(conn: Conn, hours: dict[tuple[int, int], list[int]]) -> None:
    """Add per-(hour, series) deltas (:data:`~guardd.core.batch.ENTRY`) to the hour and UTC-day rollups: COPY
    the hour deltas into a staging table, then add them and their sums per UTC day, in key order (the same order
    in every writer, so that concurrent writers never deadlock).

    The hours after the latest hour stored (read first) have no rollup row yet unless a concurrent batch is adding
    one, so they are inserted plainly, in a savepoint, after an upsert of the hours up to it (key order still):
    ``ON CONFLICT`` probes the index for every row before inserting it speculatively, ≈ 2 µs a row more in the
    backend (bench/pg_statements.py). When a concurrent batch has inserted one of those rows (the insert waits
    for it to commit, then fails), the savepoint is rolled back and the same rows are upserted."""
    text = rollup_text(hours)
    if not text:
        return
    first, last = min(hours)[0], max(hours)[0]
    await conn.execute(_STAGE_ROLLUPS)
    async with conn.cursor().copy("COPY stage_rollups FROM STDIN") as copy:
        await copy.write(text)
    cur = await conn.execute("SELECT max(bucket) FROM rollups WHERE level = 0")
    row = await cur.fetchone()
    stored = first - 1 if row is None or row[0] is None else int(row[0])
    if first <= stored:
        await conn.execute(_STORED_HOURS, (stored,))
    if last > stored:
        try:
            async with conn.transaction():
                await conn.execute(_NEW_HOURS, (stored,))
        except psycopg.errors.UniqueViolation:
            await conn.execute(_NEW_HOURS + _ADD, (stored,))
    await conn.execute(_DAY_ROLLUPS)

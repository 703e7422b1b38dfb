"""Copy a SQLite state into a shared PostgreSQL store that holds no guardd data yet (contract §9,
``guardd store copy --to URL``).

Everything the SQLite schema holds is copied — events, series, rollups (spend and token sums), what unpriced events
need, health facts, checkpoints, quarantine, alert state, outbox, channel health, history, overrides, silences, the
switch document, markers, OpenRouter snapshots, keys, sources and prices — table by table as the two schemas say
(:mod:`guardd.store.copy_tables`). Events keep their keys in the form the shared store gives them
(:meth:`PgEventStore.key <guardd.store.postgres.events.PgEventStore.key>`: generation ids as they are, lines without
one under the copying instance) — the key that instance writes for the same line later, so a line read again stays
a duplicate; the copying instance becomes the owner of the checkpoints and goes on reading its ledgers where this
state stopped. Ids are kept (``silence remove ID`` names the same silence) and identity sequences continue after
them.

Safety:

- The whole copy is one PostgreSQL transaction: whatever fails, nothing is left half-copied. In it every guardd
  table is locked against writers and found empty first; a target that holds any guardd row is refused
  (:class:`TargetNotEmpty`) — checked before anything is created or migrated in it, and again under the locks.
- The SQLite side is read in one ``BEGIN IMMEDIATE`` transaction: a consistent snapshot of every table that no
  other writer (``guardd ingest``, ``silence add``) can change meanwhile (they wait, then fail as on any busy
  state); nothing is written to it. The caller holds the state's lock, so no daemon runs on it.
- Rows stream ``BATCH_ROWS`` at a time through ``COPY``: memory stays bounded at any state size.
- Before the commit, the target's row count and the exact sum of every money column of every table are compared
  with what was read; any difference rolls the copy back (:class:`CopyMismatch`).
- No error message carries the URL's password (:func:`redacted`, :func:`scrub`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from guardd.core.redact import store_error as scrub
from guardd.errors import StoreError
from guardd.store.copy_tables import (
    Progress,
    TablePlan,
    TableResult,
    copy_table,
    dollars,
    pg_tables,
    plans,
    sqlite_tables,
)
from guardd.store.postgres.db import Conn, PgStore, pico, redacted
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.ingest import event_hash
from guardd.store.sqlite.db import Store

__all__ = [
    "CopyMismatch",
    "CopyResult",
    "Progress",
    "TargetNotEmpty",
    "copy_sqlite_file",
    "copy_state",
    "dollars",
    "redacted",
]

BATCH_ROWS = 20_000
"""Rows read from SQLite at a time: a copy needs memory for about one batch, at any state size."""


class TargetNotEmpty(StoreError):
    """The target already holds guardd data: a copy would mix two states. Nothing was changed."""


class CopyMismatch(StoreError):
    """What the target would hold differs from what was read; the copy was rolled back."""


@dataclass(slots=True)
class CopyResult:
    """What a copy did: per table, the rows (and money, in pico-dollars) copied; the target (its URL redacted),
    the instance that owns the checkpoints now, and how long it took."""

    target: str
    instance: str
    tables: dict[str, TableResult]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


async def copy_sqlite_file(
    path: Path, url: str, instance: str, batch_rows: int = BATCH_ROWS, progress: Progress | None = None
) -> CopyResult:
    """Copy the SQLite state database at ``path`` into the empty shared store at ``url`` (see :func:`copy_state`).

    The caller holds the state's lock. Raise :class:`StoreError` when there is no database at ``path`` (none is
    created). No message of an error that leaves carries the URL's password.
    """
    if not path.is_file():
        raise StoreError(f"there is no state database at {path}: nothing to copy")
    try:
        async with Store.open(path) as state:
            return await copy_state(state, url, instance, batch_rows, progress)
    except StoreError as exc:
        raise type(exc)(scrub(str(exc), url)) from None


async def copy_state(
    state: Store, url: str, instance: str, batch_rows: int = BATCH_ROWS, progress: Progress | None = None
) -> CopyResult:
    """Copy every row of the SQLite ``state`` into the empty shared store at ``url``, for ``instance``.

    Raise :class:`TargetNotEmpty` (nothing changed) when the target holds guardd data; :class:`StoreError` when a
    table or column of the state has no place in the target or either side fails, and :class:`CopyMismatch` when
    the totals differ (both rolled back). ``progress(table, rows so far)`` is called after each batch.
    """
    started = time.monotonic()
    held = await _guardd_rows(url)
    if held:
        raise _not_empty(url, held)
    async with PgStore.open(url, instance, max_size=1) as pg:
        key = PgEventStore(pg).key

        def stored_hash(k: object) -> object:  # PostgreSQL keys events by the hash of the key it stores
            return event_hash(key(str(k)))

        async with state.transaction("copy") as lite, pg.transaction("copy") as conn:
            target = await pg_tables(conn)
            todo = plans(await sqlite_tables(lite), target, instance, key, {("events", "h"): ("k", stored_hash)})
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")  # indexes are built once, at the end
            names = sql.SQL(", ").join(map(sql.Identifier, target))
            await conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
            held = await _holding(conn, target)
            if held:
                raise _not_empty(url, held)
            results = {
                plan.name: await copy_table(
                    lite, conn, plan, batch_rows, progress, _second_hashes if plan.name == "events" else None
                )
                for plan in todo
            }
            await _verify(conn, todo, results)
    return CopyResult(redacted(url), instance, results, time.monotonic() - started)


async def _second_hashes(conn: Conn) -> None:
    """Store every event whose key hash another key holds under its second hash, as live ingest does
    (:class:`~guardd.store.postgres.ingest.Writer`). Which key keeps the hash does not matter to readers or later
    writers (a key is looked for under its first hash, then its second); the first in code-point order does, so a
    copy is reproducible. Raise StoreError when a second hash is held too — two events are never merged (live
    ingest refuses it the same)."""
    cur = await conn.execute(
        "SELECT ctid::text, h, k FROM (SELECT ctid, h, k,"
        ' row_number() OVER (PARTITION BY h ORDER BY k COLLATE "C") AS n'
        " FROM events WHERE h IN (SELECT h FROM events GROUP BY h HAVING count(*) > 1)) AS shared WHERE n > 1"
    )
    moved = sorted((str(k), event_hash(str(k), 1), row) for row, _h, k in await cur.fetchall())
    for _k, second, row in moved:
        await conn.execute("UPDATE events SET h = %s WHERE ctid = %s::tid", (second, row))
    for k, second, _row in moved:
        cur = await conn.execute("SELECT k FROM events WHERE h = %s AND k <> %s ORDER BY k LIMIT 1", (second, k))
        other = await cur.fetchone()
        if other is not None:
            raise StoreError(
                f"event key hash collision between {k!r} and {other[0]!r} (both first and second hash are held);"
                " two events are never merged, so nothing was copied"
            )


async def _verify(conn: Conn, todo: Iterable[TablePlan], results: dict[str, TableResult]) -> None:
    """Compare what the target now holds with what was read: rows per table, money per column, exactly."""
    problems: list[str] = []
    for plan in todo:
        read = results[plan.name]
        money = [c.target for c in plan.columns if c.money]
        parts = [sql.SQL("count(*)"), *(sql.SQL("sum({})").format(sql.Identifier(m)) for m in money)]
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), sql.Identifier(plan.name))
        )
        row = await cur.fetchone()
        if row is None or int(row[0]) != read.rows:
            problems.append(f"{plan.name}: {read.rows} rows read, {row and row[0]} in the target")
            continue
        for name, total in zip(money, row[1:], strict=True):
            if pico(total) != read.money[name]:
                problems.append(f"{plan.name}.{name}: {dollars(read.money[name])} read, {total} in the target")
    if problems:
        raise CopyMismatch("the copy does not match the state, so it was rolled back: " + "; ".join(problems))


async def _holding(conn: Conn, tables: Iterable[str]) -> dict[str, int]:
    """The guardd tables of the target that hold rows, with their row counts."""
    held: dict[str, int] = {}
    for table in tables:
        cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        row = await cur.fetchone()
        if row and row[0]:
            held[table] = int(row[0])
    return held


async def _guardd_rows(url: str) -> dict[str, int]:
    """Before anything is created or migrated: the target's guardd tables that hold rows (none when it has no
    guardd schema yet)."""
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=10, autocommit=True) as conn:
            cur = await conn.execute("SELECT to_regclass('guardd_schema') IS NOT NULL")
            row = await cur.fetchone()
            if not (row and row[0]):
                return {}
            return await _holding(conn, await pg_tables(conn))
    except psycopg.Error as exc:
        said = scrub(str(exc).strip(), url)
        raise StoreError(f"cannot connect to the shared store {redacted(url)}: {said}") from None


def _not_empty(url: str, held: dict[str, int]) -> TargetNotEmpty:
    what = ", ".join(f"{table} ({rows} row{'s' if rows != 1 else ''})" for table, rows in sorted(held.items()))
    return TargetNotEmpty(
        f"the shared store {redacted(url)} already holds guardd data ({what}); store copy copies into a store "
        "that holds none yet, so nothing was changed"
    )

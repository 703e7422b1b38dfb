"""How a SQLite state's tables go into the shared store's (for :mod:`guardd.store.copy`): the plan, derived from the
two schemas, and the streaming of one table through ``COPY``.

The plan is not a third list of columns: every SQLite table goes to the PostgreSQL table of the same name, column
by column (same names, except where PostgreSQL reserves the SQLite name: ``window`` → ``win``, ``offset`` →
``byte_offset``). Values change form only where the backends' schemas differ (:mod:`guardd.store.postgres.schema`):

- a ``numeric`` column holds exact dollars where SQLite holds integer pico-dollars (:func:`dollars`);
- a ``boolean`` column holds what SQLite keeps as 0/1;
- an ``instance`` column that SQLite lacks (events, checkpoints, quarantine) holds the copying instance;
- an event key (``k``, wherever a table refers to an event by it) becomes the key the shared store gives it
  (:meth:`PgEventStore.key <guardd.store.postgres.events.PgEventStore.key>`);
- SQLite's ``events.h`` (the hash its own unique index uses) is not copied: the target computes its own hash of
  the key it stores (``computed`` in :func:`plans`); two keys with one hash are resolved when its unique index is
  built (``resolve`` in :func:`copy_table`).

A table or column of the state that has no place in the target, or a target column that must be filled and has no
source, is a :class:`StoreError`: nothing is left behind silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import psycopg
from psycopg import sql

from guardd.errors import StoreError
from guardd.store.postgres.db import Conn

RENAMED = {"window": "win", "offset": "byte_offset"}
"""SQLite column → PostgreSQL column, where PostgreSQL reserves the SQLite name."""

SQLITE_ONLY = {("events", "h")}
"""SQLite columns never copied, even to a column of the same name: the key hash of SQLite's own unique index (a
target that keys events by a hash computes its own, from the stored key: ``computed`` in :func:`plans`)."""

OPTIONAL = {("events", "id")}
"""SQLite columns copied where the target has a place for them (a target may key events otherwise than by id)."""

KEY_COLUMN = "k"
"""An event key, in every table that refers to an event by it (events, unpriced, health)."""

SCHEMA_TABLE = "guardd_schema"
"""The target's schema version: the one guardd table that is neither copied nor counted as data."""

Convert = Callable[[Any], Any]
Progress = Callable[[str, int], None]
Resolve = Callable[[Conn], Awaitable[None]]
"""Rewrites a filled table whose unique index found two rows with one value (see :func:`copy_table`)."""


def dollars(value: int | None) -> str | None:
    """Return the exact decimal text of ``value`` pico-dollars (what a ``numeric`` column takes)."""
    if value is None:
        return None
    digits = str(abs(value)).rjust(13, "0")
    return f"{'-' if value < 0 else ''}{digits[:-12]}.{digits[-12:]}"


def _boolean(value: Any) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a copied table: where its value comes from and how it changes form."""

    target: str
    source: str | None  # None: every row holds ``constant`` (the copying instance)
    convert: Convert | None = None
    money: bool = False
    constant: Any = None


@dataclass(frozen=True, slots=True)
class TablePlan:
    """One table to copy; ``identity`` names a copied identity column, whose sequence must continue after it."""

    name: str
    columns: tuple[Column, ...]
    identity: str | None = None
    without_rowid: bool = False


@dataclass(slots=True)
class TableResult:
    """What one table's copy read and wrote: its rows and the pico-dollar sum of each money column."""

    rows: int = 0
    money: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PgColumn:
    name: str
    type: str
    required: bool  # NOT NULL, without a default, not an identity
    identity: bool


async def sqlite_tables(lite: aiosqlite.Connection) -> dict[str, tuple[list[str], bool]]:
    """Every table of the state: its columns, and whether it is a ``WITHOUT ROWID`` table."""
    async with lite.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ) as cur:
        tables = [(row[0], "WITHOUT ROWID" in (row[1] or "").upper()) for row in await cur.fetchall()]
    out: dict[str, tuple[list[str], bool]] = {}
    for name, without_rowid in tables:
        async with lite.execute(f'PRAGMA table_info("{name}")') as cur:
            out[name] = ([row[1] for row in await cur.fetchall()], without_rowid)
    return out


async def pg_tables(conn: Conn) -> dict[str, list[PgColumn]]:
    """Every guardd table of the target (in the first schema of the search path), but its schema version."""
    cur = await conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable = 'NO' AND column_default IS NULL"
        " AND is_identity = 'NO', is_identity = 'YES' FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    out: dict[str, list[PgColumn]] = {}
    for table, column, kind, required, identity in await cur.fetchall():
        if table != SCHEMA_TABLE:
            out.setdefault(table, []).append(PgColumn(column, kind, bool(required), bool(identity)))
    return out


def plans(
    source: dict[str, tuple[list[str], bool]],
    target: dict[str, list[PgColumn]],
    instance: str,
    key: Convert,
    computed: dict[tuple[str, str], tuple[str, Convert]] | None = None,
) -> list[TablePlan]:
    """Match the state's tables and columns with the target's; refuse what has no place (StoreError).

    ``computed`` fills target columns the state has no column for: ``(table, column) -> (source column, function
    of its value)``.
    """
    missing = [t for t in source if t not in target]
    if missing:
        raise _no_place(f"table for {', '.join(missing)}")
    out: list[TablePlan] = []
    for table, (names, without_rowid) in source.items():
        by_name = {c.name: c for c in target[table]}
        columns: list[Column] = []
        for name in names:
            if (table, name) in SQLITE_ONLY:
                continue
            col = by_name.pop(RENAMED.get(name, name), None)
            if col is None and (table, name) in OPTIONAL:
                continue
            if col is None:
                raise _no_place(f"column for {table}.{name}")
            convert = {"numeric": dollars, "boolean": _boolean}.get(col.type)
            columns.append(Column(col.name, name, key if name == KEY_COLUMN else convert, col.type == "numeric"))
        for col in by_name.values():  # the target's columns that the state has no column for
            if (table, col.name) in (computed or {}):
                name, function = (computed or {})[(table, col.name)]
                columns.append(Column(col.name, name, function))
            elif col.name == "instance":
                columns.append(Column("instance", None, constant=instance))
            elif col.required:
                raise StoreError(f"the shared store's {table}.{col.name} has no value in the SQLite state (a bug)")
        copied = {c.target for c in columns}
        identity = next((c.name for c in target[table] if c.identity and c.name in copied), None)
        out.append(TablePlan(table, tuple(columns), identity, without_rowid))
    return out


def _no_place(what: str) -> StoreError:
    return StoreError(
        f"the shared store has no {what}: this guardd's PostgreSQL schema cannot hold everything the SQLite state "
        "holds (a bug in guardd); nothing was copied"
    )


async def copy_table(
    lite: aiosqlite.Connection,
    conn: Conn,
    plan: TablePlan,
    batch_rows: int,
    progress: Progress | None,
    resolve: Resolve | None = None,
) -> TableResult:
    """Stream one table from SQLite into PostgreSQL through ``COPY``, ``batch_rows`` at a time, its indexes built
    after it is filled; count its rows and sum its money (exactly, from the rows as read).

    When a unique index cannot be built (two rows with one value: for events, two keys with one hash),
    ``resolve(conn)`` rewrites the rows and the indexes are built once more; without ``resolve``, or when they
    still cannot be, StoreError (the copy's transaction then rolls back whole)."""
    result = TableResult(money={c.target: 0 for c in plan.columns if c.money})
    sources = list(dict.fromkeys(c.source for c in plan.columns if c.source is not None))
    columns = ", ".join(f'"{name}"' for name in sources)
    query = f'SELECT {columns} FROM "{plan.name}"'
    if not plan.without_rowid:
        query += " ORDER BY rowid"
    make = _row_maker(plan, sources)
    money = [(c.target, sources.index(c.source)) for c in plan.columns if c.money and c.source is not None]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(plan.name), sql.SQL(", ").join(sql.Identifier(c.target) for c in plan.columns)
    )
    rebuild = await _drop_indexes(conn, plan.name)
    async with lite.execute(query) as cur, conn.cursor().copy(statement) as copy:
        while rows := list(await cur.fetchmany(batch_rows)):
            for target, index in money:
                result.money[target] += sum(r[index] or 0 for r in rows)
            for row in rows:
                await copy.write_row(make(row))
            result.rows += len(rows)
            if progress is not None:
                progress(plan.name, result.rows)
    await _rebuild(conn, plan.name, rebuild, resolve)
    if plan.identity is not None and result.rows:
        await conn.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), (SELECT max({}) FROM {}))").format(
                sql.Literal(plan.name),
                sql.Literal(plan.identity),
                sql.Identifier(plan.identity),
                sql.Identifier(plan.name),
            )
        )
    return result


def _row_maker(plan: TablePlan, sources: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """Return the function that turns a SQLite row into the target's row.

    It is compiled for the plan — ``lambda row: (row[0], c1(row[1]), …, k5)`` — because it runs once per row of
    millions: a loop over the columns costs twice as much. Only integer indexes and names of this namespace go into
    its text."""
    namespace: dict[str, Any] = {}
    parts: list[str] = []
    for i, column in enumerate(plan.columns):
        if column.source is None:
            namespace[f"k{i}"] = column.constant
            parts.append(f"k{i}")
            continue
        value = f"row[{sources.index(column.source)}]"
        if column.convert is not None:
            namespace[f"c{i}"] = column.convert
            value = f"c{i}({value})"
        parts.append(value)
    function: Callable[[Any], tuple[Any, ...]] = eval(f"lambda row: ({', '.join(parts)},)", namespace)
    return function


async def _rebuild(conn: Conn, table: str, statements: list[sql.Composed], resolve: Resolve | None) -> None:
    """Run the index ``statements`` of ``table`` in a savepoint (a failed build leaves the copy's transaction
    usable); on a duplicate value, ``resolve`` and build again (see :func:`copy_table`)."""
    for attempt in (0, 1):
        try:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
            return
        except psycopg.errors.UniqueViolation as exc:
            if resolve is None or attempt:
                detail = exc.diag.message_detail or str(exc).strip()
                raise StoreError(f"the shared store's {table} cannot hold the copied rows: {detail}") from None
        await resolve(conn)


async def _drop_indexes(conn: Conn, table: str) -> list[sql.Composed]:
    """Drop the indexes of ``table`` (unique and primary-key constraints included) and return the statements
    that build them again, as the catalog defines them. Filling a table without its indexes and building them
    afterwards is about three times faster for events (a random key's index takes each row at a random place);
    it all happens in the copy's transaction, so a failure anywhere leaves the indexes as they were."""
    cur = await conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
        " WHERE i.indrelid = %s::regclass ORDER BY 1",
        (sql.Identifier(table).as_string(conn),),
    )
    rebuild: list[sql.Composed] = []
    for index, index_def, constraint, constraint_def in await cur.fetchall():
        if constraint is not None:
            names = sql.Identifier(table), sql.Identifier(constraint)
            await conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(*names))
            rebuild.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(*names, sql.SQL(constraint_def)))
        else:
            await conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index)))
            rebuild.append(sql.Composed([sql.SQL(index_def)]))
    return rebuild

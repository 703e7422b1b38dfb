"""What the two SQL dialects differ in, for the store code written once for both backends.

The queries of :mod:`guardd.store.remote` and :mod:`guardd.store.stats` are written once, in the
SQL SQLite and PostgreSQL share (``INSERT … ON CONFLICT … DO UPDATE``, ``excluded.``, ``CASE``, ``coalesce``), with
``?`` placeholders. A :class:`Dialect` supplies the rest: the placeholder style, and how money, times, flags and
JSON are stored (SQLite: integer pico-dollars, RFC 3339 text, 0/1, JSON text; PostgreSQL: exact ``numeric``
dollars, ``timestamptz``, ``boolean``, ``jsonb``). Each backend has one dialect object; nothing here imports a
database driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol


class Db(Protocol):
    """The part of an open database the shared store code uses (both :class:`~guardd.store.sqlite.db.Store` and
    :class:`~guardd.store.postgres.db.PgStore` have it): reads of committed rows, and one write transaction."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def transaction(self, kind: str = "state") -> AbstractAsyncContextManager[Any]:
        """A write transaction; ``kind`` names what it writes, for the store's health (a kind that fails is
        failing until a write of that kind commits: :class:`~guardd.store.health.WriteHealth`)."""
        ...


class Dialect:
    """SQLite's way (the base); :class:`guardd.store.postgres.dialect.PgDialect` overrides what PostgreSQL does
    otherwise."""

    name = "sqlite"
    offset_column = "offset"
    """The byte offset column of ``files`` and ``quarantine`` (``offset`` is a reserved word in PostgreSQL)."""
    window_column = "window"
    """``alert_state``'s window column (``window`` is a reserved word in PostgreSQL)."""
    for_update = ""
    """Appended to a ``SELECT`` inside a transaction that will write what it read: SQLite's write transactions are
    exclusive already (``BEGIN IMMEDIATE``)."""
    skip_locked = ""
    """Appended to the ``SELECT`` of rows to claim: SQLite's write transactions are exclusive already."""
    switch_turns = ""
    """A statement run first in a transaction that decides the switch document, so that deciders take turns even
    before its row exists (``FOR UPDATE`` locks no row that is not there yet): none in SQLite, whose write
    transactions are exclusive already."""

    def sql(self, text: str) -> str:
        """The statement ``text`` (written with ``?`` placeholders) in this dialect."""
        return text

    def money(self, pico: int | None) -> Any:
        """A parameter for a money column, from integer pico-dollars."""
        return pico

    def pico(self, value: Any) -> int | None:
        """Integer pico-dollars from a money column (None stays None)."""
        return None if value is None else int(value)

    def time(self, moment: datetime | None) -> Any:
        """A parameter for a time column."""
        return None if moment is None else moment.astimezone(UTC).isoformat()

    def when(self, value: Any) -> datetime | None:
        """An aware datetime from a time column."""
        return None if value is None else datetime.fromisoformat(value)

    def flag(self, value: bool) -> Any:
        """A parameter for a boolean column."""
        return int(value)

    def json(self, value: dict[str, Any]) -> Any:
        """A parameter for a JSON column."""
        import json

        return json.dumps(value)

    def unjson(self, value: Any) -> dict[str, Any]:
        """A dict from a JSON column."""
        import json

        return dict(json.loads(value)) if isinstance(value, str) else dict(value)

    async def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement inside a transaction's connection; return its cursor."""
        return await conn.execute(self.sql(sql), params)

    async def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows`` inside a transaction's connection."""
        if rows:
            await conn.executemany(self.sql(sql), rows)


SQLITE = Dialect()
"""The SQLite dialect (the base)."""

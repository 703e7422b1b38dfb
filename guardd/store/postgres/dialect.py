"""PostgreSQL's side of :class:`guardd.store.dialect.Dialect`: ``%s`` placeholders, exact ``numeric`` dollars,
``timestamptz``, ``boolean`` and ``jsonb``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from guardd.store.dialect import Dialect
from guardd.store.postgres.db import SWITCH_LOCK, pico


class PgDialect(Dialect):
    name = "postgresql"
    offset_column = "byte_offset"
    window_column = "win"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    switch_turns = f"SELECT pg_advisory_xact_lock({SWITCH_LOCK})"

    def sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def money(self, pico: int | None) -> Any:
        return None if pico is None else Decimal(f"{pico}e-12")  # built from text: exact at any size

    def pico(self, value: Any) -> int | None:
        return None if value is None else pico(value)

    def time(self, moment: datetime | None) -> Any:
        return moment

    def when(self, value: Any) -> datetime | None:
        return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(value)

    def flag(self, value: bool) -> Any:
        return bool(value)

    def json(self, value: dict[str, Any]) -> Any:
        return Jsonb(value)

    async def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await conn.cursor().executemany(self.sql(sql), rows)


PG = PgDialect()

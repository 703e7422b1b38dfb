"""An open shared store: a psycopg connection pool (one plain connection for a command that only reads), forward
migrations, and errors translated at the boundary.

A direct connection (or a pooler in session mode) is required (contract §9): transaction-scoped advisory locks
serialise migrations and the switch's deciders, and LISTEN needs a session of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from decimal import Decimal
from typing import Any, Protocol

import psycopg
from psycopg.rows import TupleRow

from guardd.core.redact import store_error, store_url
from guardd.errors import SchemaTooNew, StoreError
from guardd.store.health import WriteHealth
from guardd.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION

PICO = 10**12
MIGRATION_LOCK = 0x67756172_64640001  # pg_advisory_xact_lock keys ("guardd" + n): one migrator at a time
# 0x67756172_64640002 was the writers' lock of events (schema ≤ 7 code); writers now order their row locks instead
SWITCH_LOCK = 0x67756172_64640003  # one decider of the switch document at a time, even before its row exists

Conn = psycopg.AsyncConnection[TupleRow]


class Connections(Protocol):
    """Where a store takes its connections from: a pool, or :class:`OneConnection`."""

    def connection(self) -> AbstractAsyncContextManager[Conn]: ...

    async def close(self) -> None: ...


class OneConnection:
    """A single connection for a command that only reads (``status``, ``report``…): no pool to fill and no
    background tasks. Concurrent tasks share it; psycopg runs their statements one at a time."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        yield self.conn

    async def close(self) -> None:
        await self.conn.close()


def redacted(url: str) -> str:
    """``url`` for messages and logs, without any piece of its password (:func:`guardd.core.redact.store_url`)."""
    return store_url(url)


def pico(amount: Decimal | None) -> int:
    """Return exact integer pico-dollars for a ``numeric`` dollar amount (no rounding: exactness is checked)."""
    if amount is None:
        return 0
    if not amount.is_finite():
        raise StoreError(f"not a finite amount of money in the store: {amount}")
    numerator, denominator = amount.as_integer_ratio()  # exact, in lowest terms
    value, rest = divmod(numerator * PICO, denominator)
    if rest:
        raise StoreError(f"an amount finer than a pico-dollar in the store: {amount}")
    return value


class PgStore:
    """A pool of connections to one shared PostgreSQL database, for the instance named ``instance``.

    Safe for concurrent tasks: each :meth:`transaction` or read takes its own pooled connection. No psycopg
    exception leaves this class: each becomes :class:`StoreError` (the URL's password never in its text).
    """

    def __init__(self, pool: Connections, url: str, instance: str) -> None:
        self.pool = pool
        self.url = url
        self.instance = instance
        self.writes = WriteHealth()
        """Which kinds of write fail (store health for ``status``): :attr:`write_error`."""

    @property
    def write_error(self) -> StoreError | None:
        """The error of a kind of write whose last transaction failed, None while every kind's last one
        committed (:class:`~guardd.store.health.WriteHealth`)."""
        return self.writes.error

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, instance: str, max_size: int = 4, timeout: float = 10.0, single: bool = False
    ) -> AsyncIterator[PgStore]:
        """Connect to the existing database at ``url`` (creating and migrating guardd's tables) as ``instance``;
        ``single``: over one connection (:class:`OneConnection`), for a command that only reads.

        Raise StoreError when it cannot be reached within ``timeout`` seconds (with the server's reason),
        SchemaTooNew when a newer guardd wrote it.
        """
        try:
            # One plain connection first: its failure says why (refused, no such database, authentication),
            # where the pool would only say that it timed out.
            probe = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(timeout)), autocommit=single)
            if not single:
                await probe.close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the shared store {redacted(url)}: {_said(exc, url)}") from None
        if single:
            one = OneConnection(probe)
            try:
                store = cls(one, url, instance)
                await store._migrate()
                yield store
            finally:
                await one.close()
            return
        from psycopg_pool import AsyncConnectionPool  # here: a command that only reads never imports the pool

        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True}, timeout=30
        )
        try:
            await pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:  # PoolTimeout is a psycopg.OperationalError
            await pool.close()
            raise StoreError(f"cannot connect to the shared store {redacted(url)}: {_said(exc, url)}") from None
        try:
            store = cls(pool, url, instance)
            await store._migrate()
            yield store
        finally:
            await pool.close()

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:  # a pool's PoolTimeout too (an OperationalError)
            raise StoreError(f"cannot {doing} the shared store {redacted(self.url)}: {_said(exc, self.url)}") from exc

    async def _migrate(self) -> None:
        """Bring guardd's tables to :data:`SCHEMA_VERSION`. A schema already there is only read (no lock, no DDL:
        every command opens the store, and a role that may only read can run the reading ones); otherwise one
        migrator at a time (an advisory lock) applies what is missing in one transaction."""
        with self._translated("migrate"):
            async with self.pool.connection() as conn:
                if self._current(await self._version(conn)):
                    return
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    await conn.execute("CREATE TABLE IF NOT EXISTS guardd_schema (version integer NOT NULL)")
                    version = await self._version(conn)
                    self._current(version)
                    for target in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in _statements(MIGRATIONS[target]):
                            await conn.execute(statement)
                        await conn.execute("INSERT INTO guardd_schema(version) VALUES (%s)", (target,))

    @staticmethod
    async def _version(conn: Conn) -> int:
        """The schema version of guardd's tables in the database (0: none yet)."""
        cur = await conn.execute("SELECT to_regclass('guardd_schema') IS NOT NULL")
        exists = await cur.fetchone()
        if not exists or not exists[0]:
            return 0
        row = await (await conn.execute("SELECT max(version) FROM guardd_schema")).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _current(self, version: int) -> bool:
        """Whether ``version`` is this guardd's; SchemaTooNew when a newer guardd wrote the tables."""
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{redacted(self.url)} has guardd schema version {version}, newer than this guardd "
                f"understands ({SCHEMA_VERSION}); upgrade guardd on this host"
            )
        return version == SCHEMA_VERSION

    @asynccontextmanager
    async def transaction(self, kind: str = "state") -> AsyncIterator[Conn]:
        """Run one transaction of ``kind`` on a pooled connection; commit at the end, roll back on any error.

        psycopg errors (inside or at commit) leave as :class:`StoreError`; the outcome is kept per ``kind`` in
        :attr:`writes`.
        """
        try:
            async with self.pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:  # a pool's PoolTimeout too (an OperationalError)
            said = f"cannot write the shared store {redacted(self.url)} ({kind}): {_said(exc, self.url)}"
            raise self.writes.failed(kind, StoreError(said)) from exc
        self.writes.committed(kind)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[TupleRow]:
        with self._translated("read"):
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchall()

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> TupleRow | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


def _said(exc: BaseException, url: str) -> str:
    """What the driver said, without any piece of the URL's secrets (:func:`guardd.core.redact.store_error`)."""
    return store_error(str(exc).strip(), url)


def _statements(script: str) -> list[str]:
    """Split a migration into statements at ``;``, except inside a ``$$ … $$`` body (a function's)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    parts = "\n".join(lines).split("$$")
    statements, current = [], ""
    for index, part in enumerate(parts):
        if index % 2:  # inside $$ … $$: kept whole
            current += f"$${part}$$"
            continue
        first, *rest = part.split(";")
        if rest:
            statements.append(current + first)
            *done, current = rest
            statements += done
        else:
            current += first
    statements.append(current)
    return [s.strip() for s in statements if s.strip()]

"""The state database: one SQLite file in ``state_dir`` (``guardd.db``), opened through aiosqlite.

WAL mode, ``synchronous=NORMAL`` and a 5 s ``busy_timeout`` let the CLI read (and briefly write: overrides,
silences, backfills) while the daemon writes, without "database is locked". Writes are batched in
``BEGIN IMMEDIATE … COMMIT`` transactions. The schema is versioned by ``PRAGMA user_version`` and migrated
forward on open; a database from a newer guardd is refused with :class:`SchemaTooNew` rather than misread.

Money columns hold integer pico-dollars (see :mod:`guardd.core.money`); times are Unix milliseconds (event data)
or RFC 3339 UTC text (state rows, for people reading the database by hand).

The schema and its migrations are :mod:`guardd.store.sqlite.schema`; this module opens the database, migrates it
and serialises its one connection (:class:`Store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiosqlite

from guardd.errors import SchemaTooNew, StoreError, not_writable
from guardd.store.health import WriteHealth
from guardd.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, statements

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store"]


class Store:
    """An open state database. Use ``async with Store.open(path) as store``; every path closes it.

    One connection, shared by every task of a process, made safe by serialising it: :meth:`transaction` holds a
    lock for its whole length and refuses to nest, and :meth:`fetchall`/:meth:`fetchone` wait for another task's
    transaction to end, so no read sees uncommitted rows. No sqlite3 exception leaves this class: each becomes a
    :class:`StoreError`. Writes outside :meth:`transaction` are not allowed (``conn`` is for use inside one).
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self.writes = WriteHealth()
        """Which kinds of write fail (store health for ``status``): :attr:`write_error`."""

    @property
    def write_error(self) -> StoreError | None:
        """The error of a kind of write whose last transaction failed, None while every kind's last one
        committed (:class:`~guardd.store.health.WriteHealth`)."""
        return self.writes.error

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, readonly: bool = False) -> AsyncIterator[Store]:
        """Open the database at ``path``; every path out of the block closes it.

        Writable (the default): create the folder and the database and migrate the schema; a folder or file this
        process may not write is named as such (StoreError). ``readonly``: open for reading only, so reading
        commands work on a state they may not write (a read-only mount, another user's state); a database that
        does not exist yet, or needs a migration, is then created or migrated if the folder allows it.
        """
        if readonly and not _usable_read_only(path):
            readonly = False
        if not readonly:
            _check_writable(path)
        conn = await _connect(path, readonly)
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = OFF")
            await conn.execute("PRAGMA cache_size = -32768")  # 32 MiB: keeps the dedupe index hot
            store = cls(conn, path)
            await store._migrate(readonly)
            yield store
        except sqlite3.Error as exc:
            raise StoreError(f"state database {path}: {exc}") from exc
        finally:
            await conn.close()

    async def _migrate(self, readonly: bool) -> None:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}, newer than this guardd understands "
                f"({SCHEMA_VERSION}); upgrade guardd or point state_dir elsewhere"
            )
        if version == SCHEMA_VERSION:
            return
        if readonly:
            raise StoreError(f"{self.path} needs a schema migration; run any writing command (guardd run) first")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                migration = MIGRATIONS[target]
                if isinstance(migration, str):
                    # Statements one by one: executescript() would COMMIT first and break the transaction.
                    for statement in statements(migration):
                        await self.conn.execute(statement)
                else:
                    await migration(self.conn)
                await self.conn.execute(f"PRAGMA user_version = {target}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self._rollback()  # an interrupt may land where no transaction is open: nothing to undo then
                raise

    @asynccontextmanager
    async def transaction(self, kind: str = "state") -> AsyncIterator[aiosqlite.Connection]:
        """Run a write transaction (``BEGIN IMMEDIATE … COMMIT``) of ``kind``; roll back on any error.

        Transactions are serialised: a task waits for another task's transaction to end (FIFO), and one that is
        already inside a transaction gets :class:`StoreError` instead of nesting. Every sqlite3 error raised
        inside, or by the commit, leaves as :class:`StoreError`; the outcome is kept per ``kind`` in :attr:`writes`.
        """
        if self._owner is not None and self._owner is asyncio.current_task():
            raise StoreError("a state database transaction cannot nest inside another (a bug in guardd)")
        async with self._lock:
            self._owner = asyncio.current_task()
            try:
                try:
                    await self.conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise self._write_failed(kind, exc) from exc
                try:
                    yield self.conn
                except BaseException as exc:
                    await self._rollback()
                    if isinstance(exc, sqlite3.Error):
                        raise self._write_failed(kind, exc) from exc
                    raise
                try:
                    await self.conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    await self._rollback()
                    raise self._write_failed(kind, exc) from exc
                self.writes.committed(kind)
            finally:
                self._owner = None

    def _write_failed(self, kind: str, exc: sqlite3.Error) -> StoreError:
        return self.writes.failed(kind, StoreError(f"cannot write the state database {self.path} ({kind}): {exc}"))

    async def _rollback(self) -> None:
        # SQLite rolls some failures back by itself (a full disk, for one): then there is nothing left to undo.
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("ROLLBACK")

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        """Wait for another task's open transaction to end, so that a read sees committed rows only."""
        if self._owner is not None and self._owner is asyncio.current_task():
            yield  # inside our own transaction: our own writes are what we mean to read
            return
        async with self._lock:
            yield

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        async with self._reading():
            try:
                async with self.conn.execute(sql, params) as cur:
                    return list(await cur.fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the state database {self.path}: {exc}") from exc

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        async with self._reading():
            try:
                async with self.conn.execute(sql, params) as cur:
                    return await cur.fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the state database {self.path}: {exc}") from exc

    async def pragma(self, statement: str) -> None:
        """Run a ``PRAGMA`` outside any transaction (tuning a bulk load)."""
        async with self._reading():
            try:
                await self.conn.execute(f"PRAGMA {statement}")
            except sqlite3.Error as exc:
                raise StoreError(f"state database {self.path}: {exc}") from exc


def _usable_read_only(path: Path) -> bool:
    """Whether ``path`` holds a database at this schema version, to be read without writing anything."""
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0]) >= SCHEMA_VERSION
    except sqlite3.Error:
        return path.exists() and not os.access(path.parent, os.W_OK)  # let the read-only open say what is wrong


def _check_writable(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the state folder {folder}: {exc.strerror}") from exc
    for where, what in ((folder, "state folder"), (path, "state database")):
        if where.exists() and not os.access(where, os.W_OK):
            raise not_writable(what, where)


async def _connect(path: Path, readonly: bool) -> aiosqlite.Connection:
    """Connect through aiosqlite; on failure wait for its worker thread, so it never reports to a closed loop.

    A read-only open of a WAL database whose ``-shm`` file cannot be created (nobody has it open, and the folder
    is not writable) is retried as immutable: then no process can be writing it either.
    """
    targets = [f"{path.as_uri()}?mode=ro", f"{path.as_uri()}?mode=ro&immutable=1"] if readonly else [str(path)]
    for attempt, target in enumerate(targets, 1):
        conn = aiosqlite.connect(target, isolation_level=None, uri=readonly)
        try:
            await conn
            if readonly:
                await conn.execute("SELECT count(*) FROM sqlite_master")  # WAL's -shm problem shows only here
            return conn
        except (OSError, sqlite3.Error) as exc:
            await _finish(conn)
            if attempt == len(targets):
                raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        except BaseException:
            await _finish(conn)
            raise
    raise AssertionError("unreachable")


async def _finish(conn: aiosqlite.Connection) -> None:
    if conn._connection is not None:  # connected: close it properly
        await conn.close()
        return
    thread = conn._thread  # aiosqlite stops its thread after a failed connect without waiting
    if thread.is_alive():
        await asyncio.to_thread(thread.join, 5)

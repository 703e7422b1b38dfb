"""The state database: one SQLite file in ``state_dir`` (``guardd.db``), opened through aiosqlite.

WAL mode, ``synchronous=NORMAL`` and a 5 s ``busy_timeout`` let the CLI read (and briefly write: overrides,
silences, backfills) while the daemon writes, without "database is locked". Writes are batched in
``BEGIN IMMEDIATE … COMMIT`` transactions. The schema is versioned by ``PRAGMA user_version`` and migrated
forward on open; a database from a newer guardd is refused with :class:`SchemaTooNew` rather than misread.

Money columns hold integer pico-dollars (see :mod:`guardd.core.money`); times are Unix milliseconds (event data)
or RFC 3339 UTC text (state rows, for people reading the database by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiosqlite

from guardd.core.batch import key_hash, series_id
from guardd.errors import SchemaTooNew, StoreError, not_writable
from guardd.store.health import WriteHealth

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, str | Callable[[aiosqlite.Connection], Awaitable[None]]] = {
    1: """
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    sig TEXT NOT NULL UNIQUE,          -- canonical JSON [model, key, provider, labels]
    model TEXT NOT NULL, key TEXT, provider TEXT, labels TEXT NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    kh INTEGER NOT NULL,               -- 64-bit hash of k, unique: a compact index (collisions re-hashed)
    k TEXT NOT NULL,                   -- dedupe key: 'g:<generation id>' or 'h:<hash of file, offset, line>'
    ts INTEGER NOT NULL,               -- Unix ms, UTC
    series INTEGER NOT NULL REFERENCES series(id),
    cost INTEGER,                      -- pico-dollars; NULL = unpriced
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,
    ok INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX events_kh ON events(kh);
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_unpriced ON events(series) WHERE cost IS NULL;
-- level 0: hour buckets (ts // 3600000); level 1: UTC day buckets (ts // 86400000)
CREATE TABLE rollups (
    level INTEGER NOT NULL, bucket INTEGER NOT NULL, series INTEGER NOT NULL,
    cost INTEGER NOT NULL, events INTEGER NOT NULL, unpriced INTEGER NOT NULL,
    PRIMARY KEY (level, bucket, series)
) WITHOUT ROWID;
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    ledger TEXT NOT NULL, path TEXT NOT NULL,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,
    tail TEXT NOT NULL DEFAULT '',     -- hash of the bytes just before offset: detects rewrites
    events INTEGER NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0,
    last_event_ms INTEGER, updated_at TEXT,
    UNIQUE (dev, ino, fingerprint)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL, path TEXT NOT NULL, offset INTEGER NOT NULL,
    reason TEXT NOT NULL, excerpt TEXT NOT NULL, at TEXT NOT NULL,
    UNIQUE (source, offset)
);
CREATE TABLE alert_state (
    budget TEXT NOT NULL, window TEXT NOT NULL, instance TEXT NOT NULL,
    level REAL NOT NULL, tripped INTEGER NOT NULL, forecast INTEGER NOT NULL, critical INTEGER NOT NULL,
    notified_at TEXT,
    PRIMARY KEY (budget, window)
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL, budget TEXT, severity TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL,
    notifier INTEGER NOT NULL,         -- index into [[notifiers]] at enqueue time
    notifier_url TEXT NOT NULL,        -- redacted, to match the channel again after a config change
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL, lease_until TEXT, lease_owner TEXT,
    delivered_at TEXT, failed_at TEXT, last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE TABLE notifier_health (
    notifier_url TEXT PRIMARY KEY, ok INTEGER NOT NULL, last_error TEXT, failing_since TEXT,
    last_success TEXT, meta_alerted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE history (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, budget TEXT, detail TEXT NOT NULL
);
CREATE INDEX history_at ON history(at);
CREATE TABLE overrides (
    scope TEXT PRIMARY KEY, state TEXT NOT NULL, until TEXT, by TEXT NOT NULL, reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE silences (
    id INTEGER PRIMARY KEY, budget TEXT NOT NULL, until TEXT NOT NULL, reason TEXT NOT NULL,
    by TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE switch_state (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE markers (name TEXT PRIMARY KEY, value TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE or_usage (
    at INTEGER NOT NULL, key TEXT NOT NULL,           -- key: the secret's redacted form (…abc1)
    label TEXT,                                       -- OpenRouter's label for the key (a name or a preview)
    usage INTEGER, usage_daily INTEGER, usage_weekly INTEGER, usage_monthly INTEGER,
    lim INTEGER, limit_remaining INTEGER, limit_reset TEXT, disabled INTEGER,
    PRIMARY KEY (key, at)
) WITHOUT ROWID;
CREATE TABLE or_credits (at INTEGER PRIMARY KEY, total_credits INTEGER NOT NULL, total_usage INTEGER NOT NULL);
CREATE TABLE or_keys (
    hash TEXT PRIMARY KEY, name TEXT, label TEXT, disabled INTEGER NOT NULL,
    disabled_by_guardd INTEGER NOT NULL DEFAULT 0, usage_daily INTEGER, lim INTEGER, limit_remaining INTEGER,
    updated_at TEXT NOT NULL
);
CREATE TABLE sources (
    name TEXT PRIMARY KEY, ok_at TEXT, failing_since TEXT, error TEXT, permanent INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE prices (model TEXT PRIMARY KEY, pricing TEXT NOT NULL, fetched_at TEXT NOT NULL);
""",
}


async def _v2_narrow_events(conn: aiosqlite.Connection) -> None:
    """Schema 2, for ingestion speed: an event row is only (key, time, series, cost), with one unique index on
    the key text instead of a hash column; token counts live in ``unpriced`` while an event waits for a price;
    and a series id is the 64-bit hash of its signature, so that parsers in other processes can name it."""
    async with conn.execute("SELECT id, sig FROM series") as cur:
        mapping = [(old, series_id(sig)) for old, sig in await cur.fetchall()]
    for statement in _statements("""
CREATE TEMP TABLE series_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
CREATE TABLE events_v2 (
    id INTEGER PRIMARY KEY,
    k TEXT NOT NULL UNIQUE,            -- dedupe key: 'g:<generation id>' or 'h:<hash of file, offset, line>'
    ts INTEGER NOT NULL,               -- Unix ms, UTC
    series INTEGER NOT NULL,           -- series.id
    cost INTEGER                       -- pico-dollars; NULL = unpriced
);
CREATE TABLE unpriced (
    k TEXT PRIMARY KEY,                -- events.k of an event with cost NULL: what pricing it needs
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL
) WITHOUT ROWID;
"""):
        await conn.execute(statement)
    await conn.executemany("INSERT INTO temp.series_map(old, new) VALUES (?, ?)", mapping)
    for statement in _statements("""
INSERT INTO events_v2(id, k, ts, series, cost)
    SELECT e.id, e.k, e.ts, m.new, e.cost FROM events e JOIN temp.series_map m ON m.old = e.series;
INSERT INTO unpriced SELECT k, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens
    FROM events WHERE cost IS NULL;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_ts ON events(ts);
UPDATE rollups SET series = (SELECT new FROM temp.series_map WHERE old = rollups.series);
UPDATE series SET id = (SELECT new FROM temp.series_map WHERE old = series.id);
DROP TABLE temp.series_map;
"""):
        await conn.execute(statement)


MIGRATIONS[2] = _v2_narrow_events

MIGRATIONS[3] = """
-- Schema 3 (contract §10, §11): token sums in the rollups, for advice; health facts of the events that carry
-- any (latency, status, an error, ok = false), for health rules and per-key statistics. Rollups written by an
-- older guardd hold no token counts (the events then stored none).
ALTER TABLE rollups ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollups ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
CREATE TABLE health (
    k TEXT PRIMARY KEY,                -- events.k
    ts INTEGER NOT NULL,               -- Unix ms, UTC (as the event's)
    series INTEGER NOT NULL,           -- series.id
    ok INTEGER NOT NULL,               -- 0/1; contract §10: explicit ok, else status < 400, else 1
    status INTEGER, latency_ms REAL, error TEXT    -- error: short and redacted
) WITHOUT ROWID;
CREATE INDEX health_ts ON health(ts);
"""


async def _v4_hashed_keys(conn: aiosqlite.Connection) -> None:
    """Schema 4, for ingestion speed on random ids: events are unique by a 64-bit hash of their key
    (:func:`~guardd.core.batch.key_hash`) instead of by the key text. The unique index is a third the size
    of the text index, so it stays in the page cache at millions of events, and a batch sorted by hash
    touches fewer pages. The key text stays beside it: two keys with one hash are told apart, and the second
    is stored under its second hash (see :class:`~guardd.store.sqlite.events.EventStore`)."""
    await conn.execute(
        "CREATE TABLE events_v4 (id INTEGER PRIMARY KEY, h INTEGER NOT NULL, k TEXT NOT NULL, ts INTEGER NOT NULL,"
        " series INTEGER NOT NULL, cost INTEGER)"
    )
    last = 0
    while True:
        async with conn.execute(
            "SELECT id, k, ts, series, cost FROM events WHERE id > ? ORDER BY id LIMIT 50000", (last,)
        ) as cur:
            rows = list(await cur.fetchall())
        if not rows:
            break
        await conn.executemany(
            "INSERT INTO events_v4(id, h, k, ts, series, cost) VALUES (?,?,?,?,?,?)",
            [(eid, key_hash(k), k, ts, series, cost) for eid, k, ts, series, cost in rows],
        )
        last = rows[-1][0]
    # Keys that share a hash (a collision among stored keys): every one but the first takes its second hash.
    async with conn.execute(
        "SELECT id, k FROM events_v4 WHERE h IN (SELECT h FROM events_v4 GROUP BY h HAVING count(*) > 1)"
        " AND id NOT IN (SELECT min(id) FROM events_v4 GROUP BY h HAVING count(*) > 1)"
    ) as cur:
        collided = list(await cur.fetchall())
    await conn.executemany("UPDATE events_v4 SET h = ? WHERE id = ?", [(key_hash(k, 1), eid) for eid, k in collided])
    for statement in _statements("""
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE UNIQUE INDEX events_h ON events(h);
CREATE INDEX events_ts ON events(ts);
"""):
        await conn.execute(statement)


MIGRATIONS[4] = _v4_hashed_keys


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
                    for statement in _statements(migration):
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


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

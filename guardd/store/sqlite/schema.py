"""The SQLite schema, as forward migrations: version N's entry in :data:`MIGRATIONS` takes a database from N-1 to N.

An entry is a script (its statements run one by one, see :func:`statements`) or a coroutine given the connection
inside the migration's transaction. :class:`~guardd.store.sqlite.db.Store` runs them on open, each in its own
``BEGIN IMMEDIATE`` transaction, and records the version in ``PRAGMA user_version``. Money columns hold integer
pico-dollars; times are Unix milliseconds (event data) or RFC 3339 UTC text (state rows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite

from guardd.core.batch import key_hash, series_id

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
    for statement in statements("""
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
    for statement in statements("""
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
    for statement in statements("""
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE UNIQUE INDEX events_h ON events(h);
CREATE INDEX events_ts ON events(ts);
"""):
        await conn.execute(statement)


MIGRATIONS[4] = _v4_hashed_keys


def statements(script: str) -> list[str]:
    """Split a migration script into its statements, without ``--`` comments (executescript() would COMMIT
    first and break the migration's transaction)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

"""The PostgreSQL schema, as forward migrations: version N's statements take a database from N-1 to N.

Differences from the SQLite schema that the dialects or the sharing force: money columns are ``numeric``
dollars; an event and its checkpoint name the instance that wrote them; ``window`` and ``offset`` are reserved
words, so those columns are ``win`` and ``byte_offset``. Version 2 adds the OpenRouter tables (snapshots, keys,
sources, prices), read and written by :mod:`guardd.store.remote`. Version 4 adds token sums to the rollups and
the health facts (SQLite schema 3), so that ``guardd store copy`` loses neither; their writers and readers follow.
Version 7 is for ingest speed: a BRIN time index on events, and room on the rollups' pages for in-place updates.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE series (
    id bigint PRIMARY KEY,               -- 64-bit hash of sig (guardd.core.batch.series_id)
    sig text NOT NULL UNIQUE,            -- canonical JSON [model, key, provider, labels]
    model text NOT NULL, key text, provider text, labels text NOT NULL
);
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    k text NOT NULL UNIQUE,              -- 'g:<generation id>' (one event across every instance), else
                                         -- 'h:<instance>:<hash of file identity, offset, line>'
    ts bigint NOT NULL,                  -- Unix ms, UTC
    series bigint NOT NULL,
    cost numeric,                        -- USD, exact; NULL = unpriced
    instance text NOT NULL               -- who stored it first
);
CREATE INDEX events_ts ON events (ts);  -- raw sums cover at most the two partial hours of a window
CREATE INDEX events_unpriced ON events (id) WHERE cost IS NULL;
-- level 0: hour buckets (ts / 3600000), level 1: UTC days (ts / 86400000)
CREATE TABLE rollups (
    level smallint NOT NULL, bucket bigint NOT NULL, series bigint NOT NULL,
    cost numeric NOT NULL, events bigint NOT NULL, unpriced bigint NOT NULL,
    PRIMARY KEY (level, bucket, series)
);
CREATE TABLE unpriced (
    k text PRIMARY KEY,                  -- events.k of an event without a cost: what pricing it needs
    prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL,
    reasoning_tokens bigint NOT NULL, cached_tokens bigint NOT NULL
);
CREATE TABLE files (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL,              -- the owner: each instance reads its own ledgers
    ledger text NOT NULL, path text NOT NULL,
    dev bigint NOT NULL, ino bigint NOT NULL, fingerprint text NOT NULL,
    byte_offset bigint NOT NULL DEFAULT 0, size bigint NOT NULL DEFAULT 0, tail text NOT NULL DEFAULT '',
    events bigint NOT NULL DEFAULT 0, quarantined bigint NOT NULL DEFAULT 0,
    last_event_ms bigint, updated_at timestamptz,
    UNIQUE (instance, dev, ino, fingerprint)
);
CREATE TABLE quarantine (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance text NOT NULL, source text NOT NULL, path text NOT NULL, byte_offset bigint NOT NULL,
    reason text NOT NULL, excerpt text NOT NULL, at timestamptz NOT NULL,
    UNIQUE (instance, source, byte_offset)
);
CREATE TABLE alert_state (
    budget text NOT NULL, win text NOT NULL, instance text NOT NULL,
    level double precision NOT NULL, tripped boolean NOT NULL, forecast boolean NOT NULL, critical boolean NOT NULL,
    notified_at timestamptz,
    PRIMARY KEY (budget, win)
);
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL, budget text, severity text NOT NULL,
    title text NOT NULL, body text NOT NULL,
    notifier integer NOT NULL, notifier_url text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL, lease_until timestamptz, lease_owner text,
    delivered_at timestamptz, failed_at timestamptz, last_error text
);
CREATE INDEX outbox_pending ON outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE TABLE notifier_health (
    notifier_url text PRIMARY KEY, ok boolean NOT NULL, last_error text, failing_since timestamptz,
    last_success timestamptz, meta_alerted boolean NOT NULL DEFAULT false
);
CREATE TABLE history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL, kind text NOT NULL, budget text, detail text NOT NULL
);
CREATE INDEX history_at ON history (at);
CREATE TABLE overrides (
    scope text PRIMARY KEY, state text NOT NULL, until timestamptz, by text NOT NULL, reason text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE silences (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    budget text NOT NULL, until timestamptz NOT NULL, reason text NOT NULL, by text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE switch_state (id integer PRIMARY KEY CHECK (id = 1), doc jsonb NOT NULL);
CREATE TABLE markers (name text PRIMARY KEY, value text NOT NULL, at timestamptz NOT NULL)
""",
    2: """
CREATE TABLE or_usage (
    at bigint NOT NULL, key text NOT NULL,           -- key: the secret's redacted form (…abc1)
    label text,
    usage numeric, usage_daily numeric, usage_weekly numeric, usage_monthly numeric,
    lim numeric, limit_remaining numeric, limit_reset text, disabled boolean,
    PRIMARY KEY (key, at)
);
CREATE TABLE or_credits (at bigint PRIMARY KEY, total_credits numeric NOT NULL, total_usage numeric NOT NULL);
CREATE TABLE or_keys (
    hash text PRIMARY KEY, name text, label text, disabled boolean NOT NULL,
    disabled_by_guardd boolean NOT NULL DEFAULT false, usage_daily numeric, lim numeric, limit_remaining numeric,
    updated_at timestamptz NOT NULL
);
CREATE TABLE sources (
    name text PRIMARY KEY, ok_at timestamptz, failing_since timestamptz, error text,
    permanent boolean NOT NULL DEFAULT false
);
CREATE TABLE prices (model text PRIMARY KEY, pricing jsonb NOT NULL, fetched_at timestamptz NOT NULL)
""",
    3: """
CREATE TABLE leader (
    id integer PRIMARY KEY CHECK (id = 1),
    holder text NOT NULL,                -- the instance that holds the lease
    epoch bigint NOT NULL,               -- the term: grows by one at every new term (the fencing token)
    expires_at timestamptz NOT NULL      -- by the database's clock, never a host's
)
""",
    4: """
-- As SQLite schema 3 (contract §10, §11), agreed by wiring and pgspeed: token sums of every event per (hour|day,
-- series) beside its spend, and the health facts of the events that report any (k = the stored key).
ALTER TABLE rollups ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN reasoning_tokens bigint NOT NULL DEFAULT 0, ADD COLUMN cached_tokens bigint NOT NULL DEFAULT 0;
CREATE TABLE health (k text PRIMARY KEY, ts bigint NOT NULL, series bigint NOT NULL, ok boolean NOT NULL,
  status integer, latency_ms double precision, error text);
CREATE INDEX health_ts ON health (ts)
""",
    5: """
-- Events unique by a 64-bit hash of their key (guardd.store.postgres.ingest.event_hash: md5's first 8 bytes), not
-- by an identity column and a unique index on the key text: a bigint index is half the size and needs no
-- collation (ingest speed). A key whose hash another key holds is stored under md5('1:' || key).
ALTER TABLE events ADD COLUMN h bigint;
UPDATE events SET h = ('x' || left(md5(k), 16))::bit(64)::bigint;
UPDATE events e SET h = ('x' || left(md5('1:' || e.k), 16))::bit(64)::bigint
    FROM (SELECT id, row_number() OVER (PARTITION BY h ORDER BY id) AS n FROM events) d WHERE d.id = e.id AND d.n > 1;
ALTER TABLE events DROP COLUMN id;
ALTER TABLE events DROP CONSTRAINT events_k_key;
ALTER TABLE events ALTER COLUMN h SET NOT NULL;
ALTER TABLE events ADD PRIMARY KEY (h);
CREATE INDEX events_unpriced ON events (h) WHERE cost IS NULL
""",
    6: """
CREATE TABLE instances (                 -- every guardd sharing this store (contract §9; guardd.store.postgres.cluster)
    name text PRIMARY KEY,               -- [guardd] instance, else the host name
    host text NOT NULL, pid integer NOT NULL,
    token text NOT NULL,                 -- random per process: who holds the name now
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,      -- by the database's clock: the last time it reached the store
    stopped_at timestamptz,              -- a clean stop
    ledgers jsonb NOT NULL,              -- its [[ledgers]] paths
    version text NOT NULL,
    config_digest text NOT NULL          -- hash of the sections every instance must share
);
-- Every committed change of the switch document wakes each instance's mirror (payload: the schema, since one
-- database may hold several guardd stores, one per schema).
CREATE FUNCTION guardd_switch_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('guardd_switch', current_schema());
    RETURN NULL;
END $$;
CREATE TRIGGER switch_state_notify AFTER INSERT OR UPDATE ON switch_state
    FOR EACH STATEMENT EXECUTE FUNCTION guardd_switch_notify();
-- Every committed batch of events (its rollups change), from any instance, wakes the leader to evaluate.
CREATE FUNCTION guardd_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('guardd_events', current_schema());
    RETURN NULL;
END $$;
CREATE TRIGGER rollups_notify AFTER INSERT OR UPDATE ON rollups
    FOR EACH STATEMENT EXECUTE FUNCTION guardd_events_notify()
""",
    7: """
-- Ingest speed (issue 12): the events' time index is a BRIN index (a few bytes per 8 pages: events arrive in about
-- time order) instead of a btree taking every row at its place; a raw window edge reads the page ranges whose
-- times overlap it. Every batch summarizes the ranges it filled (guardd.store.postgres.events), so that no read
-- depends on autovacuum; a range not summarized yet is read whole, never missed.
DROP INDEX events_ts;
CREATE INDEX events_ts ON events USING brin (ts) WITH (pages_per_range = 8, autosummarize = on);
-- Rollup rows are updated in place by every batch that adds to their hour or day (several instances add to the
-- same ones): room on their page keeps the new version there (a HOT update, no new index entry).
ALTER TABLE rollups SET (fillfactor = 70)
""",
}

"""The PostgreSQL write path stores what the SQLite one stores: the same batches (new keys, duplicates, changed
lines, unpriced lines, health facts, key-hash collisions) leave the same rollups — spend, events, unpriced and the
token sums of schema 3 — and the same health facts in both backends, and the same exact totals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from guardd.core.batch import HOUR_MS, Parsed, Row, series_id
from guardd.errors import StoreError
from guardd.store.api import Sum
from guardd.store.postgres import ingest
from guardd.store.postgres.db import PgStore, pico
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.ingest import copy_text, event_hash
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.store.backends import T0, T0_MS, USD, sig

# Every test runs with each builder of the COPY text: the C one and the Python reference.
pytestmark = pytest.mark.usefixtures("copy_builder")

DAY = T0, T0.replace(day=T0.day + 1)
Event = tuple[str, int, str, int | None, tuple[int, int, int, int], tuple[int, int | None, float | None, str | None]]


def parsed(*events: Event) -> Parsed:
    """A batch of ``(key, ms after T0, model, cost, (prompt, completion, reasoning, cached), (ok, status,
    latency, error))`` events; a health tuple of ``(1, None, None, None)`` says nothing (none stored)."""
    out = Parsed(0, 0, lines=len(events))
    for k, at, model, cost, tokens, health in events:
        sid = series_id(sig(model))
        out.series[sid] = sig(model)
        ts = T0_MS + at
        facts = None if health == (1, None, None, None) else (k, ts, sid, *health)
        out.add((k, ts, sid, cost, *tokens), (k, *tokens), facts)
    out.close()
    return out


QUIET = (1, None, None, None)
BATCHES = [
    [
        ("g:a", 5, "m", USD, (100, 20, 0, 0), QUIET),
        ("g:b", 9, "m", None, (7, 3, 1, 0), (0, 500, 812.5, "upstream timeout")),
        ("h:line1", 2 * HOUR_MS + 1, "n", 3 * USD // 7, (40, 2, 0, 5), (1, 200, 120.0, None)),
        ("g:c", 26 * HOUR_MS, "n", 123, (1, 1, 0, 0), (0, 429, None, "rate limited")),
    ],
    [
        ("g:a", 5, "m", USD, (100, 20, 0, 0), QUIET),  # the same line again: a duplicate
        ("g:b", 3 * HOUR_MS, "n", 2 * USD, (9, 9, 0, 0), QUIET),  # a later snapshot: priced, moved, facts gone
        ("g:c", 26 * HOUR_MS, "n", 123, (1, 1, 0, 0), (1, 200, 99.0, None)),  # same spend, new facts
        ("h:line2", 30 * HOUR_MS, "m", None, (5, 5, 5, 5), (1, 201, 3.25, None)),
    ],
    [
        ("g:d", 47 * HOUR_MS + 59_000, "m", 17, (2, 2, 2, 2), QUIET),
        ("g:b", 3 * HOUR_MS, "n", 2 * USD, (9, 9, 0, 0), QUIET),
    ],
]


def sqlite_tables(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        rollups = conn.execute(
            "SELECT level, bucket, series, cost, events, unpriced, prompt_tokens, completion_tokens,"
            " reasoning_tokens, cached_tokens FROM rollups ORDER BY 1, 2, 3"
        ).fetchall()
        health = conn.execute("SELECT k, ts, series, ok, status, latency_ms, error FROM health ORDER BY 1").fetchall()
    return rollups, health


def pg_tables(url: str, instance: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        rollups = [
            (level, bucket, series, pico(cost), *rest)
            for level, bucket, series, cost, *rest in conn.execute(
                "SELECT level, bucket, series, cost, events, unpriced, prompt_tokens, completion_tokens,"
                " reasoning_tokens, cached_tokens FROM rollups ORDER BY 1, 2, 3"
            ).fetchall()
        ]
        health = [
            (k.replace(f"h:{instance}:", "h:"), ts, series, int(ok), status, latency, error)
            for k, ts, series, ok, status, latency, error in conn.execute(
                "SELECT k, ts, series, ok, status, latency_ms, error FROM health ORDER BY 1"
            ).fetchall()
        ]
    return sorted(r for r in rollups if any(r[3:])), sorted(health)


async def test_both_backends_store_the_same_rollups_tokens_and_health_facts(pg_url, tmp_path):
    db = tmp_path / "guardd.db"
    results = []
    async with Store.open(db) as store:
        lite = EventStore(store)
        for events in BATCHES:
            r = await lite.write_batch(parsed(*events))
            results.append((r.stored, r.duplicates, r.unpriced, sorted(r.series), r.max_ts))
        lite_total = await lite.window_sum(None, T0, T0.replace(day=T0.day + 3))
    async with PgStore.open(pg_url, "host-a") as pg:
        events_pg = PgEventStore(pg)
        for i, events in enumerate(BATCHES):
            r = await events_pg.write_batch(parsed(*events))
            assert (r.stored, r.duplicates, r.unpriced, sorted(r.series), r.max_ts) == results[i], i
        assert await events_pg.window_sum(None, T0, T0.replace(day=T0.day + 3)) == lite_total
    lite_rollups, lite_health = sqlite_tables(db)
    assert pg_tables(pg_url, "host-a") == (sorted(r for r in lite_rollups if any(r[3:])), sorted(lite_health))
    assert lite_total == Sum(USD + 2 * USD + 3 * USD // 7 + 123 + 17, 6, 1)


def test_the_key_hash_is_the_one_sql_computes(pg_url):
    keys = ["g:gen-1", "h:web-1:abc", "g:naïve ☃", "g:tab\there"]
    with psycopg.connect(pg_url) as conn:
        for k in keys:
            for attempt in (0, 1):
                (h,) = conn.execute(f"SELECT {ingest.hash_sql('%s::text', attempt)}", (k,)).fetchone()
                assert h == event_hash(k, attempt), (k, attempt)


async def test_keys_holding_copy_escapes_are_stored_as_they_are(pg_url):
    odd = ["g:a\\b", "g:tab\there", "g:new\nline", "g:cr\rhere", "g:\\N"]
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        r = await events.write_batch(parsed(*((k, i, "m", USD, (1, 1, 0, 0), QUIET) for i, k in enumerate(odd))))
        again = await events.write_batch(parsed(*((k, i, "m", USD, (1, 1, 0, 0), QUIET) for i, k in enumerate(odd))))
    assert (r.stored, again.stored, again.duplicates) == (5, 0, 5)
    with psycopg.connect(pg_url) as conn:
        stored = {k: h for k, h in conn.execute("SELECT k, h FROM events").fetchall()}
    assert stored == {k: event_hash(k) for k in odd}


async def test_two_keys_with_one_hash_stay_two_events_and_a_third_is_refused(pg_url, monkeypatch):
    # "g:x", "g:y" and "g:z" share their first hash in the COPY text, as a 64-bit collision would.
    shared = event_hash("g:x")

    def colliding(rows: Iterable[Row], instance: str) -> bytes:
        out = []
        for line in copy_text(rows, instance).decode().splitlines():
            h, k, rest = line.split("\t", 2)
            out.append(f"{shared if k in ('g:x', 'g:y', 'g:z') else h}\t{k}\t{rest}\n")
        return "".join(out).encode()

    monkeypatch.setattr(ingest, "copy_text", colliding)
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        first = await events.write_batch(parsed(("g:x", 1, "m", USD, (1, 1, 0, 0), QUIET)))
        second = await events.write_batch(
            parsed(("g:y", 2, "m", 2 * USD, (1, 1, 0, 0), QUIET), ("g:x", 1, "m", USD, (1, 1, 0, 0), QUIET))
        )
        third = await events.write_batch(parsed(("g:y", 2, "m", 2 * USD, (1, 1, 0, 0), QUIET)))
        assert [(r.stored, r.duplicates) for r in (first, second, third)] == [(1, 0), (1, 1), (0, 1)]
        assert await events.window_sum(None, *DAY) == Sum(3 * USD, 2, 0)
        # A third key whose second hash is taken too is refused, never merged.
        real = ingest.event_hash
        monkeypatch.setattr(ingest, "event_hash", lambda k, attempt=0: real("g:y" if k == "g:z" else k, attempt))
        with pytest.raises(StoreError, match="hash collision"):
            await events.write_batch(parsed(("g:z", 3, "m", USD, (1, 1, 0, 0), QUIET)))
        assert await events.window_sum(None, *DAY) == Sum(3 * USD, 2, 0)
    with psycopg.connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT k, h FROM events").fetchall())
    assert rows == {"g:x": shared, "g:y": event_hash("g:y", 1)}


async def test_two_keys_with_one_hash_in_one_batch_stay_two_events(pg_url, monkeypatch):
    shared = event_hash("g:p")

    def colliding(rows: Iterable[Row], instance: str) -> bytes:
        lines = copy_text(rows, instance).decode().splitlines()
        return "".join(f"{shared}\t{line.split(chr(9), 1)[1]}\n" for line in lines).encode()

    monkeypatch.setattr(ingest, "copy_text", colliding)
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        r = await events.write_batch(
            parsed(("g:p", 1, "m", USD, (1, 1, 0, 0), QUIET), ("g:q", 2, "m", 2 * USD, (1, 1, 0, 0), QUIET))
        )
        assert (r.stored, r.duplicates) == (2, 0)
        assert await events.window_sum(None, *DAY) == Sum(3 * USD, 2, 0)


async def test_money_stays_exact_through_rollups_at_a_pico_dollar(pg_url):
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        await events.write_batch(parsed(*((f"g:{i}", i, "m", 1, (0, 0, 0, 0), QUIET) for i in range(1000))))
    with psycopg.connect(pg_url) as conn:
        hour, day = (r[0] for r in conn.execute("SELECT cost FROM rollups ORDER BY level").fetchall())
    assert hour == day == Decimal("0.000000001000")


async def test_a_schema_3_store_is_migrated_keeping_its_events_and_their_keys(pg_url):
    from guardd.store.postgres.db import _statements
    from guardd.store.postgres.schema import MIGRATIONS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE guardd_schema (version integer NOT NULL)")
        for version in (1, 2, 3):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute("INSERT INTO guardd_schema VALUES (%s)", (version,))
        conn.execute(
            "INSERT INTO events (k, ts, series, cost, instance) VALUES ('g:old', %s, 1, 1.5, 'a'), ('g:free', %s, 1,"
            " NULL, 'a')",
            (T0_MS, T0_MS + 1),
        )
        conn.execute("INSERT INTO rollups VALUES (0, %s, 1, 1.5, 2, 1), (1, %s, 1, 1.5, 2, 1)", (T0_MS // HOUR_MS, 0))
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        again = await events.write_batch(parsed(("g:old", 0, "m", 3 * USD // 2, (0, 0, 0, 0), QUIET)))
        assert (again.stored, again.duplicates) == (0, 1)
    with psycopg.connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT k, h FROM events").fetchall())
        tokens = conn.execute("SELECT sum(prompt_tokens) FROM rollups").fetchone()
    assert rows == {"g:old": event_hash("g:old"), "g:free": event_hash("g:free")}
    assert tokens == (0,)


async def test_the_events_time_index_is_a_brin_index_summarized_by_every_batch(pg_url):
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)
        for n in range(3):
            await events.write_batch(
                parsed(*((f"g:{n}-{i}", i * 1000, "m", 1, (0, 0, 0, 0), QUIET) for i in range(3000)))
            )
        with psycopg.connect(pg_url, autocommit=True) as conn:
            kind = conn.execute(
                "SELECT am.amname FROM pg_class i JOIN pg_am am ON am.oid = i.relam WHERE i.oid = 'events_ts'::regclass"
            ).fetchone()
            left = conn.execute("SELECT brin_summarize_new_values('events_ts')").fetchone()
        assert (kind, left) == (("brin",), (0,))
        edge = await events.window_sum(None, T0.replace(microsecond=999_000), T0.replace(second=5))
    assert edge == Sum(12, 12, 0)  # a raw edge, read through the index: the events at 1 … 4 s of each batch


async def test_a_batch_mixing_new_and_stored_keys_stores_each_new_key_once_and_moves_changed_spend(pg_url):
    """The plain insert tried first stops at the first stored key; its rows go back and the batch goes again
    with ON CONFLICT: nothing is stored twice, a changed line moves its spend, and the next batch of new keys is
    stored whole."""
    async with PgStore.open(pg_url, "host-a") as pg:
        events = PgEventStore(pg)

        def lines(ids: range) -> Parsed:
            return parsed(*((f"g:{i}", i, "m", 2 * USD if i == 60 else USD, (1, 0, 0, 0), QUIET) for i in ids))

        first = await events.write_batch(parsed(*((f"g:{i}", i, "m", USD, (1, 0, 0, 0), QUIET) for i in range(100))))
        second = await events.write_batch(lines(range(50, 150)))
        third = await events.write_batch(lines(range(150, 200)))
        total = await events.window_sum(None, *DAY)
    assert [(r.stored, r.duplicates) for r in (first, second, third)] == [(100, 0), (50, 50), (50, 0)]
    assert total == Sum(201 * USD, 200, 0)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), sum(cost) FROM events").fetchone() == (200, Decimal(201))
        assert conn.execute("SELECT sum(cost), sum(events) FROM rollups WHERE level = 0").fetchone() == (201, 200)


async def test_hours_before_1970_add_to_the_utc_day_they_fall_in_as_in_sqlite(pg_url, tmp_path):
    """A day is the hour floored by 24, in integer arithmetic: hour -1 is in day -1, hour -25 in day -2."""
    before = [
        ("g:1", -T0_MS - 1, "m", USD, (1, 0, 0, 0), QUIET),  # 1969-12-31T23:59:59.999Z: hour -1, day -1
        ("g:2", -T0_MS - 24 * HOUR_MS, "m", 2 * USD, (2, 0, 0, 0), QUIET),  # hour -24, day -1
        ("g:3", -T0_MS - 24 * HOUR_MS - 1, "m", 4 * USD, (4, 0, 0, 0), QUIET),  # hour -25, day -2
        ("g:4", -T0_MS, "m", 8 * USD, (8, 0, 0, 0), QUIET),  # 1970-01-01T00:00:00Z: hour 0, day 0
    ]
    async with Store.open(tmp_path / "guardd.db") as store:
        await EventStore(store).write_batch(parsed(*before))
    async with PgStore.open(pg_url, "host-a") as pg:
        await PgEventStore(pg).write_batch(parsed(*before))
    lite_rollups, _ = sqlite_tables(tmp_path / "guardd.db")
    pg_rollups, _ = pg_tables(pg_url, "host-a")
    assert pg_rollups == sorted(r for r in lite_rollups if any(r[3:]))
    days = {bucket: (cost, events) for level, bucket, _, cost, events, *_ in pg_rollups if level == 1}
    assert days == {-2: (4 * USD, 1), -1: (3 * USD, 2), 0: (8 * USD, 1)}


async def test_a_new_hour_row_a_concurrent_batch_inserts_meanwhile_is_added_to_not_lost(pg_url):
    """Hours after the latest stored one are inserted plainly; when another transaction inserts one of those
    rows first, the insert waits for it, fails at its commit, and the rows are upserted instead: both counted."""
    async with PgStore.open(pg_url, "setup"):
        pass  # the schema
    hour = T0_MS // HOUR_MS
    async with (
        await psycopg.AsyncConnection.connect(pg_url) as first,
        await psycopg.AsyncConnection.connect(pg_url) as second,
    ):
        await ingest.apply_rollups(first, {(hour, 7): [USD, 1, 0, 10, 0, 0, 0]})  # not committed yet
        pid = second.info.backend_pid

        async def add_later_hours() -> None:
            await ingest.apply_rollups(
                second, {(hour, 7): [2 * USD, 2, 0, 20, 0, 0, 0], (hour + 1, 7): [4 * USD, 4, 0, 40, 0, 0, 0]}
            )
            await second.commit()

        adding = asyncio.create_task(add_later_hours())
        waited = None
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as look:
            for _ in range(500):  # until the second one waits for the first one's row
                await asyncio.sleep(0.02)
                cur = await look.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,))
                waited = await cur.fetchone()
                if waited == ("transactionid",):
                    break
        await first.commit()
        await adding
    assert waited == ("transactionid",)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT level, bucket, cost, events, prompt_tokens FROM rollups WHERE series = 7 ORDER BY 1, 2"
        ).fetchall()
    assert [(level, bucket, pico(cost), events, tokens) for level, bucket, cost, events, tokens in rows] == [
        (0, hour, 3 * USD, 3, 30),
        (0, hour + 1, 4 * USD, 4, 40),
        (1, hour // 24, 7 * USD, 7, 70),
    ]

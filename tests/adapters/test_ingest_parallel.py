"""`guardd ingest` with parsing processes stores exactly what one process stores, and migrations keep old data."""

from __future__ import annotations

import json
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from guardd.core.batch import series_id
from guardd.core.money import parse_money
from guardd.errors import StoreError
from guardd.services.backfill import ingest_files
from guardd.store.sqlite.db import MIGRATIONS, SCHEMA_VERSION, Store
from guardd.store.sqlite.events import EventStore

MAX = parse_money(1000)
SINCE, UNTIL = "2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00"


def mixed_ledger(path: Path, lines: int, seed: int) -> tuple[Decimal, int, int]:
    """Write canonical lines (some without an id, some repeating an earlier id with a new cost), other formats,
    garbage and blank lines. Return (exact total, events, bad lines) as guardd must count them."""
    rng = random.Random(seed)
    latest: dict[str, Decimal] = {}
    anonymous = Decimal(0)
    events = bad = 0
    with path.open("w") as f:
        for i in range(lines):
            cost = Decimal(rng.randrange(0, 10**9)).scaleb(-9)
            roll = rng.random()
            ts = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.{i % 1000:03d}Z"
            if roll < 0.04:
                f.write("{not json\n")
                bad += 1
            elif roll < 0.06:
                f.write("\n")
            elif roll < 0.10:  # an OpenRouter response line: the line path
                ident = f"gen-{i}"
                f.write(json.dumps({"id": ident, "model": "m", "created": 1795255200, "usage": {"cost": str(cost)}}))
                f.write("\n")
                latest["g:" + ident] = cost
            elif roll < 0.25:  # no id: unique by file and offset
                f.write(json.dumps({"ts": ts, "model": "m", "cost": str(cost), "labels": {"n": rng.randrange(3)}}))
                f.write("\n")
                anonymous += cost
                events += 1
            else:
                ident = f"g{rng.randrange(lines // 2)}"  # about half of the ids come back: the last line wins
                f.write(json.dumps({"ts": ts, "id": ident, "model": f"m{i % 5}", "cost": str(cost), "key": "k1"}))
                f.write("\n")
                latest["g:" + ident] = cost
    return anonymous + sum(latest.values(), Decimal(0)), events + len(latest), bad


async def totals(db: Path) -> tuple[int, int, int, list[tuple[int, int, int, int]]]:
    async with Store.open(db) as store:
        events = EventStore(store)
        row = await store.fetchone("SELECT coalesce(sum(cost), 0), count(*) FROM events")
        rollups = await store.fetchall("SELECT level, bucket, series, cost FROM rollups WHERE events ORDER BY 1,2,3")
        return int(row[0]), int(row[1]), await events.quarantine_count(), [tuple(r) for r in rollups]


@pytest.mark.parametrize("range_bytes", [4096, 65536])
async def test_parsing_in_worker_processes_stores_exactly_what_one_process_stores(tmp_path, range_bytes):
    ledger = tmp_path / "app.jsonl"
    expected_total, expected_events, expected_bad = mixed_ledger(ledger, 6000, seed=5)
    results = {}
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.db"
        async with Store.open(db) as store:
            summary = await ingest_files(
                EventStore(store), [str(ledger)], "auto", {}, MAX, workers=workers, range_bytes=range_bytes
            )
        assert summary.stored + summary.duplicates + summary.quarantined == summary.read
        results[workers] = await totals(db)
    assert results[0] == results[2]
    cost, events, quarantined, _ = results[2]
    assert (cost, events, quarantined) == (parse_money(expected_total), expected_events, expected_bad)


async def test_a_second_parallel_ingest_of_the_same_file_changes_nothing(tmp_path):
    ledger = tmp_path / "app.jsonl"
    mixed_ledger(ledger, 3000, seed=8)
    db = tmp_path / "db.sqlite"
    async with Store.open(db) as store:
        first = await ingest_files(EventStore(store), [str(ledger)], "auto", {}, MAX, workers=2, range_bytes=8192)
    before = await totals(db)
    async with Store.open(db) as store:
        again = await ingest_files(EventStore(store), [str(ledger)], "auto", {}, MAX, workers=2, range_bytes=8192)
    assert again.stored == 0 and again.read == first.read
    assert await totals(db) == before


async def test_a_schema_1_database_is_migrated_with_its_events_rollups_and_unpriced_tokens(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    script = MIGRATIONS[1]
    assert isinstance(script, str)
    conn.executescript(script + "\nPRAGMA user_version = 1;")
    sig = '["m",null,null,[]]'
    conn.execute(
        "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (1, ?, 'm', NULL, NULL, '{}')", (sig,)
    )
    hour = 1_795_255_200_000
    conn.executemany(
        "INSERT INTO events(kh, k, ts, series, cost, prompt_tokens, completion_tokens) VALUES (?,?,?,1,?,?,?)",
        [(1, "g:a", hour + 5, 2 * 10**12, 0, 0), (2, "g:b", hour + 9, None, 100, 20)],
    )
    conn.executemany(
        "INSERT INTO rollups VALUES (?, ?, 1, ?, 2, 1)",
        [(0, hour // 3_600_000, 2 * 10**12), (1, hour // 86_400_000, 2 * 10**12)],
    )
    conn.close()
    async with Store.open(db) as store:
        version = await store.fetchone("PRAGMA user_version")
        events = EventStore(store)
        series = await events.load_series()
        unpriced = await events.unpriced_events()
        rollups = await store.fetchall("SELECT series, cost, events FROM rollups")
    assert version[0] == SCHEMA_VERSION
    assert list(series) == [series_id(sig)]
    assert [(r.model, r.prompt_tokens, r.completion_tokens, r.generation_id) for r in unpriced] == [("m", 100, 20, "b")]
    assert {tuple(r) for r in rollups} == {(series_id(sig), 2 * 10**12, 2)}


async def test_a_batch_rolled_back_leaves_no_series_believed_stored(tmp_path):
    from guardd.core.batch import Parsed
    from guardd.store.sqlite.events import Checkpoint

    sig = '["m",null,null,[]]'
    broken = Checkpoint(None, "p", 1, 2, "fp", 0, 0, "", 0, 0, None)  # type: ignore[arg-type]  # NOT NULL: fails
    async with Store.open(tmp_path / "db.sqlite") as store:
        events = EventStore(store)
        with pytest.raises(StoreError, match="NOT NULL"):
            await events.write_batch(Parsed.of([("g:1", 1_795_255_200_000, sig, 10**12, 0, 0)]), broken)
        await events.write_batch(Parsed.of([("g:2", 1_795_255_200_000, sig, 10**12, 0, 0)]))
        assert list(await events.load_series()) == [series_id(sig)]

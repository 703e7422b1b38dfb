"""Schema 4: events are unique by a 64-bit hash of their key. An id counts once and the last line wins for any two
lines with that id, whatever their times and batches; keys sharing a hash stay two events; a schema-3 store
migrates to it keeping every event and sum."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from guardd.core import batch as batch_module
from guardd.core.batch import Parsed, key_hash, series_id
from guardd.errors import StoreError
from guardd.store.sqlite import db as store_module
from guardd.store.sqlite import events as events_module
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

SIG = '["m","k1","P",[]]'
ALL = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
YEAR_MS = 365 * 86_400_000
T0 = 1_795_255_200_000


def batch(*events: tuple[str, int, int | None]) -> Parsed:
    """A batch of ``(key, ts, cost)`` events, as the parser hands it over from another process (packed)."""
    return Parsed.unpack(Parsed.of([(k, ts, SIG, cost, 10, 5) for k, ts, cost in events]).pack())


async def sums(events: EventStore) -> tuple[int, int, int]:
    total = await events.window_sum(None, *ALL)
    return total.cost, total.events, total.unpriced


async def test_an_id_counts_once_and_its_last_line_wins_whatever_the_times_of_its_lines(tmp_path):
    async with Store.open(tmp_path / "guardd.db") as store:
        events = EventStore(store)
        first = await events.write_batch(batch(("g:a", T0, 100), ("g:b", T0, 7)))
        later = await events.write_batch(batch(("g:a", T0 + 3 * YEAR_MS, 250)))  # years later, another batch
        earlier = await events.write_batch(batch(("g:b", T0 - 20 * YEAR_MS, 9), ("g:a", T0 - YEAR_MS, 300)))
        assert (first.stored, later.stored, later.duplicates, earlier.stored, earlier.duplicates) == (2, 0, 1, 0, 2)
        assert await sums(events) == (309, 2, 0)
        rows = await store.fetchall("SELECT k, ts, cost FROM events ORDER BY k")
    assert [tuple(r) for r in rows] == [("g:a", T0 - YEAR_MS, 300), ("g:b", T0 - 20 * YEAR_MS, 9)]


def small_hash(k: str, attempt: int = 0) -> int:
    """Four values for every first hash (collisions everywhere); the real second hash."""
    if attempt:
        return key_hash(k, attempt)
    return hashlib.blake2b(k.encode()).digest()[0] % 4


async def test_keys_that_share_a_hash_stay_separate_events_and_each_still_counts_once(tmp_path, monkeypatch):
    monkeypatch.setattr(batch_module, "key_hash", small_hash)
    monkeypatch.setattr(batch_module, "key_hashes", lambda keys: [small_hash(k) for k in keys])
    monkeypatch.setattr(events_module, "key_hash", small_hash)
    keys = [f"g:gen-{i}" for i in range(12)]  # 12 keys over 4 first hashes: in the store and within one batch
    async with Store.open(tmp_path / "guardd.db") as store:
        events = EventStore(store)
        first = await events.write_batch(batch(*((k, T0 + i, 10 + i) for i, k in enumerate(keys[:3]))))
        second = await events.write_batch(batch(*((k, T0 + i, 10 + i) for i, k in enumerate(keys[3:], 3))))
        assert (first.stored, second.stored) == (3, 9)
        assert await sums(events) == (sum(range(10, 22)), 12, 0)
        # Every key again, one with a new cost (the last line wins): nothing new.
        again = await events.write_batch(batch(*((k, T0 + i, 10 + i + (i == 5) * 100) for i, k in enumerate(keys))))
        assert (again.stored, again.duplicates) == (0, 12)
        assert await sums(events) == (sum(range(10, 22)) + 100, 12, 0)
        assert (await store.fetchone("SELECT count(DISTINCT h), count(*) FROM events"))[0] == 12


async def test_a_key_whose_both_hashes_are_taken_by_other_keys_is_refused_not_merged(tmp_path, monkeypatch):
    def tiny(k: str, attempt: int = 0) -> int:
        return attempt

    monkeypatch.setattr(batch_module, "key_hash", tiny)
    monkeypatch.setattr(batch_module, "key_hashes", lambda keys: [tiny(k) for k in keys])
    monkeypatch.setattr(events_module, "key_hash", tiny)
    async with Store.open(tmp_path / "guardd.db") as store:
        events = EventStore(store)
        await events.write_batch(batch(("g:a", T0, 1), ("g:b", T0, 2)))
        with pytest.raises(StoreError, match="collision"):
            await events.write_batch(batch(("g:c", T0, 3)))
        assert await sums(events) == (3, 2, 0)


async def test_a_schema_3_store_migrates_to_hashed_keys_keeping_its_events_and_sums(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    async with Store.open(tmp_path / "guardd.db") as old, old.transaction() as conn:
        sid = series_id(SIG)
        await conn.execute("INSERT INTO series VALUES (?, ?, 'm', 'k1', 'P', '{}')", (sid, SIG))
        await conn.executemany(
            "INSERT INTO events(k, ts, series, cost) VALUES (?,?,?,?)",
            [("g:a", T0, sid, 100), ("g:b", T0 + 1, sid, None), ("h:" + "0" * 32, T0 + 2, sid, 5)],
        )
        await conn.execute("INSERT INTO unpriced VALUES ('g:b', 10, 5, 0, 0)")
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 4)
    async with Store.open(tmp_path / "guardd.db") as store:
        assert (await store.fetchone("PRAGMA user_version"))[0] == 4
        rows = await store.fetchall("SELECT id, h, k, ts, cost FROM events ORDER BY id")
        assert [tuple(r) for r in rows] == [
            (1, key_hash("g:a"), "g:a", T0, 100),
            (2, key_hash("g:b"), "g:b", T0 + 1, None),
            (3, key_hash("h:" + "0" * 32), "h:" + "0" * 32, T0 + 2, 5),
        ]
        events = EventStore(store)
        again = await events.write_batch(batch(("g:a", T0, 100), ("g:b", T0 + 1, None)))
        assert (again.stored, again.duplicates) == (0, 2)
        unpriced = await events.unpriced_events()
        assert [(u.id, u.prompt_tokens, u.generation_id) for u in unpriced] == [(2, 10, "b")]

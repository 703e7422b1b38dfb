"""``guardd store copy`` and 64-bit key-hash collisions (schema 5: events keyed by a hash of their key): two keys
with one first hash are both copied, the later under its second hash — where live ingest stores such a key, so a
line read again after the copy is still a duplicate; a key whose second hash is held too is refused, never merged,
and nothing is copied."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psycopg
import pytest

import guardd.store.copy as store_copy
from guardd.core.batch import Row
from guardd.errors import StoreError
from guardd.store.api import Sum
from guardd.store.copy import copy_sqlite_file
from guardd.store.postgres import ingest
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.ingest import copy_text, event_hash
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.store.backends import T0, USD, batch

DAY = T0, T0.replace(day=T0.day + 1)


async def sqlite_state(tmp_path: Path, *keys: str) -> Path:
    """A SQLite state holding one event per key, $1, $2, $3 … in order."""
    db = tmp_path / "guardd.db"
    async with Store.open(db) as lite:
        await EventStore(lite).write_batch(batch(*((k, i, (i + 1) * USD) for i, k in enumerate(keys))))
    return db


def stored(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        return dict(conn.execute("SELECT k, h FROM events").fetchall()) if exists and exists[0] else {}


def sharing_first_hash(*keys: str):
    """:func:`event_hash` under which ``keys`` all have the first hash of ``keys[0]`` (a 64-bit collision)."""

    def patched(k: str, attempt: int = 0) -> int:
        return event_hash(keys[0] if attempt == 0 and k in keys else k, attempt)

    return patched


async def test_two_keys_with_one_hash_are_both_copied_the_later_under_its_second_hash(tmp_path, pg_url, monkeypatch):
    db = await sqlite_state(tmp_path, "g:a", "g:free", "g:b")
    monkeypatch.setattr(store_copy, "event_hash", sharing_first_hash("g:a", "g:b"))
    result = await copy_sqlite_file(db, pg_url, "web-1")
    assert result.tables["events"].rows == 3
    assert stored(pg_url) == {"g:a": event_hash("g:a"), "g:free": event_hash("g:free"), "g:b": event_hash("g:b", 1)}


async def test_a_line_read_again_after_a_copy_with_a_collision_is_still_a_duplicate(tmp_path, pg_url, monkeypatch):
    db = await sqlite_state(tmp_path, "g:a", "g:b")
    monkeypatch.setattr(store_copy, "event_hash", sharing_first_hash("g:a", "g:b"))
    await copy_sqlite_file(db, pg_url, "web-1")
    first = event_hash("g:a")

    def colliding(rows: Iterable[Row], instance: str) -> bytes:  # live ingest under the same collision
        out = []
        for line in copy_text(rows, instance).decode().splitlines():
            h, k, rest = line.split("\t", 2)
            out.append(f"{first if k == 'g:b' else h}\t{k}\t{rest}\n")
        return "".join(out).encode()

    monkeypatch.setattr(ingest, "copy_text", colliding)
    async with PgStore.open(pg_url, "web-1") as pg:
        events = PgEventStore(pg)
        again = await events.write_batch(batch(("g:b", 1, 2 * USD), ("g:a", 0, USD)))
        assert (again.stored, again.duplicates) == (0, 2)
        assert await events.window_sum(None, *DAY) == Sum(3 * USD, 2, 0)


async def test_a_key_whose_second_hash_is_held_too_is_refused_and_nothing_is_copied(tmp_path, pg_url, monkeypatch):
    db = await sqlite_state(tmp_path, "g:a", "g:b", "g:c")

    def patched(k: str, attempt: int = 0) -> int:
        if attempt == 0 and k in ("g:b", "g:c"):
            return event_hash("g:a")
        return event_hash("g:b" if k == "g:c" else k, attempt)

    monkeypatch.setattr(store_copy, "event_hash", patched)
    with pytest.raises(StoreError, match="hash collision between 'g:b' and 'g:c'"):
        await copy_sqlite_file(db, pg_url, "web-1")
    assert stored(pg_url) == {}

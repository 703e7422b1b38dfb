"""A file's read position is the committed one: a batch whose write fails is read again, nothing is lost."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest

from guardd.core.money import parse_money
from guardd.errors import StoreError
from guardd.ledger.tailer import LedgerSpec, Tailer
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

LINE = '{{"ts": "2026-11-02T10:00:00Z", "id": "{name}-{i}", "model": "m", "cost": "0.01"}}\n'


class FailingStore(Store):
    """A real store whose Nth write transactions fail at commit time, as a full disk would make them."""

    fail_on: frozenset[int] = frozenset()
    tried = 0  # write transactions begun

    @asynccontextmanager
    async def transaction(self, kind: str = "state") -> AsyncIterator[aiosqlite.Connection]:
        self.tried += 1
        async with super().transaction(kind) as conn:
            yield conn
            if self.tried in self.fail_on:
                raise sqlite3.OperationalError("database or disk is full")


async def totals(store: Store) -> tuple[int, int]:
    row = await store.fetchone("SELECT coalesce(sum(cost), 0), count(*) FROM events")
    assert row is not None
    return int(row[0]), int(row[1])


def ledgers(tmp_path: Path, files: int, lines: int) -> None:
    for f in range(files):
        (tmp_path / f"l{f}.jsonl").write_text("".join(LINE.format(name=f"f{f}", i=i) for i in range(lines)))


async def test_a_failed_batch_is_read_again_from_the_committed_position(tmp_path: Path):
    ledgers(tmp_path, files=3, lines=50)
    async with FailingStore.open(tmp_path / "db.sqlite") as store:
        assert isinstance(store, FailingStore)
        store.fail_on = frozenset({2})
        tailer = Tailer([LedgerSpec(str(tmp_path / "*.jsonl"))], EventStore(store), parse_money(1000))
        with pytest.raises(StoreError, match="disk is full"):
            await tailer.poll()
        await tailer.poll()
        await tailer.poll()
        tailer.close()
        assert await totals(store) == (parse_money("1.50"), 150)


async def test_lines_appended_after_a_failed_batch_are_counted_with_it(tmp_path: Path):
    ledgers(tmp_path, files=1, lines=20)
    async with FailingStore.open(tmp_path / "db.sqlite") as store:
        assert isinstance(store, FailingStore)
        store.fail_on = frozenset({1})
        tailer = Tailer([LedgerSpec(str(tmp_path / "l0.jsonl"))], EventStore(store), parse_money(1000))
        with pytest.raises(StoreError):
            await tailer.poll()
        with (tmp_path / "l0.jsonl").open("a") as f:
            f.write(LINE.format(name="late", i=0))
        await tailer.poll()
        tailer.close()
        assert await totals(store) == (parse_money("0.21"), 21)


async def test_the_checkpoint_after_a_failed_batch_survives_a_restart(tmp_path: Path):
    ledgers(tmp_path, files=2, lines=10)
    async with FailingStore.open(tmp_path / "db.sqlite") as store:
        assert isinstance(store, FailingStore)
        store.fail_on = frozenset({1})
        tailer = Tailer([LedgerSpec(str(tmp_path / "*.jsonl"))], EventStore(store), parse_money(1000))
        with pytest.raises(StoreError):
            await tailer.poll()
        tailer.close()
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = Tailer([LedgerSpec(str(tmp_path / "*.jsonl"))], EventStore(store), parse_money(1000))
        await tailer.poll()
        tailer.close()
        assert await totals(store) == (parse_money("0.20"), 20)

"""The daemon's catch-up of a backlog through worker processes (the pool `guardd ingest` uses) stores exactly what
one process stores, and keeps the tailer's guarantees: the checkpoint never passes what is committed, a stop between
two ranges is safe, a file rotated during catch-up is read from the inode the tailer holds, a failed write reads its
range again, and a parsing worker that dies only slows the catch-up down."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from guardd.core.money import parse_money
from guardd.errors import StoreError
from guardd.ledger.tailer import LedgerSpec, Tailer
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.adapters.test_committed_position import FailingStore
from tests.adapters.test_ingest_parallel import mixed_ledger, totals
from tests.support.processes import descendants

MAX = parse_money(1000)
RANGE = 16 << 10  # small ranges, so that a few thousand lines make a backlog of many


def plain_ledger(path: Path, lines: int, tag: str, mode: str = "w") -> Decimal:
    """Lines with unique ids (one event each); return their exact total."""
    total = Decimal(0)
    with path.open(mode) as f:
        for i in range(lines):
            cost = Decimal(i % 997 + 1).scaleb(-6)
            total += cost
            ts = f"2026-11-02T10:{i % 60:02d}:00Z"
            f.write(f'{{"ts": "{ts}", "id": "{tag}-{i}", "model": "m{i % 3}", "cost": "{cost}"}}\n')
    return total


def tailer(events: EventStore, pattern: Path, workers: int) -> Tailer:
    t = Tailer([LedgerSpec(str(pattern))], events, MAX, workers=workers)
    t.catchup.pool.range_bytes = RANGE
    return t


def ranges(t: Tailer, n: int) -> Callable[[], bool]:
    """A ``keep_going`` that says stop once this poll has committed about ``n`` ranges (as the daemon's deadline or
    SIGTERM would). It looks at the committed position, not at how often it is asked."""
    start = sum(f.offset for f in t.tracked.values())
    return lambda: sum(f.offset for f in t.tracked.values()) - start < n * RANGE - RANGE // 2


async def stored(store: Store) -> tuple[int, int]:
    row = await store.fetchone("SELECT coalesce(sum(cost), 0), count(*) FROM events")
    assert row is not None
    return int(row[0]), int(row[1])


async def committed_offset(store: Store) -> int:
    row = await store.fetchone("SELECT coalesce(max(offset), 0) FROM files")
    assert row is not None
    return int(row[0])


def workers_of_this_process() -> list[int]:
    """The parsing workers: children of the forkserver, which is a child of this process."""
    return [pid for generation in descendants(os.getpid())[1:] for pid in generation]


async def test_a_backlog_caught_up_by_worker_processes_stores_what_one_process_stores(tmp_path):
    ledger = tmp_path / "app.jsonl"
    expected_total, expected_events, expected_bad = mixed_ledger(ledger, 6000, seed=11)
    results = {}
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.db"
        async with Store.open(db) as store:
            t = tailer(EventStore(store), ledger, workers)
            await t.poll()
            assert t.catchup.ranges == (0 if workers == 0 else pytest.approx(ledger.stat().st_size / RANGE, abs=1))
            assert await committed_offset(store) == ledger.stat().st_size
            t.close()
        results[workers] = await totals(db)
    assert results[0] == results[2]
    cost, events, quarantined, _ = results[2]
    assert (cost, events, quarantined) == (parse_money(expected_total), expected_events, expected_bad)


async def test_stopped_between_ranges_the_checkpoint_covers_exactly_what_is_stored(tmp_path):
    ledger = tmp_path / "app.jsonl"
    expected = plain_ledger(ledger, 8000, "a")
    data = ledger.read_bytes()
    async with Store.open(tmp_path / "db.sqlite") as store:
        t = tailer(EventStore(store), ledger, 2)
        polls = 0
        while True:
            await t.poll(ranges(t, 2))  # two ranges per poll: the pipeline of parsed ranges outlives each poll
            polls += 1
            offset = await committed_offset(store)
            assert (await stored(store))[1] == data[:offset].count(b"\n"), "the checkpoint is not what is stored"
            assert t.tracked and next(iter(t.tracked.values())).offset == offset
            if not t.behind:
                break
        t.close()
        assert polls > 3 and t.catchup.ranges > 3
        assert await stored(store) == (parse_money(expected), 8000)


async def test_a_file_rotated_during_catch_up_is_read_from_the_inode_the_tailer_holds(tmp_path):
    ledger = tmp_path / "app.jsonl"
    old = plain_ledger(ledger, 12000, "old")
    async with Store.open(tmp_path / "db.sqlite") as store:
        t = tailer(EventStore(store), ledger, 2)
        await t.poll(ranges(t, 1))
        assert t.behind and t.catchup.ranges == 1
        os.rename(ledger, tmp_path / "app.jsonl.1")  # rename-and-create, in the middle of the backlog
        new = plain_ledger(ledger, 9000, "new")
        await t.poll()  # the rest of the old file (kept open), and the new one
        while t.behind:
            await t.poll()
        t.close()
        assert t.catchup.ranges > 6
        assert await stored(store) == (parse_money(old + new), 21000)


async def test_a_failed_write_during_catch_up_reads_that_range_again(tmp_path):
    ledger = tmp_path / "app.jsonl"
    expected = plain_ledger(ledger, 6000, "a")
    async with FailingStore.open(tmp_path / "db.sqlite") as store:
        store.fail_on = frozenset({3})
        t = tailer(EventStore(store), ledger, 2)
        with pytest.raises(StoreError):
            await t.poll()
        offset = await committed_offset(store)
        assert 0 < offset < ledger.stat().st_size
        assert next(iter(t.tracked.values())).offset == offset
        await t.poll()
        t.close()
        assert await stored(store) == (parse_money(expected), 6000)
        assert await committed_offset(store) == ledger.stat().st_size


async def test_a_parsing_worker_killed_during_catch_up_only_slows_it_down(tmp_path):
    ledger = tmp_path / "app.jsonl"
    expected = plain_ledger(ledger, 8000, "a")
    async with Store.open(tmp_path / "db.sqlite") as store:
        t = tailer(EventStore(store), ledger, 2)
        await t.poll(ranges(t, 1))
        workers = workers_of_this_process()
        assert workers, "no parsing worker runs during the catch-up"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        while True:
            await t.poll()
            if not t.behind:
                break
        t.close()
        assert await stored(store) == (parse_money(expected), 8000)


async def test_a_tailer_closed_in_the_middle_of_a_catch_up_gives_the_store_its_tuning_back(tmp_path):
    ledger = tmp_path / "app.jsonl"
    plain_ledger(ledger, 8000, "a")
    async with Store.open(tmp_path / "db.sqlite") as store:
        t = tailer(EventStore(store), ledger, 2)
        await t.poll(ranges(t, 1))
        assert t.behind
        tuned = await store.fetchone("PRAGMA wal_autocheckpoint")
        await t.aclose()  # the daemon's stop, or a reload
        after = await store.fetchone("PRAGMA wal_autocheckpoint")
    assert tuned is not None and after is not None
    assert (tuned[0], after[0]) == (16384, 1000)

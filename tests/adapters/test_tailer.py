import os
from decimal import Decimal
from pathlib import Path

from guardd.core.money import parse_money
from guardd.ledger.tailer import LedgerSpec, Tailer
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore

LINE = '{{"ts": "2026-11-02T10:00:{s:02d}Z", "model": "m", "cost": "0.01"}}\n'


async def total(store: Store) -> Decimal:
    row = await store.fetchone("SELECT coalesce(sum(cost), 0), count(*) FROM events")
    return row[0], row[1]


async def test_partial_lines_rotation_and_truncation_count_every_line_once(tmp_path: Path):
    ledger = tmp_path / "usage.jsonl"
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        ledger.write_text(LINE.format(s=1) + LINE.format(s=2)[:10])
        await tailer.poll()
        assert (await total(store))[1] == 1
        with ledger.open("a") as f:
            f.write(LINE.format(s=2)[10:])
        await tailer.poll()
        assert (await total(store))[1] == 2
        # rename-and-create rotation with a late write to the old file
        os.rename(ledger, tmp_path / "usage.jsonl.1")
        with (tmp_path / "usage.jsonl.1").open("a") as f:
            f.write(LINE.format(s=3))
        ledger.write_text(LINE.format(s=4))
        await tailer.poll()
        assert (await total(store))[1] == 4
        # copy-and-truncate
        with ledger.open("a") as f:
            f.write(LINE.format(s=5))
        (tmp_path / "copy.1").write_bytes(ledger.read_bytes())
        with ledger.open("a"):
            pass
        os.truncate(ledger, 0)
        ledger.write_text(LINE.format(s=6))
        await tailer.poll()
        tailer.close()
        assert await total(store) == (parse_money("0.06"), 6)


async def test_a_restart_resumes_from_the_checkpoint_without_double_counting(tmp_path: Path):
    ledger = tmp_path / "usage.jsonl"
    ledger.write_text("".join(LINE.format(s=i) for i in range(10)))
    for _ in range(2):
        async with Store.open(tmp_path / "db.sqlite") as store:
            tailer = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
            await tailer.poll()
            tailer.close()
            with ledger.open("a") as f:
                f.write(LINE.format(s=30))
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        await tailer.poll()
        tailer.close()
        assert (await total(store))[1] == 12

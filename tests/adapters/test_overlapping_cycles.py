"""Two evaluation cycles that overlap (``asyncio.gather``) announce a change once and raise nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from guardd.app import open_app
from guardd.config import load_config
from guardd.core.money import parse_money
from guardd.ledger.tailer import LedgerSpec, Tailer

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def test_two_overlapping_cycles_give_one_announcement_and_no_exception(tmp_path: Path):
    ledger = tmp_path / "usage.jsonl"
    ledger.write_text(
        "".join(
            f'{{"ts": "2026-11-21T1{h}:00:00Z", "id": "g{h}", "model": "m{h}", "cost": "2.25"}}\n' for h in range(4)
        )
    )
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
[[ledgers]]
path = "{ledger}"
[[budgets]]
name = "a"
daily = 10
[[budgets]]
name = "b"
daily = 10
match = {{ model = "m1" }}
[[notifiers]]
url = "json://127.0.0.1:9/nowhere"
min_severity = "info"
""")
    config = load_config(str(path))
    async with open_app(config) as app:
        store, events = app.stores.health, app.events
        tailer = Tailer([LedgerSpec(str(ledger))], events, parse_money(1000))
        await tailer.poll()
        tailer.close()
        await app.evaluator.refresh_series()
        engine = app.engine
        await asyncio.gather(engine.cycle(NOW), engine.cycle(NOW))
        rows = await store.fetchall("SELECT budget, title FROM outbox")
        assert [r[0] for r in rows] == ["a"], rows

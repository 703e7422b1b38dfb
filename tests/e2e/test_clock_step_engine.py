"""A wall clock stepped back across midnight, through the engine with a real store and switch file: the ended
window is not re-opened — no new announcement, no new trip — also by an engine started after the step."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardd.app import build, open_app
from guardd.config import load_config
from guardd.core.batch import Parsed

LATE = datetime(2026, 11, 21, 23, 50, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 22, tzinfo=UTC)


async def test_a_backward_step_across_midnight_neither_re_announces_nor_re_trips(tmp_path: Path):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text("""
[guardd]
state_dir = "state"
[[budgets]]
name = "team"
daily = 1
[[notifiers]]
url = "json://127.0.0.1:9/hook"
min_severity = "info"
""")
    config = load_config(str(cfg))
    async with open_app(config) as app:
        store, events = app.stores.health, app.events
        ts = int((LATE - timedelta(minutes=10)).timestamp() * 1000)
        await events.write_batch(Parsed.of([("g:x", ts, '["m",null,null,[]]', 2 * 10**12, 0, 0)]))
        await app.evaluator.refresh_series()
        engine = app.engine
        assert (await engine.cycle(LATE)).tripped
        assert not (await engine.cycle(MIDNIGHT + timedelta(seconds=1))).tripped
        sent = await store.fetchall("SELECT title FROM outbox ORDER BY id")
        assert not (await engine.cycle(LATE + timedelta(minutes=5))).tripped  # the clock stepped back
        restarted = build(config, app.stores).engine
        await restarted.evaluator.refresh_series()
        assert not (await restarted.cycle(LATE + timedelta(minutes=6))).tripped
        assert not (await restarted.cycle(MIDNIGHT + timedelta(minutes=1))).tripped
        assert await store.fetchall("SELECT title FROM outbox ORDER BY id") == sent

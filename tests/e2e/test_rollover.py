"""Window rollover at local midnight, with time injected into the engine (real store, real switch file)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardd.app import open_app
from guardd.client import KillSwitch
from guardd.config import load_config
from guardd.core.batch import Parsed

BERLIN_LATE = datetime(2026, 11, 21, 22, 50, tzinfo=UTC)  # 23:50 in Berlin
BERLIN_MIDNIGHT = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)


async def test_local_midnight_releases_the_switch_and_sends_the_resolved_notice(tmp_path: Path):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text("""
[guardd]
state_dir = "state"
timezone = "Europe/Berlin"
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
        sig = '["m",null,null,[]]'
        ts = int((BERLIN_LATE - timedelta(minutes=10)).timestamp() * 1000)
        await events.write_batch(Parsed.of([("g:x", ts, sig, 2 * 10**12, 0, 0)]))
        await app.evaluator.refresh_series()
        state, engine = app.state, app.engine
        doc = await engine.cycle(BERLIN_LATE)
        assert doc.tripped and doc.scopes["team"].until == BERLIN_MIDNIGHT
        switch = KillSwitch(config.killswitch_path, budgets=["team"])
        assert switch.status()["tripped"] is True
        doc = await engine.cycle(BERLIN_MIDNIGHT + timedelta(milliseconds=50))
        assert not doc.tripped
        switch.check()
        titles = [r[0] for r in await store.fetchall("SELECT title FROM outbox ORDER BY id")]
        assert "TRIPPED" in titles[0] and "window reset" in titles[1]
        history = [h.detail for h in await state.history(None) if h.kind == "switch"]
        assert any(d.startswith("released") for d in history)

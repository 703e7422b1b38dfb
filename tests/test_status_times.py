"""``status --json`` gives every time in the configured zone, with its offset (contract §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from guardd.adapters.instance_lock import InstanceLock
from guardd.app import open_app
from guardd.cli import render
from guardd.config import load_config
from guardd.services import status

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def berlin(tmp_path: Path) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n'
        '[[notifiers]]\nurl = "json://127.0.0.1:9/hook"\n'
        '[[budgets]]\nname = "a"\ndaily = 1\n'
    )
    return path


async def status_doc(tmp_path: Path) -> dict:
    config = load_config(str(berlin(tmp_path)))
    async with open_app(config) as app:
        (notifier,) = config.notifiers
        await app.state.channel_result(notifier.display_url, False, "HTTP 404", NOW)
        return await status.document(config, app.stores, app.evaluator, NOW)


async def test_a_failing_notifier_says_since_when_in_the_configured_zone(tmp_path):
    (notifier,) = (await status_doc(tmp_path))["notifiers"]
    assert notifier["failing_since"] == "2026-11-21T11:00:00+01:00"


async def test_the_store_health_says_since_when_in_the_configured_zone(tmp_path):
    (tmp_path / "state").mkdir()
    lock = InstanceLock.acquire(tmp_path / "state", daemon=True)
    try:
        since = (await status_doc(tmp_path))["store"]["since"]
    finally:
        lock.release()
    moment = datetime.fromisoformat(since)
    assert moment.utcoffset() == moment.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    assert since.endswith(("+01:00", "+02:00"))


async def test_a_ledger_says_its_last_event_in_the_configured_zone(tmp_path):
    (tmp_path / "ledgers").mkdir()
    line = '{"ts": "2026-11-21T09:30:00Z", "id": "g1", "model": "m", "cost": 0.1}\n'
    (tmp_path / "ledgers" / "a.jsonl").write_text(line)
    path = berlin(tmp_path)
    path.write_text(path.read_text() + '[[ledgers]]\npath = "ledgers/a.jsonl"\n')
    config = load_config(str(path))
    async with open_app(config) as app:
        tailer = app.tailer()
        try:
            await tailer.poll()
        finally:
            await tailer.aclose()
        (ledger,) = (await status.document(config, app.stores, app.evaluator, NOW))["ledgers"]
    assert ledger["last_event_at"] == "2026-11-21T10:30:00+01:00"


async def test_openrouter_says_when_it_was_fetched_in_the_configured_zone(tmp_path):
    path = berlin(tmp_path)
    path.write_text(path.read_text() + '[openrouter]\napi_key = "sk-or-v1-' + "ab" * 32 + '"\n')
    config = load_config(str(path), env={})
    async with open_app(config) as app:
        await app.stores.remote.save_poll([], None, None, False, NOW)
        remote = (await status.document(config, app.stores, app.evaluator, NOW))["openrouter"]
    assert remote["fetched_at"] == "2026-11-21T11:00:00+01:00"


def rolling(tmp_path: Path) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n'
        '[[budgets]]\nname = "burn"\ndaily = 5\nrolling = [{ window = "10m", limit = 1 }]\n'
    )
    return path


async def rolling_status(tmp_path: Path) -> dict:
    config = load_config(str(rolling(tmp_path)))
    async with open_app(config) as app:
        return await status.document(config, app.stores, app.evaluator, NOW)


async def test_a_rolling_window_never_resets_and_a_calendar_one_says_when(tmp_path):
    (budget,) = (await rolling_status(tmp_path))["budgets"]
    daily, burn = budget["windows"]
    assert (daily["window"], daily["resets"]) == ("daily", "2026-11-22T00:00:00+01:00")
    assert (burn["window"], burn["resets"]) == ("rolling:10m", None)


async def test_status_for_people_gives_no_reset_time_to_a_rolling_window(tmp_path):
    text = render.status_text(await rolling_status(tmp_path))
    (line,) = [ln for ln in text.splitlines() if "rolling:10m" in ln]
    assert "resets" not in line and "sliding" in line

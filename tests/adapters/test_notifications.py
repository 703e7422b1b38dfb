"""Notifications in process: Slack through a local server, the failing-channel meta-alert, the daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardd.adapters.notifier import Channel, send
from guardd.app import open_app
from guardd.config import load_config
from guardd.services.digest import send_digest
from guardd.store.api import Message

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


async def test_slack_messages_reach_the_webhook_slack_would_be_given(webhook, monkeypatch):
    from apprise.plugins.slack import NotifySlack

    monkeypatch.setattr(NotifySlack, "webhook_url", f"http://127.0.0.1:{webhook.port}/services")
    channel = Channel.build(0, "slack://T1AAAAAAA/B1BBBBBBB/abcdefghijklmnopqrstuvwx", [], "info")
    await send(channel, "guardd WARNING: team crossed 80%", "**daily**: $8 of $10", "warning")
    assert "guardd WARNING: team crossed 80%" in str(webhook.bodies[0])
    assert channel.display == "slack://…"


@pytest.fixture
async def engine(tmp_path: Path, webhook):
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
timezone = "Europe/Berlin"
[[budgets]]
name = "team"
daily = 10
[[notifiers]]
url = "json://127.0.0.1:9/dead"
min_severity = "info"
[[notifiers]]
url = "{webhook.url}"
min_severity = "info"
[alerts]
digest_at = "09:00"
""")
    config = load_config(str(path))
    async with open_app(config) as app:
        yield app.engine


async def test_a_failing_channel_is_announced_once_through_the_others(engine, webhook):
    dead, alive = engine.channels
    message = [Message("team", "warning", "guardd WARNING: x", "body", dead.index, dead.display)]
    await engine.state.enqueue(message, NOW)
    await engine.deliver(NOW)
    await engine.deliver(NOW + timedelta(minutes=1))  # the retry fails again: no second meta-alert
    await engine.deliver(NOW + timedelta(minutes=5))
    titles = webhook.titles()
    assert titles == ["guardd: notifications to json://127.0.0.1:9/… are failing"]
    health = await engine.state.channel_health()
    assert health[dead.display].ok is False and health[alive.display].ok is True


async def test_the_daily_digest_is_sent_once_per_local_date(engine, webhook):
    assert await send_digest(engine.config, engine, engine.state, NOW)
    assert not await send_digest(engine.config, engine, engine.state, NOW + timedelta(minutes=30))
    assert await send_digest(engine.config, engine, engine.state, NOW + timedelta(days=1))
    digests = [t for t in webhook.titles() if "daily summary" in t]
    assert digests == ["guardd daily summary 2026-11-21", "guardd daily summary 2026-11-22"]

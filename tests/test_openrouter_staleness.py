"""OpenRouter's figures are stale until a poll has succeeded: a first poll that fails leaves nothing known, so the
source (``status``'s ``openrouter.stale``, the ``guardd_source_stale`` metric) and the budgets that use it read as
stale at once, never fresh for ``stale_after`` first. Real SQLite state, the real configuration loader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardd.config import load_config
from guardd.core.evaluate import Staleness
from guardd.services.openrouter.view import RemoteView
from guardd.store.sqlite import backend as sqlite

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def config(tmp_path: Path):
    path = tmp_path / "guardd.toml"
    path.write_text("""[guardd]
state_dir = "state"
stale_after = "5m"
[openrouter]
api_key = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000000"
[[budgets]]
name = "account"
source = "openrouter"
daily = 5
""")
    return load_config(str(path), env={})


async def source_after(tmp_path: Path, *polls: tuple[datetime, str | None]) -> Staleness:
    """The source's staleness 1 s after the last of ``polls`` (``(when, error or None for a success)``)."""
    settings = config(tmp_path)
    async with sqlite.open_stores(tmp_path / "guardd.db") as stores:
        for when, error in polls:
            await stores.remote.save_poll([], None, error, False, when)
        view = RemoteView(settings, stores.remote)
        return await view.staleness(polls[-1][0] + timedelta(seconds=1))


async def test_a_failed_first_poll_makes_the_source_stale_at_once(tmp_path):
    stale = await source_after(tmp_path, (NOW, "HTTP 503 from OpenRouter"))
    assert stale.stale and "HTTP 503" in (stale.reason or "")


async def test_a_source_that_never_succeeded_stays_stale_however_recent_its_failures(tmp_path):
    stale = await source_after(tmp_path, (NOW, "timeout"), (NOW + timedelta(minutes=1), "timeout"))
    assert stale.stale


async def test_a_failure_after_a_success_is_stale_only_after_stale_after(tmp_path):
    fresh = await source_after(tmp_path, (NOW, None), (NOW + timedelta(minutes=1), "timeout"))
    assert not fresh.stale


async def test_the_status_of_a_source_that_never_answered_says_stale(tmp_path):
    settings = config(tmp_path)
    async with sqlite.open_stores(tmp_path / "guardd.db") as stores:
        await stores.remote.save_poll([], None, "HTTP 401: key rejected", True, NOW)
        doc = await RemoteView(settings, stores.remote).status(NOW + timedelta(seconds=1))
    assert doc["stale"] is True

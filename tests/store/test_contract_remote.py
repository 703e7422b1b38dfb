"""The OpenRouter half of the storage contract (snapshots, credits, the keys list, polling state, the catalog), run
over both backends: SQLite and PostgreSQL must behave the same, money exact, under concurrent callers too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from guardd.store.api import Credits, KeyUsage, ListedKey, SourceState
from tests.store.backends import BACKENDS, USD, Backend, make_backend

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)
ODD = 1_234_567_890_123_456_789  # pico-dollars: about $1.2 million, to the last pico-dollar


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_backend(request.param, tmp_path, pg_url)


def usage(key: str, at: int, total: int | None, **more) -> KeyUsage:
    return KeyUsage(at, key, label=f"label of {key}", usage=total, **more)


async def test_a_polls_snapshots_come_back_exact_and_the_latest_per_key(backend):
    first = usage("…ab12", MS, USD, usage_daily=7, limit=ODD, limit_reset="daily", disabled=True)
    later = usage("…ab12", MS + 60_000, ODD, usage_weekly=3 * USD, usage_monthly=None, limit_remaining=0)
    other = usage("…cd34", MS, None)
    async with backend.stores() as stores:
        await stores.remote.save_poll([first, other], None, None, False, NOW)
        await stores.remote.save_poll([later], None, None, False, NOW + timedelta(minutes=1))
        assert await stores.remote.latest_usage("…ab12") == [later]
        assert await stores.remote.latest_usage() == [later, other]
        assert await stores.remote.latest_usage("…nope") == []
        assert await stores.remote.polled_keys() == {"…ab12": "label of …ab12", "…cd34": "label of …cd34"}


async def test_the_usage_before_and_after_a_moment_is_the_nearest_snapshots(backend):
    async with backend.stores() as stores:
        for i, total in enumerate((1, 5, 9)):
            await stores.remote.save_poll([usage("k", MS + i * 1000, total * USD)], None, None, False, NOW)
        assert await stores.remote.usage_before("k", MS + 1500) == 5 * USD
        assert await stores.remote.usage_before("k", MS + 1000) == 5 * USD  # at or before
        assert await stores.remote.usage_before("k", MS - 1) is None
        assert await stores.remote.usage_after("k", MS + 1) == 5 * USD
        assert await stores.remote.usage_after("k", MS + 2000) == 9 * USD  # at or after
        assert await stores.remote.usage_after("k", MS + 2001) is None


async def test_a_snapshot_polled_again_at_the_same_moment_replaces_the_first(backend):
    async with backend.stores() as stores:
        await stores.remote.save_poll([usage("k", MS, USD)], None, None, False, NOW)
        await stores.remote.save_poll([usage("k", MS, 2 * USD)], None, None, False, NOW)
        assert [u.usage for u in await stores.remote.latest_usage("k")] == [2 * USD]


async def test_credits_come_back_exact_latest_and_first_since_a_moment(backend):
    async with backend.stores() as stores:
        assert await stores.remote.latest_credits() is None
        await stores.remote.save_poll([], Credits(MS, ODD, USD), None, False, NOW)
        await stores.remote.save_poll([], Credits(MS + 5000, ODD, 2 * USD), None, False, NOW)
        assert await stores.remote.latest_credits() == Credits(MS + 5000, ODD, 2 * USD)
        assert (await stores.remote.latest_credits()).balance == ODD - 2 * USD  # type: ignore[union-attr]
        assert await stores.remote.first_credits_since(MS + 1) == Credits(MS + 5000, ODD, 2 * USD)
        assert await stores.remote.first_credits_since(MS + 5001) is None


async def test_polling_that_fails_keeps_since_when_and_a_success_clears_it(backend):
    async with backend.stores() as stores:
        assert await stores.remote.source("openrouter") is None
        await stores.remote.save_poll([], None, "401 rejected", True, NOW)
        await stores.remote.save_poll([], None, "503 unavailable", False, NOW + timedelta(minutes=1))
        assert await stores.remote.source("openrouter") == SourceState(None, NOW, "503 unavailable", False)
        await stores.remote.save_poll([], None, None, False, NOW + timedelta(minutes=2))
        assert await stores.remote.source("openrouter") == SourceState(NOW + timedelta(minutes=2), None, None, False)


async def test_the_keys_list_is_stored_and_a_key_listed_enabled_is_no_longer_guardds_to_re_enable(backend):
    ours = ListedKey("h1", "prod", "sk-or-v1-ab…12", disabled=False, usage_daily=ODD, limit=USD, limit_remaining=1)
    async with backend.stores() as stores:
        await stores.remote.save_keys([ours, ListedKey("h2")], NOW)
        assert await stores.remote.listed_keys() == [ours, ListedKey("h2")]
        await stores.state.record_key("h1", True, [], "disabled prod", NOW + timedelta(minutes=1))
        [h1, _] = await stores.remote.listed_keys()
        assert (h1.disabled, h1.disabled_by_guardd) == (True, True)
        # A list fetched before that record (the fetch runs beside the worker) leaves the record as it is.
        await stores.remote.save_keys([ours], NOW)
        [h1, _] = await stores.remote.listed_keys()
        assert (h1.disabled, h1.disabled_by_guardd) == (True, True)
        # A later list that still shows it disabled keeps it guardd's; one that shows it enabled does not.
        await stores.remote.save_keys([ListedKey("h1", "prod", disabled=True)], NOW + timedelta(minutes=2))
        assert (await stores.remote.listed_keys())[0].disabled_by_guardd is True
        await stores.remote.save_keys([ListedKey("h1", "prod", disabled=False)], NOW + timedelta(minutes=3))
        [h1, _] = await stores.remote.listed_keys()
        assert (h1.disabled, h1.disabled_by_guardd) == (False, False)


async def test_the_catalog_comes_back_as_it_was_stored(backend):
    pricing = {"prompt": "0.00000015", "completion": "0.0000006", "nested": {"tiers": [1, 2]}}
    async with backend.stores() as stores:
        await stores.remote.save_prices({"openai/gpt-4o-mini": pricing, "free/model": {}}, NOW)
        await stores.remote.save_prices({"free/model": {"prompt": "0"}}, NOW + timedelta(hours=1))
        assert await stores.remote.priced_models() == {"openai/gpt-4o-mini", "free/model"}
        assert await stores.remote.catalog() == {"openai/gpt-4o-mini": pricing, "free/model": {"prompt": "0"}}
        assert await stores.stats.catalog() == await stores.remote.catalog()


async def test_two_pollers_saving_at_once_lose_nothing(backend):
    async with backend.stores("host-a") as a, backend.stores("host-b") as b:

        async def poll(stores, key: str) -> None:
            for i in range(20):
                await stores.remote.save_poll([usage(key, MS + i, i * USD)], Credits(MS + i, ODD, i), None, False, NOW)
                await stores.remote.save_keys([ListedKey(f"{key}-{i}")], NOW)

        await asyncio.gather(poll(a, "ka"), poll(b, "kb"))
        assert [(u.key, u.usage) for u in await a.remote.latest_usage()] == [("ka", 19 * USD), ("kb", 19 * USD)]
        assert len(await b.remote.listed_keys()) == 40
        assert await a.remote.latest_credits() == Credits(MS + 19, ODD, 19)

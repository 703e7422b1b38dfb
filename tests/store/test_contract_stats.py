"""What events say beyond their cost (health facts, token sums, the latest event), run over both backends: what
``write_batch`` stored, :class:`~guardd.store.api.RequestStatsAPI` reads the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guardd.core.batch import HOUR_MS, Parsed, series_id
from guardd.store.api import RequestCounts, TokenSums
from tests.store.backends import BACKENDS, T0, T0_MS, USD, Backend, make_backend, sig

DAY = T0, T0 + timedelta(days=1)
SID = series_id(sig())
Health = tuple[int, int | None, float | None, str | None]  # ok, status, latency ms, error


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_backend(request.param, tmp_path, pg_url)


def batch(*events: tuple[str, int, int | None, int, int, Health | None], model: str = "m") -> Parsed:
    """``(key, ms after T0, cost, prompt tokens, completion tokens, health facts or None)`` events of one series."""
    parsed = Parsed(0, 0, lines=len(events))
    s = sig(model)
    sid = series_id(s)
    parsed.series[sid] = s
    for k, at, cost, prompt, completion, health in events:
        ts = T0_MS + at
        facts = None if health is None else (k, ts, sid, *health)
        parsed.add((k, ts, sid, cost, prompt, completion, 0, 0), (k, prompt, completion, 0, 0), facts)
    parsed.close()
    return parsed


async def test_health_facts_are_counted_per_window_and_every_event_is_a_request(backend):
    async with backend.stores() as stores:
        await stores.events.write_batch(
            batch(
                ("g:ok", 1, USD, 0, 0, None),
                ("g:slow", 2, USD, 0, 0, (1, 200, 850.0, None)),
                ("g:err", 3, 0, 0, 0, (0, 503, 20.5, "upstream")),
                ("g:429", 4, 0, 0, 0, (0, 429, None, None)),
                ("g:later", 2 * HOUR_MS, 0, 0, 0, (0, None, None, "timeout")),
            )
        )
        sample = await stores.stats.health_sample([SID], T0, T0 + timedelta(hours=1))
        assert (sample.requests, sample.errors, sample.rate_limited) == (4, 2, 1)
        assert sorted(sample.latencies_ms) == [20.5, 850.0]
        assert await stores.stats.request_stats(*DAY) == {SID: RequestCounts(3, 1)}
        none = await stores.stats.health_sample([], *DAY)
        assert (none.requests, none.errors) == (0, 0)


async def test_a_later_line_of_a_key_replaces_its_health_facts_or_removes_them(backend):
    async with backend.stores() as stores:
        await stores.events.write_batch(
            batch(("g:a", 1, USD, 0, 0, (0, 500, None, "boom")), ("g:b", 2, USD, 0, 0, None))
        )
        await stores.events.write_batch(
            batch(("g:a", 1, 2 * USD, 0, 0, None), ("g:b", 2, USD, 0, 0, (0, 429, None, None)))
        )
        assert await stores.stats.request_stats(*DAY) == {SID: RequestCounts(1, 1)}


async def test_a_later_lines_health_facts_go_under_the_series_its_event_keeps(backend):
    # who spent is fixed by the first arrival (store/batch_writes.py correct): so is where its outcome counts
    async with backend.stores() as stores:
        await stores.events.write_batch(batch(("g:a", 1, USD, 0, 0, None)))
        await stores.events.write_batch(batch(("g:a", 1, USD, 0, 0, (0, 500, None, "boom")), model="other"))
        sample = await stores.stats.health_sample([SID], *DAY)
        assert (sample.requests, sample.errors) == (1, 1)
        assert set(await stores.stats.request_stats(*DAY)) == {SID}


async def test_token_sums_cover_the_whole_hours_a_range_touches(backend):
    async with backend.stores() as stores:
        await stores.events.write_batch(
            batch(
                ("g:a", 10, USD, 1000, 100, None),
                ("g:b", 20, None, 500, 50, None),
                ("g:c", 26 * HOUR_MS, 3, 7, 1, None),
            )
        )
        sums = await stores.stats.token_sums(T0 + timedelta(minutes=30), T0 + timedelta(minutes=31))
        assert sums == {SID: TokenSums(USD, 2, 1, 1500, 150, 0, 0)}
        whole = await stores.stats.token_sums(T0, T0 + timedelta(days=2))  # whole days come from the day rollups
        assert whole == {SID: TokenSums(USD + 3, 3, 1, 1507, 151, 0, 0)}


async def test_the_latest_event_of_each_series_is_found_within_the_range(backend):
    async with backend.stores() as stores:
        await stores.events.write_batch(batch(("g:a", 5, USD, 0, 0, None), ("g:b", HOUR_MS + 7, USD, 0, 0, None)))
        await stores.events.write_batch(batch(("g:c", 9, USD, 0, 0, None), model="other"))
        everything = await stores.stats.last_event_ms(*DAY)
        first_hour = await stores.stats.last_event_ms(T0, T0 + timedelta(hours=1))
    assert everything == {SID: T0_MS + HOUR_MS + 7, series_id(sig("other")): T0_MS + 9}
    assert first_hour == {SID: T0_MS + 5, series_id(sig("other")): T0_MS + 9}

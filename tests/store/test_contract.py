"""The storage contract, run over both backends (SQLite and PostgreSQL): they must behave the same."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from guardd.core.batch import HOUR_MS, Parsed, series_id, series_sig
from guardd.errors import StoreError
from guardd.store.api import Checkpoint, Priced, Sum
from tests.store.backends import BACKENDS, T0, T0_MS, USD, Backend, batch, make_backend, sig


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_backend(request.param, tmp_path, pg_url)


DAY = T0, T0 + timedelta(days=1)


def checkpoint(offset: int, events: int = 0) -> Checkpoint:
    return Checkpoint("main", "/l.jsonl", 1, 2, "fp", offset, offset, "tail", events, 0, None)


async def test_a_batch_is_summed_exactly_in_its_window(backend):
    async with backend.events() as events:
        result = await events.write_batch(batch(("g:a", 5, 123), ("g:b", 9, 2 * USD), ("g:c", 11, None)))
        total = await events.window_sum(None, *DAY)
    assert (result.stored, result.duplicates, result.unpriced) == (3, 0, 1)
    assert total == Sum(2 * USD + 123, 3, 1)


async def test_a_key_stored_again_counts_once(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD)))
        again = await events.write_batch(batch(("g:a", 5, USD), ("g:b", 6, USD)))
        total = await events.window_sum(None, *DAY)
    assert (again.stored, again.duplicates) == (1, 1)
    assert total == Sum(2 * USD, 2, 0)


async def test_the_last_line_of_a_key_wins_its_cost_and_time_in_the_series_of_the_first(backend):
    late = 3 * HOUR_MS + 7
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD)))
        again = await events.write_batch(batch(("g:a", late, 3 * USD), model="other"))
        first_hour = await events.window_sum(None, T0, T0 + timedelta(hours=1))
        whole_day = await events.grouped_sums(None, *DAY)
    assert (again.stored, again.duplicates) == (0, 1)
    assert first_hour == Sum()
    assert {sid: s for sid, s in whole_day.items() if s != Sum()} == {series_id(sig("m")): Sum(3 * USD, 1, 0)}


async def test_a_second_arrival_without_the_labels_leaves_the_spend_in_the_labelled_series(backend):
    # F9: a Broadcast span (no ledger labels, another model spelling) of a generation a ledger stored.
    labelled = series_id(sig("m", team="search"))
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD)))
        span = Parsed.of([("g:a", T0_MS + 9, series_sig("m-2026-11-01", "k", "P", {}), USD, 10, 5)])
        again = await events.write_batch(span)
        search = await events.window_sum([labelled], *DAY)
        whole_day = await events.grouped_sums(None, *DAY)
    assert (again.stored, again.duplicates) == (0, 1)
    assert search == Sum(USD, 1, 0)
    assert {sid: s for sid, s in whole_day.items() if s != Sum()} == {labelled: Sum(USD, 1, 0)}


async def test_a_checkpoint_is_stored_with_its_batch_counting_its_events(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD), ("g:b", 6, USD)), checkpoint(100, events=4))
        [stored] = await events.checkpoints()
    assert (stored.offset, stored.events, stored.last_event_ms) == (100, 6, int(T0.timestamp() * 1000) + 6)


async def test_a_batch_that_fails_stores_nothing_not_even_its_checkpoint(backend):
    broken = Checkpoint(None, "/l.jsonl", 1, 2, "fp", 9, 9, "", 0, 0, None)  # type: ignore[arg-type]
    async with backend.events() as events:
        with pytest.raises(StoreError):
            await events.write_batch(batch(("g:a", 5, USD)), broken)
        assert await events.window_sum(None, *DAY) == Sum()
        assert await events.checkpoints() == []


async def test_batches_of_a_bulk_load_are_stored_and_summed_like_any_other(backend):
    async with backend.events() as events:
        async with events.bulk_load():
            await events.write_batch(batch(("g:a", 5, USD)))
            await events.write_batch(batch(("g:a", 5, USD), ("g:b", 6, 2 * USD)), checkpoint(10))
        assert await events.window_sum(None, *DAY) == Sum(3 * USD, 2, 0)
        assert [cp.offset for cp in await events.checkpoints()] == [10]


async def test_window_sums_match_the_events_at_every_edge(backend):
    # Events every 37 minutes for three days; windows with edges inside hours, on hours and on days.
    rows = [(f"g:{i}", i * 37 * 60_000 + i, (i % 7) * USD // 3 if i % 5 else None) for i in range(120)]
    windows = [(13, 60 * 49 + 1), (0, 60 * 24), (61, 62), (60 * 23 + 59, 60 * 48 + 1), (0, 60 * 72)]
    async with backend.events() as events:
        await events.write_batch(batch(*rows))
        for a, b in windows:
            start, end = T0 + timedelta(minutes=a), T0 + timedelta(minutes=b)
            inside = [r for r in rows if a * 60_000 <= r[1] < b * 60_000]
            expected = Sum(sum(r[2] or 0 for r in inside), len(inside), sum(r[2] is None for r in inside))
            assert await events.window_sum(None, start, end) == expected, (a, b)


async def test_sums_can_be_limited_to_some_series(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD), model="one"))
        await events.write_batch(batch(("g:b", 5, 2 * USD), model="two"))
        only_two = await events.window_sum([series_id(sig("two"))], *DAY)
        none = await events.grouped_sums([], *DAY)
    assert (only_two, none) == (Sum(2 * USD, 1, 0), {})


async def test_unpriced_events_are_listed_and_priced_with_the_sums_following(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:gen-1", 5, None), ("h:abc", 6, None)))
        unpriced = await events.unpriced_events()
        assert sorted((u.model, u.prompt_tokens, u.completion_tokens, u.generation_id or "") for u in unpriced) == [
            ("m", 10, 5, ""),
            ("m", 10, 5, "gen-1"),
        ]
        count = await events.set_cost([Priced(u.id, 7) for u in unpriced])
        assert count == 2
        assert await events.unpriced_events() == []
        assert await events.set_cost([Priced(u.id, 9) for u in unpriced]) == 0  # already priced
        assert await events.window_sum(None, *DAY) == Sum(14, 2, 0)


async def test_quarantined_lines_are_counted(backend):
    async with backend.events() as events:
        result = await events.write_batch(batch(("g:a", 5, USD), bad=3))
        assert (result.quarantined, await events.quarantine_count()) == (3, 3)


async def test_series_come_back_with_their_dimensions(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD), model="anthropic/claude"))
        series = await events.load_series()
    [(sid, dims)] = series.items()
    assert sid == series_id(sig("anthropic/claude"))
    assert (dims.model, dict(dims.labels)) == ("anthropic/claude", {"team": "search"})


async def test_every_series_ever_stored_stays_though_it_holds_no_spend(backend):
    # what `status` reads to tell a budget whose match never selected anything (core.never_matched)
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD), model="first"))
        await events.write_batch(batch(("g:a", 5, 2 * USD), model="second"))  # the cost is corrected in "first"
    async with backend.events() as events:
        series = await events.load_series()
        spent = await events.grouped_sums(None, *DAY)
    assert sorted(dims.model for dims in series.values()) == ["first", "second"]
    assert {sid: s for sid, s in spent.items() if s != Sum()} == {series_id(sig("first")): Sum(2 * USD, 1, 0)}


async def test_two_writers_storing_overlapping_keys_at_once_leave_exact_totals(backend):
    async with backend.events() as first:
        await first.write_batch(batch())  # create the schema before the race
    keys = range(3000)

    async def write(instance: str, offset: int) -> None:
        async with backend.events(instance) as events:
            for start in range(offset, 3000, 500):
                await events.write_batch(batch(*((f"g:{i}", i, USD) for i in keys[start : start + 700])))

    await asyncio.gather(write("host-a", 0), write("host-b", 250))
    async with backend.events() as events:
        assert await events.window_sum(None, *DAY) == Sum(3000 * USD, 3000, 0)


async def test_hourly_costs_come_from_the_hours_holding_spend(backend):
    async with backend.events() as events:
        await events.write_batch(batch(("g:a", 5, USD), ("g:b", 10, 2 * USD), ("g:c", 2 * HOUR_MS + 1, 4 * USD)))
        hours = await events.hourly_costs(None, T0 + timedelta(minutes=30), T0 + timedelta(hours=5))
        none = await events.hourly_costs([], *DAY)
    t0_ms = int(T0.timestamp() * 1000)
    assert (hours, none) == ([(t0_ms, 3 * USD), (t0_ms + 2 * HOUR_MS, 4 * USD)], [])


@pytest.mark.parametrize("key", ["g:gen-1", "s:0123456789abcdef0123456789abcdef"])
async def test_an_id_counts_once_across_instances(backend, key):
    """Contract §9: "An id counts once across all instances" — a generation id, and one holding a secret (stored
    as ``s:`` + its hash: still a global id), written by two hosts whose ledgers both hold the line."""
    for instance in ("host-a", "host-b"):
        async with backend.events(instance) as events:
            await events.write_batch(batch((key, 5, USD)))
    async with backend.events() as events:
        assert await events.window_sum(None, *DAY) == Sum(USD, 1, 0)

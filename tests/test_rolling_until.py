"""A rolling window's trip is released automatically when enough of the spend that caused it has left the window
(contract §3: ``until`` is when an automatic release is due). ``until`` is that moment, computed from the stored
events, if nothing more is spent: it stands still from one evaluation to the next, and moves only when new spend
keeps the window over its threshold. Real SQLite state, the real configuration loader and evaluator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardd.app import open_app
from guardd.config import load_config
from guardd.core.batch import Parsed, series_sig
from guardd.core.money import parse_money
from guardd.core.switch import decide

T = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SIG = series_sig("m/x", None, None, {})


def spend(key: str, at: datetime, usd: str) -> tuple[str, int, str, int, int, int]:
    return (f"g:{key}", int(at.timestamp() * 1000), SIG, parse_money(usd), 0, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request) -> str:
    """The ``[store]`` section: SQLite in the state folder, or a PostgreSQL schema of the test's own."""
    return "" if request.param == "sqlite" else f'[store]\nurl = "{request.getfixturevalue("pg_url")}"\n'


async def untils(tmp_path: Path, events: list, *moments: datetime, window: str = "10m", store: str = "") -> list:
    """The ``burst`` scope's ``until`` as the switch decides it at each of ``moments`` (None: not tripped)."""
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\n{store}[[budgets]]\nname = "burst"\n'
        f'rolling = [{{ window = "{window}", limit = 1 }}]\n'
    )
    async with open_app(load_config(str(path), env={})) as app:
        await app.events.write_batch(Parsed.of(events))
        await app.evaluator.refresh_series()
        out = []
        for now in moments:
            doc, _ = decide(await app.evaluator.evaluate_all(now), [], "auto", None, now)
            scope = doc.scopes["burst"]
            out.append(scope.until if scope.tripped else None)
        return out


TRIP = [spend("a", T - timedelta(minutes=9), "0.60"), spend("b", T - timedelta(minutes=5), "0.60")]


async def test_until_is_when_enough_of_the_tripping_spend_has_left_the_window(tmp_path):
    # $1.20 of $1.00: once the $0.60 of 09:51 leaves (after 10:01:00), $0.60 remains
    [until] = await untils(tmp_path, TRIP, T)
    assert until == T + timedelta(minutes=1, seconds=1)


async def test_until_stands_still_from_one_evaluation_to_the_next(tmp_path):
    first, later = await untils(tmp_path, TRIP, T, T + timedelta(seconds=30))
    assert first == later


async def test_the_trip_is_released_at_its_until(tmp_path):
    [until, after] = await untils(tmp_path, TRIP, T, T + timedelta(minutes=1, seconds=1))
    assert until == T + timedelta(minutes=1, seconds=1) and after is None


async def test_new_spend_that_keeps_the_window_over_moves_until_later(tmp_path):
    more = [*TRIP, spend("c", T + timedelta(seconds=10), "0.50")]  # $1.70: both $0.60 must leave first
    [until] = await untils(tmp_path, more, T + timedelta(seconds=20))
    assert until == T + timedelta(minutes=5, seconds=1)


async def test_in_a_window_of_days_until_is_read_to_the_event_through_the_rollups(tmp_path, store):
    # A 3-day window: whole days and hours are summed from rollups; the one that crosses is read again finer.
    events = [
        spend("d", T - timedelta(days=2, hours=5, minutes=17, seconds=3), "0.30"),
        spend("e", T - timedelta(days=2, hours=5, minutes=7, seconds=9), "0.30"),  # with it, $0.60 has left
        spend("f", T - timedelta(hours=30), "0.30"),
        spend("g", T - timedelta(minutes=3), "0.50"),  # $1.40 of $1.00: $0.41 must leave
    ]
    [until] = await untils(tmp_path, events, T, window="3d", store=store)
    assert until == T + timedelta(days=1) - timedelta(hours=5, minutes=7, seconds=9) + timedelta(seconds=1)

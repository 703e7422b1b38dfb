"""``guardd report`` reads the store in a number of statements that does not grow with the number of series (every
distinct label set is one: one per conversation when Broadcast turns ``session.id`` into a label), on SQLite and
PostgreSQL. Statements are counted on the store's own connection, never timed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from guardd.app import open_app
from guardd.config import load_config
from guardd.core.batch import Parsed, series_id, series_sig
from guardd.services import report, status
from guardd.store.api import Stores
from tests.store.backends import BACKENDS, T0, T0_MS, USD, Backend, make_backend

UTC_ZONE = ZoneInfo("UTC")
MINUTE = 60_000


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_backend(request.param, tmp_path, pg_url)


@contextmanager
def counting(stores: Stores) -> Iterator[list[str]]:
    """The statements every reader of ``stores`` sends to the database while the block runs (they all share the
    one connection, or pool, that ``stores.health`` is)."""
    db: Any = stores.health
    sent: list[str] = []
    real = db.fetchall

    async def fetchall(sql: str, params: Any = ()) -> Any:
        sent.append(sql)
        return await real(sql, params)

    db.fetchall = fetchall
    try:
        yield sent
    finally:
        del db.fetchall


def session_sig(i: int) -> str:
    return series_sig(f"model-{i % 3}", None, None, {"session": f"sess-{i}", "team": f"t{i % 2}"})


async def store_sessions(stores: Stores, n: int, first: int = 0) -> dict[int, list[int]]:
    """``n`` series (one per session, numbered from ``first``), each with events spread over three days at times
    of its own (some in the first and last minutes of an hour); returns each series' event times."""
    events = []
    times: dict[int, list[int]] = {}
    for i in range(first, first + n):
        for j in range(4):
            ts = T0_MS + ((i * 7919 + j * 104_729) % (72 * 60)) * MINUTE + i % 60
            events.append((f"g:{i}:{j}", ts, session_sig(i), USD, 10, 5))
            times.setdefault(series_id(session_sig(i)), []).append(ts)
    await stores.events.write_batch(Parsed.of(events))
    return times


RANGES = [
    (T0, T0 + timedelta(days=3)),
    (T0 + timedelta(minutes=90), T0 + timedelta(days=2, minutes=17)),
    (T0 + timedelta(hours=5, minutes=1), T0 + timedelta(hours=5, minutes=59)),
    (T0 + timedelta(hours=30, minutes=59), T0 + timedelta(hours=31, minutes=1)),
]


async def test_the_latest_event_of_every_series_is_what_the_events_say_in_every_range(backend):
    async with backend.stores() as stores:
        times = await store_sessions(stores, 40)
        for start, end in RANGES:
            a, b = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
            expected = {
                sid: max(t for t in ts if a <= t < b) for sid, ts in times.items() if any(a <= t < b for t in ts)
            }
            assert await stores.stats.last_event_ms(start, end) == expected, (start, end)


async def statements_for_few_then_many(backend: Backend, read: Any) -> tuple[int, int]:
    """The statements ``read`` sends over 2 series, then over 200 more (more events too, in the same hours)."""
    counts = []
    async with backend.stores() as stores:
        for first, n in ((0, 2), (2, 200)):
            await store_sessions(stores, n, first)
            with counting(stores) as sent:
                await read(stores)
            counts.append(len(sent))
    return counts[0], counts[1]


@pytest.mark.parametrize("start,end", RANGES[:2])
async def test_finding_the_latest_events_takes_as_many_statements_for_many_series_as_for_few(backend, start, end):
    async def read(stores: Stores) -> None:
        assert await stores.stats.last_event_ms(start, end)

    few, many = await statements_for_few_then_many(backend, read)
    assert many == few <= 2


@pytest.mark.parametrize("by", ["model", "label:session", "day"])
async def test_a_report_takes_as_many_statements_for_many_series_as_for_few(backend, by):
    async def read(stores: Stores) -> None:
        doc = await report.build(
            stores.events, stores.stats, by, T0, T0 + timedelta(days=3), UTC_ZONE, T0 + timedelta(days=3)
        )
        assert doc["events"] > 0

    few, many = await statements_for_few_then_many(backend, read)
    assert many == few


@pytest.fixture
def config_path(backend: Backend, tmp_path) -> Path:
    """Budgets over a label (each matches half the series), a tripped rolling window and a health rule over a label,
    on ``backend``'s store."""
    store = "" if backend.kind == "sqlite" else f'[store]\nurl = "{backend.where}"\n'
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n{store}'
        '[[budgets]]\nname = "t0"\nmatch = { team = "t0" }\ndaily = 50\nmonthly = 1000\n'
        'rolling = [{ window = "4d", limit = 1 }]\n'
        '[[budgets]]\nname = "all"\nweekly = 100000\n'
        '[[health]]\nname = "t1"\nmatch = { team = "t1" }\nwindow = "1h"\nerror_rate = 20\n'
    )
    return path


async def test_status_takes_as_many_statements_for_many_series_as_for_few(backend, config_path):
    config = load_config(str(config_path), env={})
    counts = []
    async with open_app(config) as app:
        for first, n in ((0, 2), (2, 200)):
            await store_sessions(app.stores, n, first)
            await app.evaluator.refresh_series()
            with counting(app.stores) as sent:
                doc = await status.document(config, app.stores, app.evaluator, T0 + timedelta(days=3))
            assert doc["budgets"][0]["tripped"]
            counts.append(len(sent))
    assert counts[1] == counts[0]

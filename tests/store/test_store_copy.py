"""``guardd store copy --to URL`` (contract §9): a real SQLite state, made by the real commands, copied into a real
PostgreSQL schema — every table, the same totals per budget window, alert state and history; a target that holds
guardd data, a running daemon, and a table the shared store has no place for are refused, changing nothing; the
URL's password is never printed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from guardd.adapters.instance_lock import InstanceLock
from guardd.client import LedgerWriter
from guardd.core.batch import Parsed
from guardd.errors import StoreError
from guardd.store.copy import TargetNotEmpty, copy_sqlite_file, dollars
from guardd.store.copy_tables import PgColumn, plans
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.state import PgStateStore
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from guardd.store.sqlite.state import StateStore
from tests.pg_fixture import with_schema
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "c4" * 32
MGMT = "mgmt-" + "5d" * 20
PASSWORD = "pw-Copy-Secret-4711"
NOW = datetime.now(UTC)
AT = NOW - (NOW - NOW.replace(hour=0, minute=0, second=0, microsecond=0)) / 2  # today, before now, on any clock


def with_password(url: str) -> str:
    """The test schema's URL with a password (the server trusts every local connection, so it is not checked)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


@pytest.fixture
def state(tmp_path: Path, run_guardd, webhook) -> Path:
    """A state made by the real commands, holding a row in (nearly) every table; returns the config file."""
    with FakeOpenRouter() as fake:
        fake.state.management_key = MGMT
        fake.add_key(KEY, name="prod", usage_daily="3.5", limit=50)
        (tmp_path / "ledgers").mkdir()
        config = tmp_path / "guardd.toml"
        config.write_text(
            '[guardd]\nstate_dir = "state"\ninstance = "web-1"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
            f'[openrouter]\napi_key = "{KEY}"\nmanagement_key = "{MGMT}"\nbase_url = "{fake.base_url}"\n'
            '[[budgets]]\nname = "team"\ndaily = 5\nmonthly = 1000\nforecast = false\nwarn_at = [50, 80]\n'
            '[[budgets]]\nname = "search"\nmatch = { team = "search" }\nweekly = 2\nforecast = false\n'
            f'[[notifiers]]\nurl = "{webhook.url}"\n'
        )
        writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
        at = AT.isoformat()
        writer.write({"ts": at, "id": "gen-1", "model": "openai/gpt-4o", "cost": "4.123456789", "latency_ms": 900})
        writer.write({"ts": at, "model": "openai/gpt-4o", "cost": "0.25", "labels": {"team": "search"}})  # no id
        writer.write({"ts": at, "model": "openai/gpt-4o", "cost": "0.25", "labels": {"team": "search"}})  # again
        writer.write(
            {"ts": at, "id": "gen-2", "model": "nobody/unknown-model", "prompt_tokens": 100, "completion_tokens": 9}
        )
        writer.write({"ts": at, "id": "gen-3", "model": "openai/gpt-4o", "cost": 0.01, "status": 429, "error": "slow"})
        with (tmp_path / "ledgers" / "a.jsonl").open("a") as f:
            f.write("{not json\n")
        assert run_guardd("run", "--once", "-c", str(config)).returncode == 0
    for args in (
        ("silence", "add", "--budget", "search", "--for", "2h", "--reason", "planned batch"),
        ("killswitch", "trip", "--budget", "search", "--reason", "by hand", "--for", "1h"),
    ):
        result = run_guardd(*args, "-c", str(config))
        assert result.returncode == 0, result.stderr
    return config


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def windows() -> list[tuple[datetime, datetime]]:
    """Windows a budget sums: days, weeks, a month, rolling hours, and edges inside hours (raw events)."""
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        (day, day + timedelta(days=1)),
        (day - timedelta(days=day.weekday()), day + timedelta(days=7 - day.weekday())),
        (day.replace(day=1), day.replace(day=1) + timedelta(days=32)),
        (NOW - timedelta(hours=1), NOW),
        (AT - timedelta(seconds=77), AT + timedelta(seconds=59)),
        (datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1)),
    ]


async def test_store_copy_copies_every_table_with_the_same_totals_alert_state_and_history(state, run_guardd, pg_url):
    db = state.parent / "state" / "guardd.db"
    before = table_counts(db)
    empty = {name for name, rows in before.items() if not rows}
    assert not empty, f"the fixture leaves tables empty: {empty}"

    result = run_guardd("store", "copy", "--to", with_password(pg_url), "-c", str(state))
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "postgresql://postgres:…@127.0.0.1" in result.stdout and "'web-1' owns its 1 checkpoint" in result.stdout

    after = pg_counts(pg_url)
    assert {name: after[name] for name in before} == before  # every table, row for row
    assert table_counts(db) == before  # the state itself is unchanged

    async with Store.open(db) as lite, PgStore.open(pg_url, "web-1") as pg:
        sqlite_events, pg_events = EventStore(lite), PgEventStore(pg)
        sqlite_state, pg_state = StateStore(lite), PgStateStore(pg)
        assert await pg_events.load_series() == await sqlite_events.load_series()
        for start, end in windows():
            assert await pg_events.window_sum(None, start, end) == await sqlite_events.window_sum(None, start, end)
            assert await pg_events.grouped_sums(None, start, end) == await sqlite_events.grouped_sums(None, start, end)
        for budget in ("team", "search"):
            states = await pg_state.alert_states(budget)
            assert states == await sqlite_state.alert_states(budget)
        assert any(s.level for s in (await pg_state.alert_states("team")).values())  # a threshold was crossed
        assert await pg_state.history(None) == await sqlite_state.history(None)
        assert await pg_state.silences(NOW) == await sqlite_state.silences(NOW)
        assert await pg_state.overrides() == await sqlite_state.overrides()
        assert await pg_state.switch_doc() == await sqlite_state.switch_doc()
        assert await pg_state.notification_counts() == await sqlite_state.notification_counts()
        assert await pg_events.checkpoints() == await sqlite_events.checkpoints()  # web-1 owns them now
        assert [u.model for u in await pg_events.unpriced_events()] == ["nobody/unknown-model"]
        assert await pg_events.set_aside(None, 10) == await sqlite_events.set_aside(None, 10)

        # A line without an id keeps its key: read again by web-1, it is a duplicate, not new spend.
        (key,) = [r[0] for r in await lite.fetchall("SELECT k FROM events WHERE k LIKE 'h:%' LIMIT 1")]
        row = (await lite.fetchall("SELECT ts, series, cost FROM events WHERE k = ?", (key,)))[0]
        again = Parsed(0, 0, lines=1)
        again.add((key, row[0], row[1], row[2], 0, 0, 0, 0), (key, 0, 0, 0, 0))
        again.close()
        written = await pg_events.write_batch(again)
        assert (written.stored, written.duplicates) == (0, 1)

    async with PgStore.open(pg_url, "web-2") as pg:
        assert await PgEventStore(pg).checkpoints() == []  # another instance reads its own ledgers

    # The identity sequences follow the copied ids: a new silence gets the next id, not one already taken.
    async with PgStore.open(pg_url, "web-1") as pg:
        new_id = await PgStateStore(pg).add_silence("team", NOW + timedelta(hours=1), "", "me", NOW)
        assert new_id == before["silences"] + 1


def test_a_target_holding_guardd_data_is_refused_and_left_unchanged(state, run_guardd, pg_url):
    first = run_guardd("store", "copy", "--to", pg_url, "-c", str(state))
    assert first.returncode == 0, first.stderr
    counts = pg_counts(pg_url)
    with psycopg.connect(pg_url) as conn:
        history = conn.execute("SELECT * FROM history ORDER BY id").fetchall()

    again = run_guardd("store", "copy", "--to", with_password(pg_url), "-c", str(state))
    assert again.returncode == 1
    assert "already holds guardd data" in again.stderr and "nothing was changed" in again.stderr
    assert PASSWORD not in again.stdout + again.stderr
    assert pg_counts(pg_url) == counts
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT * FROM history ORDER BY id").fetchall() == history


async def test_a_store_with_one_event_of_another_instance_is_refused(tmp_path, pg_url):
    async with Store.open(tmp_path / "guardd.db") as lite:
        await EventStore(lite).write_batch(Parsed.of([("g:a", 1, '["m",null,null,[]]', 10**12, 1, 1)]))
    async with PgStore.open(pg_url, "web-2") as pg:
        await PgEventStore(pg).write_batch(Parsed.of([("g:b", 1, '["m",null,null,[]]', 10**12, 1, 1)]))
    with pytest.raises(TargetNotEmpty, match=r"events \(1 row\)"):
        await copy_sqlite_file(tmp_path / "guardd.db", pg_url, "web-1")
    assert pg_counts(pg_url)["events"] == 1


def test_a_running_daemon_on_the_state_is_refused_before_the_target_is_touched(state, run_guardd, pg_url):
    lock = InstanceLock.acquire(state.parent / "state")
    try:
        result = run_guardd("store", "copy", "--to", pg_url, "-c", str(state))
    finally:
        lock.release()
    assert result.returncode == 1
    assert "another guardd (pid " in result.stderr and "stop it first" in result.stderr
    assert pg_counts(pg_url) == {}  # not even the schema was created


async def test_a_table_the_shared_store_has_no_place_for_refuses_the_copy(tmp_path, pg_url):
    db = tmp_path / "guardd.db"
    async with Store.open(db) as lite:
        await EventStore(lite).write_batch(Parsed.of([("g:a", 1, '["m",null,null,[]]', 10**12, 1, 1)]))
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes(text) VALUES ('kept')")
    with pytest.raises(StoreError, match="no table for notes"):
        await copy_sqlite_file(db, pg_url, "web-1")
    assert not any(pg_counts(pg_url).get(t) for t in ("events", "series", "rollups"))


async def test_no_state_database_is_an_error_that_creates_none(tmp_path, pg_url):
    with pytest.raises(StoreError, match="no state database"):
        await copy_sqlite_file(tmp_path / "state" / "guardd.db", pg_url, "web-1")
    assert not (tmp_path / "state").exists()


def test_an_unreachable_store_is_named_without_its_password(state, run_guardd, pg_url):
    url = with_schema(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test", "x")
    result = run_guardd("store", "copy", "--to", url, "-c", str(state))
    assert result.returncode == 1
    assert "cannot" in result.stderr and "127.0.0.1" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_pico_dollars_become_exact_decimal_text():
    assert dollars(1) == "0.000000000001"
    assert dollars(4_123_456_789_000) == "4.123456789000"
    assert dollars(-25 * 10**10) == "-0.250000000000"
    assert dollars(0) == "0.000000000000"
    assert dollars(None) is None
    assert dollars(10**30) == "1000000000000000000.000000000000"


def test_sqlite_s_own_key_hash_never_fills_a_target_column_of_that_name():
    """A target keyed by its own hash of the stored key (no id) gets that hash computed, never SQLite's."""
    source = {"events": (["id", "h", "k", "ts", "series", "cost"], False)}
    target = {
        "events": [
            PgColumn("h", "bigint", True, False),
            *(PgColumn(name, kind, True, False) for name, kind in (("k", "text"), ("ts", "bigint"))),
            PgColumn("series", "bigint", True, False),
            PgColumn("cost", "numeric", False, False),
            PgColumn("instance", "text", True, False),
        ]
    }
    with pytest.raises(StoreError, match=r"events\.h has no value"):
        plans(source, target, "web-1", str.upper)
    (plan,) = plans(source, target, "web-1", str.upper, {("events", "h"): ("k", len)})
    assert [(c.target, c.source) for c in plan.columns] == [
        ("k", "k"),
        ("ts", "ts"),
        ("series", "series"),
        ("cost", "cost"),
        ("h", "k"),
        ("instance", None),
    ]
    assert plan.columns[0].convert is str.upper and plan.columns[4].convert is len and plan.identity is None


def test_a_copied_store_answers_status_as_the_state_did(state, run_guardd, pg_url):
    """The same configuration, pointed at the copy with ``[store] url``, shows the same budgets, windows, ledgers,
    OpenRouter figures and notifiers (what only a shared store has, and the moment of asking, aside)."""
    before = run_guardd("status", "--json", "-c", str(state))
    assert before.returncode == 0, before.stderr
    assert run_guardd("store", "copy", "--to", pg_url, "-c", str(state)).returncode == 0
    shared = state.with_name("shared.toml")
    shared.write_text(state.read_text() + f'[store]\nurl = "{pg_url}"\n')
    after = run_guardd("status", "--json", "-c", str(shared))
    assert after.returncode == 0, after.stderr
    old, new = json.loads(before.stdout), json.loads(after.stdout)
    for key in ("budgets", "ledgers", "openrouter", "notifiers"):
        assert new[key] == old[key], key
    assert [w["spent"] for w in new["budgets"][0]["windows"]] == ["4.633456789", "4.633456789"]

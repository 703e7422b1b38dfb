"""OpenRouter as a live source, against the stand-in server over real sockets (time injected into the poller)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from guardd.adapters.openrouter import OpenRouterClient
from guardd.app import open_app
from guardd.config import load_config
from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from guardd.errors import SourceMalformed, SourceRejected, SourceUnavailable
from guardd.services.openrouter.poll import RemotePoller
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "1a" * 32
OTHER = "sk-or-v1-" + "2b" * 32
MGMT = "mgmt-" + "3c" * 20
BERLIN_EVENING = datetime(2026, 11, 21, 22, 30, tzinfo=UTC)  # 23:30 in Berlin


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request) -> str:
    """Each test runs on both backends: ``[store] url`` absent (SQLite), or a PostgreSQL schema of its own."""
    return "" if request.param == "sqlite" else f'[store]\nurl = "{request.getfixturevalue("pg_url")}"\n'


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.state.management_key = MGMT
        yield server


def write_config(tmp_path: Path, fake: FakeOpenRouter, body: str = "", openrouter: str = "", store: str = "") -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
{store}
[guardd]
state_dir = "state"
timezone = "Europe/Berlin"
stale_after = "5m"
[openrouter]
api_keys = ["{KEY}"]
management_key = "{MGMT}"
base_url = "{fake.base_url}"
timeout = "1s"
{openrouter}
[[notifiers]]
url = "json://127.0.0.1:9/hook"
min_severity = "info"
{body}
""")
    return path


class Rig:
    """guardd as the composition root builds it (:func:`guardd.app.build`), with the OpenRouter parts."""

    def __init__(self, app):
        self.app, self.config, self.store = app, app.config, app.stores.health
        self.events, self.state, self.view = app.events, app.state, app.view
        self.evaluator, self.engine = app.evaluator, app.engine
        self.poller, self.checks = app.openrouter()
        self.poller.client.backoff = 0.01

    async def outbox(self) -> list[str]:
        return [t for (t,) in await self.store.fetchall("SELECT title FROM outbox ORDER BY id")]


@pytest.fixture
async def rig(tmp_path, fake, request, store_url):
    body, openrouter = getattr(request, "param", ("", ""))
    config = load_config(str(write_config(tmp_path, fake, body, openrouter, store_url)))
    async with open_app(config) as app:
        r = Rig(app)
        await r.evaluator.refresh_series()
        yield r
        await r.poller.aclose()


BUDGET = '[[budgets]]\nname = "remote"\nsource = "openrouter"\ndaily = 10\nforecast = false\n'


@pytest.mark.parametrize("rig", [(BUDGET, "")], indirect=True)
async def test_openrouter_spend_in_a_berlin_day_is_usage_now_minus_usage_at_local_midnight(rig, fake):
    key = fake.add_key(KEY, usage_daily="3.00", usage="40")  # UTC-day figures do not match a Berlin day
    await rig.poller.poll(datetime(2026, 11, 20, 22, 59, tzinfo=UTC))  # 23:59 Berlin, the day before
    key.usage_daily = Decimal(0)  # OpenRouter's UTC day resets at 00:00Z (01:00 Berlin)
    key.add(Decimal("2.50"))
    await rig.poller.poll(BERLIN_EVENING)
    (ev,) = await rig.evaluator.evaluate_all(BERLIN_EVENING)
    assert ev.windows[0].spent == parse_money("2.50") and not ev.windows[0].partial


@pytest.mark.parametrize("rig", [(BUDGET, "")], indirect=True)
async def test_without_a_snapshot_before_the_window_the_spend_is_partial_never_zero(rig, fake):
    key = fake.add_key(KEY, usage="40")
    await rig.poller.poll(BERLIN_EVENING - timedelta(hours=1))
    key.add(Decimal("1.25"))
    await rig.poller.poll(BERLIN_EVENING)
    (ev,) = await rig.evaluator.evaluate_all(BERLIN_EVENING)
    assert ev.windows[0].spent == parse_money("1.25") and ev.windows[0].partial


@pytest.mark.parametrize("rig", [(BUDGET, "")], indirect=True)
async def test_a_failing_source_turns_its_budgets_stale_with_the_reason(rig, fake):
    fake.add_key(KEY)
    await rig.poller.poll(BERLIN_EVENING)
    fake.fail("/key", status=500, times=100)
    await rig.poller.poll(BERLIN_EVENING + timedelta(minutes=1))
    (ev,) = await rig.evaluator.evaluate_all(BERLIN_EVENING + timedelta(minutes=2))
    assert ev.state != "stale"  # not yet: within stale_after
    (ev,) = await rig.evaluator.evaluate_all(BERLIN_EVENING + timedelta(minutes=10))
    assert ev.state == "stale" and "HTTP 500" in ev.staleness.reason
    status = await rig.view.status(BERLIN_EVENING + timedelta(minutes=10))
    assert status["stale"] and "HTTP 500" in status["error"]


async def test_429_with_retry_after_is_retried_and_then_answers(fake):
    fake.add_key(KEY, usage="1")
    fake.fail("/key", status=429, times=2, retry_after=0.05, message="Rate limit exceeded")
    async with httpx.AsyncClient(timeout=2) as http:
        info = await OpenRouterClient(http, fake.base_url, backoff=0.01).key_info(KEY)
    assert info["usage"] == 1
    assert sum(1 for r in fake.state.requests if r[1] == "/key") == 3


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ({"status": 401, "message": "User not found."}, SourceRejected, "…1a1a"),
        ({"status": 403, "message": "Key limit exceeded (daily limit)."}, SourceRejected, "Key limit exceeded"),
        ({"status": 503, "times": 10}, SourceUnavailable, "HTTP 503"),
        ({"delay": 1.5, "status": 200, "times": 10}, SourceUnavailable, "timed out"),
        ({"invalid_json": True}, SourceMalformed, "not JSON"),
    ],
    ids=["401", "403-key-limit", "503", "slow", "invalid-json"],
)
async def test_failures_are_translated_at_the_boundary(fake, fault, error, text):
    fake.add_key(KEY)
    fake.fail("/key", **fault)
    async with httpx.AsyncClient(timeout=0.5) as http:
        with pytest.raises(error, match=text) as raised:
            await OpenRouterClient(http, fake.base_url, retries=1, backoff=0.01).key_info(KEY)
    assert KEY not in str(raised.value)


async def test_credits_with_a_normal_key_say_a_management_key_is_needed(fake):
    fake.add_key(KEY)
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(SourceRejected, match="needs a management key"):
            await OpenRouterClient(http, fake.base_url).credits(KEY)


async def test_the_legacy_auth_key_path_is_used_when_key_is_404(fake):
    fake.add_key(KEY, usage="2")
    fake.fail("/key", status=404, times=1, message="Not Found")
    async with httpx.AsyncClient(timeout=2) as http:
        assert (await OpenRouterClient(http, fake.base_url).key_info(KEY))["usage"] == 2


TRIP = '[[budgets]]\nname = "prod"\nmatch = { key = "prod*" }\ndaily = 1\nforecast = false\n'
KEYS_ON = "[killswitch]\ndisable_openrouter_keys = true\n"


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
async def test_a_trip_disables_matching_keys_and_the_release_re_enables_only_what_guardd_disabled(rig, fake):
    ours = fake.add_key(KEY, name="prod-api")
    persons = fake.add_key(OTHER, name="prod-batch", disabled=True)
    unrelated = fake.add_key("sk-or-v1-" + "9f" * 32, name="staging")
    await rig.poller.poll(BERLIN_EVENING)
    sig = '["m","prod-api",null,[]]'
    ts = int((BERLIN_EVENING - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:1", ts, sig, parse_money(2), 0, 0)]))
    await rig.evaluator.refresh_series()
    doc = await rig.engine.cycle(BERLIN_EVENING)
    assert doc.tripped
    assert ours.disabled and persons.disabled and not unrelated.disabled
    await rig.poller.poll(BERLIN_EVENING + timedelta(minutes=1))
    tomorrow = BERLIN_EVENING + timedelta(hours=1)  # 00:30 Berlin: the daily window reset
    doc = await rig.engine.cycle(tomorrow)
    assert not doc.tripped
    assert not ours.disabled and persons.disabled  # the key a person disabled stays off
    assert any("disabled OpenRouter key prod-api" in t for t in await rig.outbox())


@pytest.mark.parametrize("rig", [("", "reconcile_tolerance = 1\n")], indirect=True)
async def test_spend_no_ledger_recorded_raises_a_drift_alert_once(rig, fake):
    key = fake.add_key(KEY, usage="10")
    await rig.poller.poll(datetime(2026, 11, 20, 22, 59, tzinfo=UTC))
    key.add(Decimal("4.10"))
    await rig.poller.poll(BERLIN_EVENING)
    sig = '["m","…1a1a",null,[]]'
    ts = int((BERLIN_EVENING - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:2", ts, sig, parse_money("1.00"), 0, 0)]))
    await rig.checks.run(BERLIN_EVENING)
    await rig.checks.run(BERLIN_EVENING + timedelta(minutes=1))
    titles = await rig.outbox()
    assert titles == ["guardd: $3.10 spent on key …1a1a today that no ledger recorded"]


@pytest.mark.parametrize("rig", [("", 'low_balance = 10\nrunway_warn = "3d"\n')], indirect=True)
async def test_a_low_balance_and_a_short_runway_are_announced(rig, fake):
    key = fake.add_key(KEY, usage="80")
    await rig.poller.poll(BERLIN_EVENING - timedelta(hours=6))
    key.add(Decimal("15"))  # $95 used of $100: $5 left, burning $15 per 6 h
    await rig.poller.poll(BERLIN_EVENING)
    await rig.checks.run(BERLIN_EVENING)
    titles = await rig.outbox()
    assert any("balance is low ($5.00)" in t for t in titles)
    assert any("run out in about" in t for t in titles)


async def poll_then_sum(config, app, events):
    """Poll OpenRouter once at BERLIN_EVENING (pricing what it can), then sum the hour around it."""
    poller = RemotePoller(config, app.remote, events)
    try:
        await poller.poll(BERLIN_EVENING)
    finally:
        await poller.aclose()
    return await events.window_sum(None, BERLIN_EVENING - timedelta(hours=1), BERLIN_EVENING + timedelta(hours=1))


async def test_cost_less_events_are_priced_from_the_catalog_and_the_rest_stay_unpriced(tmp_path, fake, store_url):
    fake.add_key(KEY)
    config = load_config(str(write_config(tmp_path, fake, store=store_url)))
    async with open_app(config) as app:
        events = app.events
        ts = int(BERLIN_EVENING.timestamp() * 1000)
        rows = [
            ("g:a", ts, '["openai/gpt-4o-mini",null,null,[]]', None, 1000, 100),
            ("g:b", ts, '["openrouter/auto",null,null,[]]', None, 1000, 100),
            ("g:c", ts, '["nobody/unknown",null,null,[]]', None, 1000, 100),
        ]
        await events.write_batch(Parsed.of(rows))
        total = await poll_then_sum(config, app, events)
    # 1000 x $0.00000015 + 100 x $0.0000006 = $0.00021, exactly
    assert (total.cost, total.events, total.unpriced) == (parse_money("0.00021"), 3, 2)


async def test_with_price_from_generation_a_cost_less_event_gets_the_billed_figure(tmp_path, fake, store_url):
    fake.add_key(KEY)
    fake.state.generations["gen-77"] = {"id": "gen-77", "total_cost": 0.0123, "usage": 0.0123}
    config = load_config(
        str(write_config(tmp_path, fake, openrouter="price_from_generation = true\n", store=store_url))
    )
    async with open_app(config) as app:
        events = app.events
        ts = int(BERLIN_EVENING.timestamp() * 1000)
        await events.write_batch(Parsed.of([("g:gen-77", ts, '["nobody/unknown",null,null,[]]', None, 5, 5)]))
        total = await poll_then_sum(config, app, events)
    assert (total.cost, total.unpriced) == (parse_money("0.0123"), 0)


async def test_a_cost_less_event_without_token_counts_is_not_priced_at_zero_from_the_catalog(tmp_path, fake, store_url):
    # A stream stopped before its usage chunk is recorded by the client library with its model and no tokens.
    fake.add_key(KEY)
    config = load_config(str(write_config(tmp_path, fake, store=store_url)))
    async with open_app(config) as app:
        ts = int(BERLIN_EVENING.timestamp() * 1000)
        rows = [("g:gen-stopped", ts, '["openai/gpt-4o-mini",null,null,[]]', None, 0, 0)]
        await app.events.write_batch(Parsed.of(rows))
        total = await poll_then_sum(config, app, app.events)
    assert (total.cost, total.events, total.unpriced) == (0, 1, 1)


async def test_a_token_less_event_is_priced_from_generation_once_openrouter_has_its_record(tmp_path, fake, store_url):
    fake.add_key(KEY)
    config = load_config(
        str(write_config(tmp_path, fake, openrouter="price_from_generation = true\n", store=store_url))
    )
    async with open_app(config) as app:
        ts = int(BERLIN_EVENING.timestamp() * 1000)
        rows = [("g:gen-78", ts, '["openai/gpt-4o-mini",null,null,[]]', None, 0, 0)]
        await app.events.write_batch(Parsed.of(rows))
        before = await poll_then_sum(config, app, app.events)  # /generation has no record of it yet
        fake.state.generations["gen-78"] = {"id": "gen-78", "total_cost": 0.0042, "usage": 0.0042}
        after = await poll_then_sum(config, app, app.events)
    assert (before.cost, before.unpriced) == (0, 1) and (after.cost, after.unpriced) == (parse_money("0.0042"), 0)


@pytest.mark.parametrize("rig", [(TRIP + KEYS_ON, "")], indirect=True)
async def test_a_key_list_fetched_before_a_trip_does_not_erase_that_guardd_disabled_the_key(rig, fake):
    ours = fake.add_key(KEY, name="prod-api")
    await rig.poller.poll(BERLIN_EVENING - timedelta(minutes=1))
    ts = int((BERLIN_EVENING - timedelta(minutes=5)).timestamp() * 1000)
    await rig.events.write_batch(Parsed.of([("g:1", ts, '["m","prod-api",null,[]]', parse_money(2), 0, 0)]))
    await rig.evaluator.refresh_series()
    list_keys = rig.poller.client.list_keys

    async def list_then_trip(management_key: str):
        keys = await list_keys(management_key)  # the list as the fetch saw it: the key still enabled
        doc = await rig.engine.cycle(BERLIN_EVENING + timedelta(seconds=10))  # meanwhile the worker trips
        assert doc.tripped and ours.disabled
        return keys

    rig.poller.client.list_keys = list_then_trip
    await rig.poller.poll(BERLIN_EVENING)  # began before the trip, written after it
    rig.poller.client.list_keys = list_keys
    doc = await rig.engine.cycle(BERLIN_EVENING + timedelta(hours=1))  # 00:30 Berlin: the window reset
    assert not doc.tripped
    assert not ours.disabled  # re-enabled: guardd still knew it had disabled the key

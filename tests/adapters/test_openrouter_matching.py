"""A budget's match.key finds its OpenRouter keys by name, label, hash or preview, and never reads $0 in silence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from guardd.adapters.openrouter import OpenRouterClient
from guardd.app import open_app
from guardd.config import load_config
from guardd.core.batch import Parsed
from guardd.core.money import parse_money
from tests.e2e.conftest import free_port
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "1a" * 31 + "c96f"
MGMT = "mgmt-" + "3c" * 20
# 21:00 in New York on 20 November: OpenRouter's UTC day (from 00:00Z) began inside the New York day (05:00Z).
NEW_YORK_EVENING = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.state.management_key = MGMT
        yield server


def config_text(fake: FakeOpenRouter, budget: str, zone: str = "UTC", management: bool = True) -> str:
    mgmt = f'management_key = "{MGMT}"\n' if management else ""
    return (
        f'[guardd]\nstate_dir = "state"\ntimezone = "{zone}"\n'
        f'[openrouter]\napi_keys = ["{KEY}"]\n{mgmt}base_url = "{fake.base_url}"\ntimeout = "2s"\n{budget}'
    )


def budget(match: str, daily: str = "10") -> str:
    return f'[[budgets]]\nname = "remote"\nsource = "openrouter"\nmatch = {{ key = "{match}" }}\ndaily = {daily}\n'


async def evaluate_at(tmp_path: Path, text: str, now: datetime, ledger_rows=()):
    path = tmp_path / "guardd.toml"
    path.write_text(text)
    config = load_config(str(path))
    async with open_app(config) as app:
        if ledger_rows:
            await app.events.write_batch(Parsed.of(list(ledger_rows)))
        poller, _checks = app.openrouter()
        try:
            await poller.poll(now)
        finally:
            await poller.aclose()
        await app.evaluator.refresh_series()
        return await app.evaluator.evaluate_all(now)


async def test_the_stand_in_key_label_is_the_masked_key_and_it_carries_no_name_or_hash(fake):
    fake.add_key(KEY, name="prod-api")
    async with httpx.AsyncClient(timeout=2) as http:
        info = await OpenRouterClient(http, fake.base_url).key_info(KEY)
    assert info["label"] == "sk-or-v1-1a1...c96f" and "name" not in info and "hash" not in info


async def test_the_stand_in_keys_list_pages_by_100_and_omits_disabled_keys_unless_asked(fake):
    for i in range(150):
        fake.add_key(f"sk-or-v1-{i:064x}", name=f"k{i}", disabled=i % 50 == 0)
    async with httpx.AsyncClient(base_url=fake.base_url, headers={"Authorization": f"Bearer {MGMT}"}) as http:
        first = (await http.get("/keys")).json()["data"]
        second = (await http.get("/keys", params={"offset": 100})).json()["data"]
        everything = (await http.get("/keys", params={"include_disabled": "true", "offset": 100})).json()["data"]
    assert (len(first), len(second), len(everything)) == (100, 47, 50)
    async with httpx.AsyncClient(timeout=2) as http:
        listed = await OpenRouterClient(http, fake.base_url).list_keys(MGMT)
    assert len(listed) == 150


@pytest.mark.parametrize(
    "pattern",
    ["prod-api", "prod-*", "sk-or-v1-1a1...c96f", "…c96f", "HASH"],
    ids=["name", "name-glob", "label", "preview", "hash"],
)
async def test_an_openrouter_budget_reads_its_key_by_any_of_its_names(tmp_path, fake, pattern):
    key = fake.add_key(KEY, name="prod-api", usage_daily="1.20", usage="30")
    pattern = key.hash if pattern == "HASH" else pattern
    (ev,) = await evaluate_at(tmp_path, config_text(fake, budget(pattern)), NEW_YORK_EVENING)
    assert ev.windows[0].spent == parse_money("1.20") and ev.state == "ok", ev.staleness


async def test_a_key_known_only_to_the_keys_list_is_read_by_its_name(tmp_path, fake):
    fake.add_key(KEY, name="prod-api")
    fake.add_key("sk-or-v1-" + "7e" * 32, name="batch", usage_daily="2.50", usage="9")  # no API key configured
    (ev,) = await evaluate_at(tmp_path, config_text(fake, budget("batch")), NEW_YORK_EVENING)
    assert ev.windows[0].spent == parse_money("2.50")


async def test_a_budget_whose_key_pattern_matches_no_key_is_stale_not_zero_and_ok(tmp_path, fake):
    fake.add_key(KEY, name="prod-api", usage_daily="1.20")
    (ev,) = await evaluate_at(tmp_path, config_text(fake, budget("staging")), NEW_YORK_EVENING)
    assert ev.state == "stale" and ev.staleness.reason.startswith("matches no OpenRouter key")


def unreachable(text: str, fake: FakeOpenRouter) -> str:
    return text.replace(fake.base_url, f"http://127.0.0.1:{free_port()}/api/v1")


async def test_a_budget_whose_keys_were_never_fetched_is_not_said_to_match_no_key(tmp_path, fake):
    text = unreachable(config_text(fake, budget("staging")), fake)
    (ev,) = await evaluate_at(tmp_path, text, NEW_YORK_EVENING)
    assert ev.state == "stale" and "matches no OpenRouter key" not in ev.staleness.reason
    assert ev.staleness.reason.startswith("OpenRouter has not answered a poll yet"), ev.staleness.reason


def test_check_is_unknown_for_a_key_budget_when_openrouter_was_never_reached(run_guardd, tmp_path, fake):
    path = tmp_path / "guardd.toml"
    path.write_text(unreachable(config_text(fake, budget("staging")), fake))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3 and "remote stale" in result.stdout, result.stdout
    status = run_guardd("status", "-c", str(path)).stdout
    assert "matches no OpenRouter key" not in status and "unknown" in status, status


async def test_in_new_york_a_utc_day_that_began_inside_the_local_day_is_a_lower_bound(tmp_path, fake):
    fake.add_key(KEY, name="prod-api", usage_daily="1.20", usage="30")
    text = config_text(fake, budget("prod-api", daily="1"), zone="America/New_York")
    (ev,) = await evaluate_at(tmp_path, text, NEW_YORK_EVENING)
    daily = ev.windows[0]
    assert daily.spent >= parse_money("1.20") and daily.partial and ev.tripped


async def test_a_ledger_budget_by_key_name_takes_lines_that_name_the_key_by_its_preview(tmp_path, fake):
    fake.add_key(KEY, name="prod-api")
    ts = int(NEW_YORK_EVENING.timestamp() * 1000) - 60_000
    rows = [("g:1", ts, '["m","…c96f",null,[]]', parse_money("0.40"), 0, 0)]
    text = config_text(fake, '[[budgets]]\nname = "l"\nmatch = { key = "prod-*" }\ndaily = 10\n')
    (ev,) = await evaluate_at(tmp_path, text, NEW_YORK_EVENING, rows)
    assert ev.windows[0].spent == parse_money("0.40")


def test_config_check_warns_about_a_key_pattern_that_matches_no_stored_key(run_guardd, tmp_path, fake):
    fake.add_key(KEY, name="prod-api", usage_daily=Decimal("0.5"))
    path = tmp_path / "guardd.toml"
    path.write_text(config_text(fake, budget("stagin*")))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    checked = run_guardd("config", "check", "-c", str(path))
    assert checked.returncode == 0
    assert "budgets[0].match.key: 'stagin*' matches no OpenRouter key" in checked.stderr
    assert "prod-api" in checked.stderr


def test_check_is_unknown_for_a_budget_whose_key_matches_nothing(run_guardd, tmp_path, fake):
    fake.add_key(KEY, name="prod-api")
    path = tmp_path / "guardd.toml"
    path.write_text(config_text(fake, budget("staging")))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3 and "remote stale" in result.stdout, result.stdout


async def test_reconciliation_counts_ledger_lines_that_name_the_key_by_its_name(tmp_path, fake):
    key = fake.add_key(KEY, name="prod-api", usage="10")
    path = tmp_path / "guardd.toml"
    path.write_text(config_text(fake, "").replace('timeout = "2s"\n', 'timeout = "2s"\nreconcile_tolerance = 1\n'))
    config = load_config(str(path))
    async with open_app(config) as app:
        events, state = app.events, app.state
        poller, checks = app.openrouter()
        try:
            await poller.poll(datetime(2026, 11, 20, 23, 59, tzinfo=UTC))
            key.usage_daily = Decimal(0)
            key.add(Decimal("4.10"))
            await poller.poll(NEW_YORK_EVENING)
        finally:
            await poller.aclose()
        ts = int(NEW_YORK_EVENING.timestamp() * 1000) - 60_000
        await events.write_batch(Parsed.of([("g:r", ts, '["m","prod-api",null,[]]', parse_money("4.00"), 0, 0)]))
        await checks.reconcile(NEW_YORK_EVENING)
        assert [h for h in await state.history(None) if "no ledger recorded" in h.detail] == []


def test_a_budget_the_switch_trips_for_stale_data_is_shown_tripped(run_guardd, tmp_path, fake):
    closed = budget("staging") + 'on_stale = "closed"\n'
    path = tmp_path / "guardd.toml"
    path.write_text(unreachable(config_text(fake, closed), fake))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    assert doc["killswitch"]["scopes"]["remote"]["tripped"] is True
    (shown,) = doc["budgets"]
    assert (shown["state"], shown["tripped"]) == ("stale", True)


def test_status_for_people_says_the_switch_trips_a_budget_for_stale_data(run_guardd, tmp_path, fake):
    closed = budget("staging") + 'on_stale = "closed"\n'
    path = tmp_path / "guardd.toml"
    path.write_text(unreachable(config_text(fake, closed), fake))
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    (line,) = [ln for ln in run_guardd("status", "-c", str(path)).stdout.splitlines() if ln.startswith("remote ")]
    assert "[STALE]" in line and "the kill-switch trips it: data is stale" in line, line

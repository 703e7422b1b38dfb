"""``status`` and ``check`` say when a ledger budget's ``match`` selects none of the series ever stored (a typo:
$0 and OK forever otherwise, review finding F7), read from the real series table of either backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardd.app import open_app
from guardd.cli import render
from guardd.config import load_config
from guardd.core.batch import Parsed, series_sig
from guardd.services import status

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
USD = 10**12
BUDGETS = {
    "typo-key": '{ teem = "search" }',
    "typo-model": '{ model = "anthropc/*" }',
    "new-team": '{ team = "growth" }',
    "search": '{ team = "search" }',
    "ads-last-week": '{ team = "ads" }',
    "all": "{}",
}


def config_file(tmp_path: Path, store: str) -> Path:
    budgets = "".join(f'[[budgets]]\nname = "{n}"\nmatch = {m}\ndaily = 1\n' for n, m in BUDGETS.items())
    path = tmp_path / "guardd.toml"
    path.write_text(f'{store}\n[guardd]\nstate_dir = "state"\ninstance = "host-a"\n{budgets}')
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request) -> str:
    if request.param == "sqlite":
        return ""
    return f'[store]\nurl = "{request.getfixturevalue("pg_url")}"'


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


EVENTS = Parsed.of(
    [
        ("g:1", ms(NOW), series_sig("anthropic/claude", None, None, {"team": "search", "env": "prod"}), USD, 1, 1),
        ("g:2", ms(NOW - timedelta(days=7)), series_sig("openai/gpt-4o", None, None, {"team": "ads"}), USD, 1, 1),
    ]
)


async def document(tmp_path: Path, store: str, events: bool = True) -> dict:
    config = load_config(str(config_file(tmp_path, store)))
    async with open_app(config) as app:
        if events:
            await app.events.write_batch(EVENTS)
            await app.evaluator.refresh_series()
        return await status.document(config, app.stores, app.evaluator, NOW)


def gaps(doc: dict) -> dict[str, dict | None]:
    return {b["name"]: b["never_matched"] for b in doc["budgets"]}


async def test_a_label_key_no_event_carried_is_a_warning_naming_the_keys_seen(tmp_path, store):
    gap = gaps(await document(tmp_path, store))["typo-key"]
    assert gap is not None and gap["level"] == "warning"
    assert gap["message"] == "label key 'teem' was never seen; seen keys: env, team"
    assert gap["parts"] == [{"name": "teem", "pattern": "search", "unseen": "key", "seen": ["env", "team"]}]


async def test_a_model_glob_that_matched_no_model_is_a_warning(tmp_path, store):
    gap = gaps(await document(tmp_path, store))["typo-model"]
    assert gap is not None and gap["level"] == "warning"
    assert gap["message"] == "model 'anthropc/*' matched no model seen; seen: anthropic/claude, openai/gpt-4o"


async def test_a_label_value_never_seen_is_a_notice(tmp_path, store):
    gap = gaps(await document(tmp_path, store))["new-team"]
    assert gap is not None and gap["level"] == "notice"


async def test_budgets_that_matched_a_series_say_nothing_even_without_spend_in_their_window(tmp_path, store):
    doc = await document(tmp_path, store)
    found = gaps(doc)
    assert (found["search"], found["ads-last-week"], found["all"]) == (None, None, None)
    ads = next(b for b in doc["budgets"] if b["name"] == "ads-last-week")
    assert ads["windows"][0]["spent"] == "0.00"


async def test_nothing_is_said_before_any_event_is_stored(tmp_path, store):
    assert set(gaps(await document(tmp_path, store, events=False)).values()) == {None}


async def test_status_for_people_names_the_budget_and_what_matched_nothing(tmp_path, store):
    text = render.status_text(await document(tmp_path, store))
    assert "  MATCHES NOTHING EVER STORED: label key 'teem' was never seen; seen keys: env, team" in text
    assert "  matched nothing stored yet: label team = 'growth' matched no value seen; seen: ads, search" in text

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from guardd.core.budgets import Dimensions, matches
from guardd.core.forecast import project
from guardd.core.money import parse_money
from guardd.core.periods import window_at
from guardd.core.redact import clean_secret, mask, redact_text

DIMS = Dimensions("anthropic/claude-3.5-sonnet", "…abc1", "Anthropic", (("team", "search"),))


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({}, True),
        ({"model": "anthropic/*"}, True),
        ({"model": "openai/*"}, False),
        ({"team": "search", "model": "anthropic/*"}, True),
        ({"team": "chat"}, False),
        ({"user": "u1"}, False),
        ({"user": "*"}, True),
        ({"key": "…abc?"}, True),
        ({"provider": "anthropic"}, False),
    ],
    ids=[
        "empty",
        "model-glob",
        "other-model",
        "all-must-match",
        "label-differs",
        "missing-label",
        "star-takes-missing",
        "key-glob",
        "case-sensitive",
    ],
)
def test_a_match_table_selects_spend(match, expected):
    assert matches(match, DIMS) is expected


WINDOW = window_at("daily", ZoneInfo("UTC"), datetime(2026, 11, 21, 12, tzinfo=UTC))


def test_the_forecast_extrapolates_the_recent_burn_rate_to_the_window_end():
    now = WINDOW.start + timedelta(hours=12)
    forecast = project(WINDOW, now, parse_money(6), parse_money(3), 30, parse_money(10))
    # $3 over the 6 h lookback = $0.50/h; 12 h remain: 6 + 6 = $12; the $10 limit is reached in 8 h
    assert forecast.projected == parse_money(12) and forecast.rate_per_hour == parse_money("0.5")
    assert forecast.limit_at == now + timedelta(hours=8)


@pytest.mark.parametrize(
    ("elapsed", "events"), [(timedelta(minutes=30), 30), (timedelta(hours=12), 1)], ids=["too-early", "one-event"]
)
def test_no_forecast_from_too_little_history(elapsed, events):
    assert project(WINDOW, WINDOW.start + elapsed, parse_money(1), parse_money(1), events, parse_money(10)) is None


def test_secrets_are_shown_as_their_last_four_characters():
    key = "sk-or-v1-" + "ab" * 30 + "wxyz"
    assert mask(key) == "…wxyz"
    text = redact_text(f"failed with key {key} and Authorization: Bearer {key} at mailtos://u:hunter22@smtp.x")
    assert key not in text and "hunter22" not in text and text.count("…wxyz") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer sk-or-v1-" + "ab" * 30 + "wxyz", "…wxyz"),
        ("bearer  sk-ant-api03-" + "cd" * 20 + "wxyz", "…wxyz"),
        ("sk-" + "ef" * 20 + "wxyz", "…wxyz"),
        ("prod", "prod"),
        ("team_sk-or-v1-" + "ab" * 30 + "wxyz", "team_…wxyz"),
    ],
    ids=["bearer-openrouter", "bearer-anthropic-lowercase", "plain", "a-name", "inside-a-word"],
)
def test_a_key_field_holding_a_secret_in_any_spelling_is_stored_masked(text, expected):
    assert clean_secret(text) == expected


def test_a_word_ending_in_sk_is_not_taken_for_a_key():
    assert redact_text("task-scheduler-nightly-rebuild") == "task-scheduler-nightly-rebuild"

"""What an alert message says about each window of its budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from guardd.core.alerts import Announcement, Change
from guardd.core.budgets import Budget, RollingLimit
from guardd.core.evaluate import WindowSpend, evaluate
from guardd.core.money import parse_money
from guardd.core.periods import rolling_window, window_at
from guardd.services.messages import render

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
BUDGET = Budget("burn", daily=parse_money(5), rolling=(RollingLimit(timedelta(minutes=10), parse_money(1)),))


def body() -> str:
    daily = WindowSpend(window_at("daily", BERLIN, NOW), parse_money(5), parse_money("0.9"))
    burn = WindowSpend(rolling_window(timedelta(minutes=10), NOW), parse_money(1), parse_money("0.9"))
    ev = evaluate(BUDGET, [daily, burn], NOW)
    change = Change("rolling:10m", "threshold", "warning", 90.0, 80.0, parse_money("0.9"), parse_money(1))
    return render(Announcement("burn", "warning", (change,), NOW), ev, None, BERLIN)[1]


def test_a_calendar_window_says_when_it_resets():
    (line,) = [ln for ln in body().splitlines() if ln.startswith("- daily:")]
    assert "resets 2026-11-22 00:00 CET" in line


def test_a_rolling_window_is_not_said_to_reset():
    (line,) = [ln for ln in body().splitlines() if ln.startswith("- rolling:10m:")]
    assert "resets" not in line and "sliding" in line

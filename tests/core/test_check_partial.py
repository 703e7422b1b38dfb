"""``guardd check`` on a window whose figure is only a lower bound (``partial``), in the pure core (review F12)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from guardd.core.budgets import Budget
from guardd.core.check_line import check_result
from guardd.core.evaluate import WindowSpend, evaluate
from guardd.core.money import parse_money
from guardd.core.periods import window_at

NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)
REMOTE = Budget("remote", daily=parse_money(10), source="openrouter")
WHY = "guardd has no reading of key …aaa1 from before this window began"


def check(spent: str, partial: bool, why: str | None = WHY) -> tuple[int, str]:
    window = window_at("daily", ZoneInfo("UTC"), NOON)
    spend = WindowSpend(window, parse_money(10), parse_money(spent), partial=partial, partial_reason=why)
    return check_result([evaluate(REMOTE, [spend], NOON)], switch_tripped=False)


def test_a_partial_window_within_its_limit_is_a_warning_that_says_why():
    code, line = check("1", partial=True)
    assert code == 1 and f"remote daily: a lower bound ({WHY})" in line, line


def test_a_whole_window_within_its_limit_is_ok():
    assert check("1", partial=False, why=None)[0] == 0


def test_a_partial_window_past_its_trip_threshold_is_critical_still():
    code, line = check("12", partial=True)
    assert code == 2 and "a lower bound" not in line, line


def test_a_partial_window_with_no_reason_given_still_warns():
    code, line = check("1", partial=True, why=None)
    assert code == 1 and "remote daily: a lower bound (the source covers only part of the window)" in line, line

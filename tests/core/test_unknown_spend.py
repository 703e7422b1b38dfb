"""A window whose spend is not known (OpenRouter never gave a figure) in the pure core: stale, never $0 and OK."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from guardd.core.alerts import Policy, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import Staleness, WindowSpend, evaluate
from guardd.core.money import parse_money
from guardd.core.periods import window_at
from guardd.core.switch import decide
from guardd.store.shared import doc_from_json

NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)
REMOTE = Budget("remote", daily=parse_money(10), warn_at=(50.0, 80.0), source="openrouter")
BOTH = Budget("both", daily=parse_money(10), warn_at=(50.0, 80.0), source="max")
CLOSED = Budget("remote", daily=parse_money(10), source="openrouter", on_stale="closed")


def ev(spent, budget=REMOTE, now=NOON, unknown=("openrouter",)):
    window = window_at("daily", ZoneInfo("UTC"), now)
    amount = None if spent is None else parse_money(spent)
    return evaluate(budget, [WindowSpend(window, parse_money(10), amount, unknown=unknown)], now)


def test_an_unknown_spend_is_stale_with_no_percent_and_no_headroom():
    (w,) = ev(None).windows
    assert (w.state, w.spent, w.percent, w.headroom, w.thresholds_crossed) == ("stale", None, None, None, ())


def test_an_unknown_spend_makes_the_budget_stale_even_when_its_source_is_not_said_stale():
    shown = ev(None)
    assert (shown.state, shown.headroom, shown.spend_unknown) == ("stale", None, True)


def test_an_unknown_spend_is_said_unknown_to_people():
    (w,) = ev(None).windows
    assert (w.spent_text, w.percent_text) == ("unknown", "?%")


@pytest.mark.parametrize(
    ("ledger", "state", "crossed"),
    [("1", "stale", ()), ("6", "stale", (50.0,)), ("12", "tripped", (50.0, 80.0))],
    ids=["ok-below-stale", "warning-below-stale", "a-trip-the-lower-bound-proves"],
)
def test_with_max_the_known_part_is_a_lower_bound_that_proves_only_what_it_passes(ledger, state, crossed):
    (w,) = ev(ledger, BOTH).windows
    assert (w.state, w.thresholds_crossed, w.headroom, w.partial) == (state, crossed, None, True)
    assert w.spent_text.startswith("at least $")


def test_a_wholly_known_spend_is_unchanged():
    (w,) = ev("3", BOTH, unknown=()).windows
    assert (w.state, w.headroom, w.known) == ("ok", parse_money(7), True)


def test_the_switch_offers_no_headroom_and_no_spent_for_an_unknown_spend():
    doc, changes = decide([ev(None)], [], "auto", None, NOON)
    scope = doc.to_json()["scopes"]["remote"]
    assert (scope["tripped"], scope["spent"], scope["headroom"], scope["limit"]) == (False, None, None, "10.00")
    assert changes == []


def test_an_unknown_spend_trips_a_budget_whose_on_stale_is_closed():
    doc, _ = decide([ev(None, CLOSED)], [], "auto", None, NOON)
    assert doc.scopes["remote"].tripped and doc.scopes["remote"].window == "stale"


def test_a_trip_stays_while_the_tripping_window_spend_turns_unknown():
    tripped, _ = decide([ev("10", unknown=())], [], "auto", None, NOON)
    later = NOON + timedelta(minutes=5)
    doc, changes = decide([ev(None, now=later)], [], "auto", tripped, later)
    assert doc.scopes["remote"].tripped and doc.scopes["remote"].reason == tripped.scopes["remote"].reason
    assert changes == []


def test_a_trip_held_while_unknown_is_released_when_its_window_resets():
    tripped, _ = decide([ev("10", unknown=())], [], "auto", None, NOON)
    tomorrow = NOON + timedelta(days=1)
    doc, (change,) = decide([ev(None, now=tomorrow)], [], "auto", tripped, tomorrow)
    assert not doc.scopes["remote"].tripped and change.reason == "the daily window reset"


def test_a_stored_switch_document_keeps_an_unknown_headroom_unknown():
    doc, _ = decide([ev(None)], [], "auto", None, NOON)
    stored = doc_from_json(doc.to_json())
    again, _ = decide([ev(None)], [], "auto", stored, NOON + timedelta(seconds=30))
    assert stored.scopes["remote"].headroom is None and again.updated_at == doc.updated_at


def test_alerts_resolve_nothing_while_the_spend_is_unknown():
    state, first = step({}, ev("10", unknown=()), Policy(), NOON)
    state, later = step(state, ev(None), Policy(), NOON + timedelta(minutes=5))
    assert first.changes[0].what == "trip" and state["daily"].tripped
    assert [c.what for c in later.changes] == ["stale"]  # said once, for the budget; nothing "resolved"


def test_with_max_a_lower_bound_below_the_trip_resolves_nothing():
    state, _ = step({}, ev("10", BOTH, unknown=()), Policy(), NOON)
    state, later = step(state, ev("3", BOTH), Policy(), NOON + timedelta(minutes=5))
    assert [c.what for c in later.changes] == ["stale"]
    assert state["daily"].tripped and state["daily"].level == 80.0


def test_a_budget_whose_spend_is_unknown_says_why_it_is_stale():
    shown = ev(None)
    assert shown.staleness.stale and shown.staleness.reason == "the spend from openrouter is not known: no figure yet"


def test_a_reason_the_source_gives_for_being_stale_is_kept():
    window = window_at("daily", ZoneInfo("UTC"), NOON)
    spend = WindowSpend(window, parse_money(10), None, unknown=("openrouter",))
    shown = evaluate(REMOTE, [spend], NOON, Staleness(True, None, "GET /key: connection refused"))
    assert shown.staleness.reason == "GET /key: connection refused"

"""Time only moves forward for windows: a wall clock stepped back never re-opens a window instance that ended."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from guardd.core.alerts import Policy, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import WindowSpend, evaluate
from guardd.core.money import parse_money
from guardd.core.periods import forward_now, window_at
from guardd.core.switch import decide

UTC_ZONE = ZoneInfo("UTC")
BUDGET = Budget("team", daily=parse_money(10), warn_at=(50.0, 80.0))
LATE = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 22, tzinfo=UTC)
SPENT = {"2026-11-21": 12, "2026-11-22": 1}  # yesterday over the limit, today not


def ev(now: datetime):
    window = window_at("daily", UTC_ZONE, now)
    return evaluate(
        BUDGET, [WindowSpend(window, BUDGET.daily, parse_money(SPENT.get(str(window.start.date()), 0)))], now
    )


def announcements(clock: list[datetime], *, forward: bool) -> list[list[str]]:
    """Run the alert state machine at each wall-clock reading; with ``forward``, as the daemon does."""
    state: dict = {}
    high: datetime | None = None
    out = []
    for wall in clock:
        now = forward_now(wall, high) if forward else wall
        high = now
        state, ann = step(state, ev(now), Policy(), now)
        out.append([c.what for c in ann.changes] if ann else [])
    return out


BACK_ACROSS_MIDNIGHT = [
    LATE,
    MIDNIGHT + timedelta(minutes=1),
    LATE + timedelta(seconds=30),
    MIDNIGHT + timedelta(minutes=2),
]


def test_a_backward_step_across_midnight_announces_nothing_and_re_trips_nothing():
    assert announcements(BACK_ACROSS_MIDNIGHT, forward=True) == [["trip"], ["reset"], [], []]


def test_the_alert_state_machine_alone_never_re_opens_an_ended_instance():
    assert announcements(BACK_ACROSS_MIDNIGHT, forward=False) == [["trip"], ["reset"], [], []]


def test_the_switch_is_not_tripped_again_by_a_backward_step():
    high = forward_now(MIDNIGHT + timedelta(minutes=1), None)
    now = forward_now(LATE + timedelta(seconds=30), high)
    doc, _changes = decide([ev(now)], [], "window", None, now, timedelta(minutes=10))
    assert not doc.tripped and now == high


def test_a_forward_step_past_a_window_end_resets_it_at_the_next_evaluation():
    evaluate_every = timedelta(seconds=30)
    clock = [LATE, LATE + timedelta(days=2), LATE + timedelta(days=2) + evaluate_every]
    assert announcements(clock, forward=True)[1] == ["reset"]


def test_forward_now_is_the_latest_time_seen():
    assert forward_now(LATE, None) == LATE
    assert forward_now(LATE, MIDNIGHT) == MIDNIGHT
    assert forward_now(MIDNIGHT, LATE) == MIDNIGHT

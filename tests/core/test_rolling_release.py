"""When a tripped rolling window releases (pure): which step of its spend must leave, and when it has left."""

from datetime import UTC, datetime, timedelta

from guardd.core.rolling import Crossing, crossing, leaves_at, must_leave

T_MS = 1_795_000_000_000


def test_one_pico_dollar_over_the_threshold_must_leave_with_the_excess():
    assert must_leave(spent=150, trip=100) == 51


def test_the_crossing_is_the_oldest_step_by_which_enough_has_left():
    steps = [(1, 1, 30), (5, 9, 40), (12, 12, 50)]
    assert crossing(steps, 60) == Crossing(5, 9, 30)


def test_steps_that_hold_less_than_must_leave_name_no_crossing():
    assert crossing([(1, 1, 30)], 31) is None


def test_spend_leaves_a_window_just_after_its_length_rounded_up_to_the_second():
    at = datetime.fromtimestamp(T_MS / 1000, UTC)
    assert leaves_at(T_MS, timedelta(minutes=10)) == at + timedelta(minutes=10, seconds=1)
    assert leaves_at(T_MS + 500, timedelta(minutes=10)) == at + timedelta(minutes=10, seconds=1)

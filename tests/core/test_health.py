"""Health rules (contract §11): each condition at its boundary, min_requests, nearest-rank p95, and the alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from guardd.core.alerts import Policy
from guardd.core.health import HealthRule, HealthSample, evaluate_health, p95, step

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def rule(**conditions: object) -> HealthRule:
    return HealthRule(name="anthropic", window=WINDOW, min_requests=20, **conditions)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("errors", "state"),
    [(7, "ok"), (8, "ok"), (9, "warning")],
    ids=["just below 20%", "at 20%", "just above 20%"],
)
def test_error_rate_fires_only_above_its_percent(errors, state):
    assert evaluate_health(rule(error_rate=20), HealthSample(requests=40, errors=errors)).state == state


@pytest.mark.parametrize(
    ("slowest", "state"),
    [(9999.0, "ok"), (10000.0, "ok"), (10001.0, "warning")],
    ids=["just below 10s", "at 10s", "just above 10s"],
)
def test_latency_p95_fires_only_above_its_duration(slowest, state):
    # 20 latencies: the nearest-rank p95 is the 19th smallest.
    latencies = [100.0] * 18 + [slowest, 60000.0]
    sample = HealthSample(requests=20, latencies_ms=latencies)
    assert evaluate_health(rule(latency_p95=timedelta(seconds=10)), sample).state == state


@pytest.mark.parametrize(
    ("limited", "state"), [(4, "ok"), (5, "ok"), (6, "warning")], ids=["just below 5", "at 5", "just above 5"]
)
def test_rate_limited_fires_only_when_more_requests_than_it_got_429(limited, state):
    assert evaluate_health(rule(rate_limited=5), HealthSample(requests=30, rate_limited=limited)).state == state


def test_fewer_requests_than_min_requests_give_no_verdict():
    ev = evaluate_health(rule(error_rate=20, rate_limited=0), HealthSample(requests=19, errors=19, rate_limited=9))
    assert (ev.state, ev.firing, ev.error_rate) == ("idle", (), 100.0)


def test_exactly_min_requests_gives_a_verdict():
    assert evaluate_health(rule(error_rate=20), HealthSample(requests=20, errors=20)).state == "warning"


def test_an_empty_window_is_idle_with_no_error_rate():
    ev = evaluate_health(HealthRule("r", WINDOW, min_requests=1, error_rate=1), HealthSample(requests=0))
    assert (ev.state, ev.error_rate, ev.latency_p95_ms) == ("idle", None, None)


def test_one_verdict_names_every_condition_that_fires():
    sample = HealthSample(requests=40, errors=20, rate_limited=9, latencies_ms=[20000.0] * 40)
    ev = evaluate_health(rule(error_rate=20, latency_p95=timedelta(seconds=10), rate_limited=5), sample)
    assert len(ev.firing) == 3 and ev.firing[0].startswith("error rate 50.0% is above 20%")


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), ([5.0], 5.0), (list(map(float, range(1, 101))), 95.0), (list(map(float, range(1, 21))), 19.0)],
    ids=["empty", "one", "1..100", "1..20"],
)
def test_p95_is_the_nearest_rank_percentile(values, expected):
    assert p95(values) == expected


FIRING = evaluate_health(rule(error_rate=20), HealthSample(requests=40, errors=20))
HEALTHY = evaluate_health(rule(error_rate=20), HealthSample(requests=40, errors=0))
IDLE = evaluate_health(rule(error_rate=20), HealthSample(requests=3, errors=3))
POLICY = Policy(repeat_every=timedelta(hours=4), send_resolved=True)


def test_a_rule_that_starts_firing_is_announced_once_as_a_warning():
    state, ann = step(None, FIRING, POLICY, NOW)
    assert ann is not None and ann.severity == "warning" and ann.changes[0].what == "firing"
    again, ann2 = step(state, FIRING, POLICY, NOW + timedelta(minutes=1))
    assert ann2 is None and again == state


def test_a_rule_still_firing_is_repeated_after_repeat_every():
    state, _ = step(None, FIRING, POLICY, NOW)
    _, ann = step(state, FIRING, POLICY, NOW + timedelta(hours=4))
    assert ann is not None and ann.changes[0].what == "repeat"


def test_a_rule_that_stops_firing_is_resolved():
    state, _ = step(None, FIRING, POLICY, NOW)
    cleared, ann = step(state, HEALTHY, POLICY, NOW + timedelta(minutes=5))
    assert ann is not None and ann.changes[0].what == "resolved" and not cleared.tripped


def test_going_idle_while_firing_is_not_a_recovery():
    state, _ = step(None, FIRING, POLICY, NOW)
    still, ann = step(state, IDLE, POLICY, NOW + timedelta(minutes=5))
    assert ann is None and still.tripped


def test_a_silenced_rule_changes_state_and_marks_its_announcement_silenced():
    state, ann = step(None, FIRING, POLICY, NOW, silenced=True)
    assert state.tripped and ann is not None and ann.silenced

"""Spikes (contract §11): the last window against the mean window of the baseline before it, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from guardd.core.alerts import Policy, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import evaluate
from guardd.core.money import parse_money
from guardd.core.spike import Spike, evaluate_spike

NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
SPIKE = Spike(window=timedelta(hours=1), factor=Decimal(3), baseline=timedelta(days=7), min=parse_money("1.00"))


def usd(text: str) -> int:
    return parse_money(text)


def test_the_baseline_is_the_span_just_before_the_recent_window():
    recent, baseline = SPIKE.ranges(NOW)
    assert recent == (NOW - timedelta(hours=1), NOW)
    assert baseline == (NOW - timedelta(hours=1) - timedelta(days=7), NOW - timedelta(hours=1))


def test_the_baseline_mean_divides_by_every_window_in_it_empty_ones_included():
    # $84 spent in a single hour of the week: 168 hourly windows, so the mean is $0.50, not $84.
    assert evaluate_spike(SPIKE, usd("0.10"), usd("84")).baseline_mean == usd("0.50")


@pytest.mark.parametrize(
    ("recent", "spiking"),
    [("1.499999999999", False), ("1.50", False), ("1.500000000001", True)],
    ids=["just below factor x mean", "at factor x mean", "just above factor x mean"],
)
def test_a_spike_needs_recent_spend_above_factor_times_the_mean(recent, spiking):
    assert evaluate_spike(SPIKE, usd(recent), usd("84")).spiking is spiking


@pytest.mark.parametrize(("recent", "spiking"), [("1.00", False), ("1.01", True)], ids=["at min", "just above min"])
def test_a_spike_needs_recent_spend_above_min(recent, spiking):
    assert evaluate_spike(SPIKE, usd(recent), 0).spiking is spiking


def test_a_fractional_factor_is_compared_exactly():
    spike = Spike(timedelta(hours=1), Decimal("2.5"), timedelta(hours=3), 0)
    assert not evaluate_spike(spike, usd("2.50"), usd("3")).spiking  # mean $1, 2.5 x $1 = $2.50: not above
    assert evaluate_spike(spike, usd("2.500000000001"), usd("3")).spiking


def test_the_mean_is_rounded_half_even_to_a_pico_dollar():
    spike = Spike(timedelta(hours=1), Decimal(1), timedelta(hours=3), 0)
    assert evaluate_spike(spike, 0, 10).baseline_mean == 3  # 10/3 pico-dollars


def test_a_spiking_budget_is_at_least_warning_and_is_announced_once_with_both_figures():
    budget = Budget(name="team", daily=usd("100"), spike=SPIKE)
    spiking = evaluate(budget, [], NOW, spike=evaluate_spike(SPIKE, usd("4.20"), usd("84")))
    assert spiking.state == "warning"
    policy = Policy(timedelta(hours=4), send_resolved=True)
    states, ann = step({}, spiking, policy, NOW)
    assert ann is not None and ann.severity == "warning" and ann.changes[0].what == "spike"
    assert "$4.20" in ann.changes[0].detail and "$0.50" in ann.changes[0].detail
    _, again = step(states, spiking, policy, NOW + timedelta(minutes=5))
    assert again is None
    calm = evaluate(budget, [], NOW, spike=evaluate_spike(SPIKE, usd("0.20"), usd("84")))
    _, over = step(states, calm, policy, NOW + timedelta(hours=1))
    assert over is not None and over.changes[0].what == "calm" and calm.state == "ok"

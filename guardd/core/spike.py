"""Spend spikes (contract §11 ``budgets[].spike``): the last ``window`` against the mean ``window`` before it.

The recent spend is ``[now - window, now)``; the baseline is the ``baseline`` just before it,
``[now - window - baseline, now - window)``, and its mean is the baseline's spend divided by the number of
windows in it — empty windows count, so a quiet week makes a small mean. A budget spikes when the recent spend
is above ``factor`` times that mean **and** above ``min``. The comparison is exact (integer pico-dollars and a
decimal factor, no binary floats). Pure: ``now`` is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from guardd.core.money import Money, format_human
from guardd.core.periods import format_duration


@dataclass(frozen=True, slots=True)
class Spike:
    """A budget's ``spike`` setting. ``baseline`` is a whole number of ``window``s (the configuration checks)."""

    window: timedelta
    factor: Decimal
    baseline: timedelta
    min: Money = 0

    @property
    def windows(self) -> int:
        """How many ``window``s the baseline holds."""
        return self.baseline // self.window

    def ranges(self, now: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
        """Return ``(recent, baseline)`` as ``(start, end)`` ranges, end exclusive."""
        recent_start = now - self.window
        return (recent_start, now), (recent_start - self.baseline, recent_start)


@dataclass(frozen=True, slots=True)
class SpikeEvaluation:
    """``recent`` and ``baseline_mean`` in pico-dollars (the mean rounded half-even to a pico-dollar)."""

    spike: Spike
    spiking: bool
    recent: Money
    baseline_mean: Money

    @property
    def state(self) -> str:
        return "warning" if self.spiking else "ok"

    def describe(self) -> str:
        """One line with both figures, for messages and ``firing`` lists."""
        window = format_duration(self.spike.window)
        ratio = "" if self.baseline_mean == 0 else f"; {Decimal(self.recent) / Decimal(self.baseline_mean):.1f}×"
        return (
            f"spend in the last {window} {format_human(self.recent)} is above {self.spike.factor:g} × the mean"
            f" {format_human(self.baseline_mean)} per {window} over the {format_duration(self.spike.baseline)}"
            f" before it{ratio}"
        )


def evaluate_spike(spike: Spike, recent: Money, baseline_spend: Money) -> SpikeEvaluation:
    """Return whether ``recent`` spend spikes against ``baseline_spend`` (the whole baseline's spend)."""
    mean = Fraction(baseline_spend, spike.windows)
    threshold = Fraction(spike.factor) * mean
    spiking = recent > threshold and recent > spike.min
    return SpikeEvaluation(spike, spiking, recent, round(mean))

"""Forecasts: where a window's spend is heading, from its recent burn rate.

The projection extrapolates the spend of a recent lookback (a quarter of the window, at least an hour, never
before the window's start) to the window's end. It refuses to guess from too little: with fewer than
``MIN_EVENTS`` events in the lookback, or before ``MIN_ELAPSED_FRACTION`` of the window has passed, there is no
forecast (``None``), so a single early request never projects a wild month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from guardd.core.money import Money
from guardd.core.periods import Window

MIN_EVENTS = 3
MIN_ELAPSED_FRACTION = 0.05
MIN_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Forecast:
    """``projected`` spend at the window's end; ``rate_per_hour``; ``limit_at`` when the limit will be reached."""

    projected: Money
    rate_per_hour: Money
    limit_at: datetime | None


def lookback_start(window: Window, now: datetime) -> datetime:
    """Return where the recent-rate lookback of ``window`` begins at ``now``."""
    span = max(window.length / 4, MIN_LOOKBACK)
    return max(window.start, now - span)


def project(
    window: Window, now: datetime, spent: Money, recent_spent: Money, recent_events: int, limit: Money
) -> Forecast | None:
    """Return the forecast for ``window`` at ``now``, or None when the data is too thin to say.

    ``spent`` is the window's spend so far; ``recent_spent`` and ``recent_events`` cover
    ``[lookback_start(window, now), now)``.
    """
    elapsed = now - window.start
    remaining = window.end - now
    if remaining <= timedelta(0) or elapsed <= timedelta(0):
        return None
    if elapsed < window.length * MIN_ELAPSED_FRACTION or recent_events < MIN_EVENTS:
        return None
    lookback = now - lookback_start(window, now)
    lookback_us = lookback // timedelta(microseconds=1)
    if lookback_us <= 0:
        return None
    projected = spent + recent_spent * (remaining // timedelta(microseconds=1)) // lookback_us
    rate_per_hour = recent_spent * 3_600_000_000 // lookback_us
    limit_at: datetime | None = None
    if spent >= limit:
        limit_at = now
    elif recent_spent > 0:
        needed_us = (limit - spent) * lookback_us // recent_spent
        candidate = now + timedelta(microseconds=needed_us)
        limit_at = candidate if candidate < window.end else None
    return Forecast(projected=projected, rate_per_hour=rate_per_hour, limit_at=limit_at)

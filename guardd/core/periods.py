"""Time: durations, calendar windows in an IANA zone, and rolling windows.

A calendar window is the half-open interval ``[start, end)`` of aware datetimes in the configured zone that
contains an instant. Boundaries are computed on the local calendar and then resolved to real instants, so a
day in Europe/Berlin is 23 hours on the spring change and 25 on the autumn one, and a midnight that does not
exist (some zones change at 00:00) becomes the first instant after the gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float) -> timedelta:
    """Return the duration that ``text`` names: ``"30s"``, ``"10m"``, ``"4h"``, ``"1d"``, ``"2w"``, or ``"0"``.

    A duration carries a unit; only zero may go without one (where the configuration says it means never).
    Raise ValueError with a one-line readable message otherwise (``5``, ``"forever"``, ``"-1h"``).
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text == 0:
            return timedelta(0)
        raise ValueError(f'{text!r} needs a unit: write it as a string such as "{text}s", "10m", "4h" or "1d"')
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use a number and a unit: 90s, 10m, 4h, 1d, 2w)")
    number, unit = match.groups()
    if unit is None:
        if float(number) == 0:
            return timedelta(0)
        raise ValueError(f"{text!r} needs a unit (90s, 10m, 4h, 1d, 2w)")
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit])


def format_duration(delta: timedelta) -> str:
    """Return ``delta`` in the largest exact unit, the inverse of :func:`parse_duration` (``"10m"``)."""
    seconds = delta.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Kind(StrEnum):
    """The calendar windows a budget can limit."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval ``[start, end)``; ``name`` is ``daily`` or ``rolling:10m``.

    ``start`` and ``end`` are always in UTC: Python compares and subtracts two datetimes that share a zone by
    their wall clocks, which is wrong across a DST change. Convert with ``astimezone(tz)`` only to display.
    """

    name: str
    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def resets(self) -> datetime | None:
        """When the window's spend starts again from zero: its end for a calendar window; None for a rolling
        one, which never resets (it slides: each spend leaves it ``length`` after it happened)."""
        return None if self.name.startswith("rolling:") else self.end


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """Return the first instant of the local calendar ``day`` in ``tz`` (after a gap, if midnight is skipped)."""
    # fold=0 reads an ambiguous midnight as its first occurrence, and a midnight inside a DST gap with the
    # offset from before the gap: round-tripping through UTC then lands on the first instant after the gap.
    aware = datetime.combine(day, time(0), tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz)


def _first_day(kind: Kind, local_day: date, week_start: int) -> date:
    if kind is Kind.DAILY:
        return local_day
    if kind is Kind.WEEKLY:
        return local_day - timedelta(days=(local_day.weekday() - week_start) % 7)
    return local_day.replace(day=1)


def _next_first_day(kind: Kind, first: date) -> date:
    if kind is Kind.DAILY:
        return first + timedelta(days=1)
    if kind is Kind.WEEKLY:
        return first + timedelta(days=7)
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def window_at(kind: Kind | str, tz: ZoneInfo, now: datetime, week_start: int = 0) -> Window:
    """Return the calendar window of ``kind`` in ``tz`` that contains the aware instant ``now``.

    ``week_start`` is a weekday number (0 = Monday, 6 = Sunday). Raise ValueError for a naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    kind = Kind(kind)
    local = now.astimezone(tz)
    first = _first_day(kind, local.date(), week_start)
    start = local_midnight(first, tz)
    end = local_midnight(_next_first_day(kind, first), tz)
    return Window(kind.value, start.astimezone(UTC), end.astimezone(UTC))


def rolling_window(length: timedelta, now: datetime) -> Window:
    """Return the sliding window ``[now - length, now)`` named ``rolling:<length>``, in UTC."""
    end = now.astimezone(UTC)
    return Window(f"rolling:{format_duration(length)}", end - length, end)


def parse_weekday(name: str) -> int:
    """Return the weekday number of ``monday`` or ``sunday`` (the two week starts guardd offers)."""
    days = {"monday": 0, "sunday": 6}
    try:
        return days[name.strip().lower()]
    except KeyError:
        raise ValueError(f"week_start must be monday or sunday, not {name!r}") from None


def forward_now(now: datetime, high_water: datetime | None) -> datetime:
    """Return the time at which windows are evaluated: ``now``, or ``high_water`` — the latest time evaluated so
    far, which the caller persists — when the wall clock has stepped back behind it.

    Windows only move forward: after a backward step (NTP, a VM restored, a mistaken ``date``) the current
    instance stays the current one until the clock catches up, so an instance that ended is never re-opened and
    re-announced. A forward step takes effect at once (the next evaluation resets a window it passed).
    """
    return now if high_water is None or now >= high_water else high_water

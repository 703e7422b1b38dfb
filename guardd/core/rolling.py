"""When a tripped rolling window releases, if nothing more is spent (contract §3: ``until`` is when an automatic
release is due). Pure: steps of spend in, times out.

A rolling window ``[now - length, now)`` slides: each spend leaves it ``length`` after it happened, oldest first. A
window whose spend ``spent`` reached its trip threshold ``trip`` releases once at least ``spent - trip`` plus the
smallest amount (one pico-dollar) has left it: at the moment the oldest spend that makes up that amount leaves.
The spend comes as steps ``(first ms, last ms, cost)``, oldest first (an event time, or an hour or day bucket whose
spend happened somewhere in it); :func:`crossing` names the step where enough has left, to be read again in finer
steps while it is a bucket, and :func:`leaves_at` the moment a spend at a given time has left the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

Step = tuple[int, int, int]
"""``(first ms, last ms, cost)``: spend that happened within ``[first, last]`` (Unix ms, cost in pico-dollars)."""


@dataclass(frozen=True, slots=True)
class Crossing:
    """The step within which enough spend has left: its first and last ms, and how much of it must leave."""

    first_ms: int
    last_ms: int
    need: int

    @property
    def exact(self) -> bool:
        return self.first_ms == self.last_ms


def must_leave(spent: int, trip: int) -> int:
    """How much spend must leave a window holding ``spent`` for it to be below ``trip`` (at least 1)."""
    return max(1, spent - trip + 1)


def crossing(steps: Sequence[Step], need: int) -> Crossing | None:
    """Return the step of ``steps`` (oldest first) by whose end ``need`` has left, and what of it must leave;
    None when all of them together hold less than ``need`` (the steps do not cover the spend that was summed)."""
    for first, last, cost in steps:
        if cost >= need:
            return Crossing(first, last, need)
        need -= cost
    return None


def leaves_at(ts_ms: int, length: timedelta) -> datetime:
    """The first whole second at which spend at ``ts_ms`` no longer counts in a rolling window of ``length``: it
    counts while ``now - length <= ts``, so until ``ts + length`` included; rounded up to the second, which is
    how a release is read (at most a second late, never early)."""
    gone_ms = ts_ms + length // timedelta(milliseconds=1) + 1
    return datetime.fromtimestamp(-(-gone_ms // 1000), UTC)


def from_ms(ms: int) -> datetime:
    """The instant ``ms`` Unix milliseconds (exact: no float)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)

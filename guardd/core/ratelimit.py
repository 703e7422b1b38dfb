"""A rate limit for log lines, per key: at most ``limit`` lines a period, then one summary line (contract §7).

Pure: the caller passes ``now`` (monotonic seconds). Not safe across threads; guardd calls it from its event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    LOG = "log"  # within the limit: log the line
    SUMMARY = "summary"  # the first line over the limit: log one line saying the rest is counted, not logged
    SILENT = "silent"  # over the limit: count it only


@dataclass(slots=True)
class Decision:
    verdict: Verdict
    missed: int  # lines of this key's previous period that were not logged; to report once, now


@dataclass(slots=True)
class _Period:
    start: float
    logged: int = 0
    missed: int = 0


class RateLimit:
    """Given a key and ``now``, decide whether one more line may be logged: ``limit`` per ``period`` seconds."""

    def __init__(self, limit: int = 10, period: float = 60.0) -> None:
        self.limit, self.period = limit, period
        self._periods: dict[str, _Period] = {}

    def check(self, key: str, now: float) -> Decision:
        """Return the verdict for one more line under ``key`` at ``now``, and how many lines the key's previous
        period did not log (non-zero only on the first line of a new period)."""
        current = self._periods.get(key)
        missed = 0
        if current is None or now - current.start >= self.period:
            missed = current.missed if current is not None else 0
            current = self._periods[key] = _Period(now)
        if current.logged < self.limit:
            current.logged += 1
            return Decision(Verdict.LOG, missed)
        current.missed += 1
        return Decision(Verdict.SUMMARY if current.missed == 1 else Verdict.SILENT, missed)

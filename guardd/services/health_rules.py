"""Health rules against the store: each ``[[health]]`` rule's requests in its sliding window, judged by the core.

Read-only (``guardd status`` and ``check`` use it as it is); :class:`guardd.services.jobs.Engine` adds the alerts.
"""

from __future__ import annotations

from datetime import datetime

from guardd.core.budgets import Dimensions, Matcher
from guardd.core.health import HealthEvaluation, HealthRule, evaluate_health
from guardd.store.api import RequestStatsAPI


def series_of(rule: HealthRule, series: dict[int, Dimensions]) -> list[int] | None:
    """The series a rule matches (None = every series, no filter needed)."""
    if not rule.match:
        return None
    matcher = Matcher(rule.match)
    return sorted(sid for sid, dims in series.items() if matcher.matches(dims))


async def evaluate_rules(
    rules: list[HealthRule], stats: RequestStatsAPI, series: dict[int, Dimensions], now: datetime
) -> list[HealthEvaluation]:
    """Return every rule's verdict over ``[now - window, now)``."""
    out = []
    for rule in rules:
        sample = await stats.health_sample(series_of(rule, series), now - rule.window, now)
        out.append(evaluate_health(rule, sample))
    return out

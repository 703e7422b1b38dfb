"""Health rules (contract §11 ``[[health]]``): how requests go, not what they cost.

A rule looks at the requests its ``match`` selects in the sliding window ``[now - window, now)`` and fires when
any of its conditions holds:

- ``error_rate``: the percent of requests with ``ok = false`` is **above** it;
- ``latency_p95``: the 95th percentile (nearest rank) of the requests' ``latency_ms`` is **above** it (requests
  that report no latency are not part of the percentile; with none, the condition cannot fire);
- ``rate_limited``: **more** requests than this got HTTP status 429.

Fewer than ``min_requests`` requests in the window give no verdict: the rule is ``idle``. Rules alert through
the budgets' state machine (:func:`step`): firing is announced once, repeated every ``repeat_every`` while it
lasts, and its end is announced when ``send_resolved``; ``idle`` keeps whatever was announced (no verdict is not
a recovery). They never trip the switch. Pure: ``now`` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from guardd.core.alerts import AlertState, Announcement, Change, Policy
from guardd.core.periods import format_duration

HEALTH_WINDOW = "health"
"""The window name a rule's alert state is kept under."""


@dataclass(frozen=True, slots=True)
class HealthRule:
    """One ``[[health]]`` entry."""

    name: str
    window: timedelta
    match: dict[str, str] = field(default_factory=dict)
    min_requests: int = 10
    error_rate: float | None = None
    latency_p95: timedelta | None = None
    rate_limited: int | None = None
    notify: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HealthSample:
    """What the store holds about a rule's requests in its window."""

    requests: int
    errors: int = 0
    rate_limited: int = 0
    latencies_ms: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class HealthEvaluation:
    """A rule's verdict: ``state`` is ``ok``, ``warning`` or ``idle``; ``firing`` names each condition that holds."""

    rule: HealthRule
    state: str
    requests: int
    errors: int
    error_rate: float | None
    latency_p95_ms: float | None
    rate_limited: int
    firing: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.rule.name


def p95(values: Sequence[float]) -> float | None:
    """Return the 95th percentile of ``values`` by nearest rank (the value at rank ⌈0.95·n⌉), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def _ms(value: float) -> str:
    return f"{value:g} ms" if value < 1000 else f"{value / 1000:g} s"


def evaluate_health(rule: HealthRule, sample: HealthSample) -> HealthEvaluation:
    """Return the verdict of ``rule`` on ``sample``."""
    requests = sample.requests
    rate = 100.0 * sample.errors / requests if requests else None
    latency = p95(sample.latencies_ms)
    firing: list[str] = []
    if requests >= rule.min_requests and requests > 0:
        if rule.error_rate is not None and sample.errors * 100 > rule.error_rate * requests:
            firing.append(
                f"error rate {rate:.1f}% is above {rule.error_rate:g}% ({sample.errors} of {requests} requests)"
            )
        limit_ms = rule.latency_p95 / timedelta(milliseconds=1) if rule.latency_p95 is not None else None
        if limit_ms is not None and latency is not None and latency > limit_ms:
            firing.append(f"p95 latency {_ms(latency)} is above {_ms(limit_ms)}")
        if rule.rate_limited is not None and sample.rate_limited > rule.rate_limited:
            firing.append(f"{sample.rate_limited} requests got 429 (more than {rule.rate_limited})")
        state = "warning" if firing else "ok"
    else:
        state = "idle"
    return HealthEvaluation(
        rule=rule,
        state=state,
        requests=requests,
        errors=sample.errors,
        error_rate=None if rate is None else round(rate, 2),
        latency_p95_ms=latency,
        rate_limited=sample.rate_limited,
        firing=tuple(firing),
    )


def step(
    previous: AlertState | None, ev: HealthEvaluation, policy: Policy, now: datetime, silenced: bool = False
) -> tuple[AlertState, Announcement | None]:
    """Return a rule's new alert state and what to announce: ``firing`` (warning) when it starts, ``repeat``
    (warning) every ``repeat_every`` while it lasts, ``resolved`` (info, with ``send_resolved``) when it ends.
    ``idle`` changes nothing."""
    state = previous or AlertState(window=HEALTH_WINDOW)
    window = f"health:{format_duration(ev.rule.window)}"
    detail = "; ".join(ev.firing)
    change: Change | None = None
    if ev.state == "warning" and not state.tripped:
        change = Change(window, "firing", "warning", detail=detail)
        state = replace(state, tripped=True, notified_at=now)
    elif ev.state == "warning":
        due = policy.repeat_every > timedelta(0) and (
            state.notified_at is None or now - state.notified_at >= policy.repeat_every
        )
        if due:
            change = Change(window, "repeat", "warning", detail=detail)
            state = replace(state, notified_at=now)
    elif ev.state == "ok" and state.tripped:
        state = replace(state, tripped=False)
        if policy.send_resolved:
            change = Change(window, "resolved", "info", detail="requests are healthy again")
    if change is None:
        return state, None
    return state, Announcement(ev.name, change.severity, (change,), now, silenced=silenced)

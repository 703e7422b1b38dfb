"""The alert state machine: what to announce, given what was announced before and what is true now.

The persisted state records, per budget and window, the highest threshold already announced in the current
window *instance* (a calendar window's start; rolling windows have one endless instance), whether its trip
and forecast were announced, and when the trip was last announced. :func:`step` compares a fresh evaluation
with that state and returns the new state and at most one :class:`Announcement` per budget. Because the
comparison is against persisted state and not against the previous run's memory:

- unchanged state is never announced again, also across restarts;
- whatever changed while guardd was down is announced once, on the first evaluation after it starts;
- a window that reset while guardd was down announces the reset (``send_resolved``) and then the new
  instance's own crossings.

Rules within one step:

- Only the highest newly crossed threshold of a window is named (it inhibits the lower ones, which are marked
  announced); a trip inhibits the threshold and forecast notices of its own window.
- All windows' changes of one budget form one announcement, most severe first.
- A trip still in force is re-announced every ``repeat_every`` (0 = never).
- ``send_resolved`` announces window resets of announced windows, trips that clear and stale data that is
  fresh again; without it those changes update the state silently.
- A silenced budget goes through exactly the same state changes; its announcement carries ``silenced=True``
  so that the caller records it without sending it.
- Time only moves forward: an evaluation of a window instance that ended before the recorded one began (the
  wall clock stepped back) changes nothing and announces nothing; the caller also evaluates at
  :func:`guardd.core.periods.forward_now`, so the switch is not tripped again by it either.
- An announced level only falls back (so that a re-crossing is announced again) when the spend drops 10
  percentage points below it, so burn-rate windows that hover around a threshold do not flap.
- A window whose spend is not known announces nothing of its own (the budget's ``stale`` change speaks for it)
  and clears nothing: no ``resolved``, no fall of the level, while nobody knows the spend went down. With a
  known part (``source = "max"``), what that lower bound proves is announced as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from guardd.core.evaluate import BudgetEvaluation, WindowEvaluation
from guardd.core.money import Money, format_human

HYSTERESIS_POINTS = 10.0
STALE_KEY = "stale"
SPIKE_KEY = "spike"
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class AlertState:
    """What has been announced for one (budget, window). ``level`` is a threshold percent (0 = none)."""

    window: str
    instance: str = ""
    level: float = 0.0
    tripped: bool = False
    forecast: bool = False
    critical: bool = False
    notified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One thing to announce about one window of a budget."""

    window: str
    what: str  # threshold | critical | trip | repeat | forecast | reset | resolved | stale | fresh | spike | calm
    severity: str  # info | warning | critical
    percent: float = 0.0
    threshold: float | None = None
    spent: Money = 0
    limit: Money = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Announcement:
    """One message about one budget; ``changes`` most severe first."""

    budget: str
    severity: str
    changes: tuple[Change, ...]
    at: datetime
    silenced: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    repeat_every: timedelta = timedelta(hours=4)
    send_resolved: bool = True


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def _window_step(
    prev: AlertState | None, ev: WindowEvaluation, policy: Policy, now: datetime, trip_at: float | None
) -> tuple[AlertState, list[Change]]:
    name = ev.window.name
    changes: list[Change] = []
    state = prev or AlertState(window=name, instance=ev.instance)
    if _ended_before(ev, state.instance):
        return state, []  # the wall clock stepped back into an instance that has ended: it stays closed
    if state.instance != ev.instance:
        announced_before = state.level > 0 or state.tripped or state.critical
        if announced_before and policy.send_resolved:
            changes.append(
                Change(name, "reset", "info", detail=f"the {name} window reset ({state.instance[:10]} ended)")
            )
        state = AlertState(window=name, instance=ev.instance)
    spent, pct = ev.spent, ev.percent
    if spent is None or pct is None:
        return state, changes  # nothing is known of this instance's spend: nothing to say, nothing to clear
    known = ev.known

    def change(what: str, severity: str, threshold: float | None = None, detail: str = "") -> Change:
        return Change(name, what, severity, pct, threshold, spent, ev.limit, detail)

    highest = max(ev.thresholds_crossed, default=0.0)
    new_level = state.level
    threshold_change: Change | None = None
    if highest > state.level:
        severity = "critical" if highest >= 100 else "warning"
        threshold_change = change("threshold", severity, threshold=highest)
        new_level = highest
    elif known and highest < state.level and pct < state.level - HYSTERESIS_POINTS:
        new_level = highest

    tripped, critical, notified_at = state.tripped, state.critical, state.notified_at
    trip_change: Change | None = None
    if ev.tripped and not state.tripped:
        trip_change = change("trip", "critical", threshold=trip_at)
        tripped, notified_at = True, now
    elif (
        ev.tripped
        and policy.repeat_every > timedelta(0)
        and (notified_at is None or now - notified_at >= policy.repeat_every)
    ):
        trip_change = change("repeat", "critical")
        notified_at = now
    elif not ev.tripped and state.tripped and known:
        tripped = False
        if policy.send_resolved:
            trip_change = change("resolved", "info", detail="no longer over the trip threshold")

    critical_change: Change | None = None
    over_limit = ev.state == "critical"
    if over_limit and not state.critical and not ev.tripped:
        critical_change = change("critical", "critical", threshold=100.0)
        critical = True
    elif not over_limit and state.critical and spent < ev.limit and known:
        critical = False

    forecast = state.forecast
    forecast_change: Change | None = None
    if ev.forecast_exceeds and not state.forecast:
        forecast = True
        if ev.forecast is not None:
            detail = f"projected {format_human(ev.forecast.projected)} by the window's end"
            forecast_change = change("forecast", "warning", detail=detail)

    # Inhibition: the most severe change of this window speaks for it.
    if trip_change is not None and trip_change.what in {"trip", "repeat"}:
        changes.append(trip_change)
    elif critical_change is not None:
        changes.append(critical_change)
    elif threshold_change is not None:
        changes.append(threshold_change)
    elif forecast_change is not None:
        changes.append(forecast_change)
    if trip_change is not None and trip_change.what == "resolved":
        changes.append(trip_change)

    new_state = replace(
        state, level=new_level, tripped=tripped, critical=critical, forecast=forecast, notified_at=notified_at
    )
    return new_state, changes


def _ended_before(ev: WindowEvaluation, instance: str) -> bool:
    """Return True when ``ev``'s window instance ended no later than the recorded ``instance`` began."""
    if not instance or not ev.instance:
        return False
    try:
        return ev.window.end <= datetime.fromisoformat(instance)
    except ValueError:
        return False


def step(
    previous: dict[str, AlertState],
    evaluation: BudgetEvaluation,
    policy: Policy,
    now: datetime,
    silenced: bool = False,
) -> tuple[dict[str, AlertState], Announcement | None]:
    """Return the new alert states of one budget (keyed by window name) and what to announce, if anything.

    Windows that no longer exist in the budget (configuration changed) are dropped without a notice.
    """
    states: dict[str, AlertState] = {}
    changes: list[Change] = []
    for ev in evaluation.windows:
        new, window_changes = _window_step(previous.get(ev.window.name), ev, policy, now, evaluation.budget.trip_at)
        states[ev.window.name] = new
        changes.extend(window_changes)

    prev_stale = previous.get(STALE_KEY)
    stale = evaluation.staleness
    was_stale = prev_stale is not None and prev_stale.tripped
    if stale.stale and not was_stale:
        severity = "critical" if evaluation.budget.on_stale == "closed" else "warning"
        changes.append(Change(STALE_KEY, "stale", severity, detail=stale.reason or "source is stale"))
    elif was_stale and not stale.stale and policy.send_resolved:
        changes.append(Change(STALE_KEY, "fresh", "info", detail="data is fresh again"))
    states[STALE_KEY] = AlertState(window=STALE_KEY, tripped=stale.stale, notified_at=stale.since)

    # A spike is announced when it starts and (with send_resolved) when it is over; never repeated.
    if evaluation.spike is not None:
        spike = evaluation.spike
        prev_spike = previous.get(SPIKE_KEY)
        was_spiking = prev_spike is not None and prev_spike.tripped
        if spike.spiking and not was_spiking:
            changes.append(Change(SPIKE_KEY, "spike", "warning", spent=spike.recent, detail=spike.describe()))
        elif was_spiking and not spike.spiking and policy.send_resolved:
            changes.append(Change(SPIKE_KEY, "calm", "info", spent=spike.recent, detail="the spending spike is over"))
        notified = now if spike.spiking and not was_spiking else prev_spike.notified_at if prev_spike else None
        states[SPIKE_KEY] = AlertState(window=SPIKE_KEY, tripped=spike.spiking, notified_at=notified)

    if not changes:
        return states, None
    changes.sort(key=lambda c: (-severity_rank(c.severity), -_what_rank(c.what)))
    severity = changes[0].severity
    return states, Announcement(evaluation.name, severity, tuple(changes), now, silenced=silenced)


_WHAT_ORDER = (
    "fresh",
    "calm",
    "resolved",
    "reset",
    "spike",
    "forecast",
    "threshold",
    "stale",
    "critical",
    "repeat",
    "trip",
)


def _what_rank(what: str) -> int:
    return _WHAT_ORDER.index(what)

"""Budget evaluation: from a budget and the spend in each of its windows, the state of each window and of the
budget as a whole.

States, most severe last: ``ok`` < ``warning`` (a ``warn_at`` threshold crossed, or the forecast passes the
limit) < ``critical`` (the limit itself reached while the switch does not trip: ``trip_at = false`` or above
100, or the trip threshold reached while a hand release holds the switch open) < ``tripped`` (``trip_at``
reached). ``stale`` is the budget's state when its source is stale and nothing is
tripped: the numbers cannot be trusted either way.

A window whose spend is not known (``WindowSpend.spent`` None: OpenRouter never gave a figure for it) is
``stale`` too, with no percent and no headroom: guardd never reads what it does not know as $0 and OK. A window
whose figure lacks a source's part (``unknown``: ``source = "max"`` while OpenRouter's figure is unknown) keeps
its known part as a lower bound: what that bound proves stands (``critical``, ``tripped``, the thresholds it
crossed), anything milder is ``stale``, and it offers no headroom either (the unknown part could use it all).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from guardd.core.budgets import Budget
from guardd.core.forecast import Forecast
from guardd.core.money import Money, at_percent, format_human, percent
from guardd.core.periods import Window

if TYPE_CHECKING:
    from guardd.core.spike import SpikeEvaluation
    from guardd.core.switch import Override

SEVERITY = {"ok": 0, "warning": 1, "stale": 2, "critical": 3, "tripped": 4}


@dataclass(frozen=True, slots=True)
class WindowSpend:
    """What the store (or OpenRouter) says was spent in one window of a budget.

    ``partial`` is True when the source could not cover the whole window (e.g. OpenRouter snapshots began
    after the window started): the spend is a lower bound, shown as such, never taken as complete.
    ``releases_at``: for a rolling window at its trip threshold, when enough of its spend will have left it for
    the trip to be released if nothing more is spent (:mod:`guardd.core.rolling`); None when not known.
    ``unknown`` names the sources whose part of the spend is not known at all (``("openrouter",)``); ``spent``
    is then the known part (a lower bound, ``partial``), or None when no part is known.
    ``partial_reason`` says why a figure is partial (for people: status, check), when the source said.
    """

    window: Window
    limit: Money
    spent: Money | None
    unpriced_events: int = 0
    forecast: Forecast | None = None
    partial: bool = False
    releases_at: datetime | None = None
    unknown: tuple[str, ...] = ()
    partial_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WindowEvaluation:
    """One window's verdict. ``spent`` and ``percent`` are None when the spend is not known; ``headroom`` is
    None whenever any part of it is not (``unknown`` names those sources). ``partial``: ``spent`` is a lower
    bound, for the reason ``partial_reason`` gives."""

    window: Window
    limit: Money
    spent: Money | None
    percent: float | None
    state: str
    thresholds_crossed: tuple[float, ...]
    trip_amount: Money | None
    headroom: Money | None
    unpriced_events: int = 0
    forecast: Forecast | None = None
    forecast_exceeds: bool = False
    partial: bool = False
    releases_at: datetime | None = None
    unknown: tuple[str, ...] = ()
    partial_reason: str | None = None

    @property
    def tripped(self) -> bool:
        return self.state == "tripped"

    def release_due(self, now: datetime) -> datetime:
        """When this window's trip is released automatically: a calendar window's end; for a rolling window, when
        enough of its spend has left it (``releases_at``), or — when that is not known (spend read from
        OpenRouter) — ``now`` plus its length, by which all of the spend in it now has left."""
        if not self.window.name.startswith("rolling:"):
            return self.window.end
        return self.releases_at if self.releases_at is not None else now + self.window.length

    @property
    def known(self) -> bool:
        """True when the whole spend of the window is known (its figure may still be ``partial`` in time)."""
        return self.spent is not None and not self.unknown

    @property
    def spent_text(self) -> str:
        """The spend for people: ``$1.20``, ``at least $1.20`` (a source's part unknown), or ``unknown``."""
        if self.spent is None:
            return "unknown"
        return ("at least " if self.unknown else "") + format_human(self.spent)

    @property
    def percent_text(self) -> str:
        """``24.7%``, or ``?%`` when the spend is not known."""
        return "?%" if self.percent is None else f"{self.percent:g}%"

    @property
    def instance(self) -> str:
        """Identity of this window instance: its start for calendar windows, empty for rolling ones."""
        return "" if self.window.name.startswith("rolling:") else self.window.start.isoformat()


@dataclass(frozen=True, slots=True)
class Staleness:
    stale: bool = False
    since: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetEvaluation:
    budget: Budget
    now: datetime
    windows: tuple[WindowEvaluation, ...]
    staleness: Staleness = field(default_factory=Staleness)
    spike: SpikeEvaluation | None = None
    override: Override | None = None  # the hand decision on this budget's scope, active at `now` (overridden)
    held: bool = False  # the switch trips its scope though no window does (overridden)

    @property
    def name(self) -> str:
        return self.budget.name

    @property
    def tripped_by_hand(self) -> bool:
        return self.override is not None and self.override.state == "tripped"

    @property
    def held_tripped(self) -> bool:
        """Tripped by the switch itself, by hand or not (stale data with ``on_stale = "closed"``, or a trip
        latched by ``release = "manual"``)."""
        return self.tripped_by_hand or self.held

    @property
    def state(self) -> str:
        """The most severe window state; a spiking budget is at least ``warning``; stale unless tripped;
        ``tripped`` when tripped by hand, or held tripped by the switch while its data is fresh."""
        if self.tripped_by_hand or (self.held and not self.staleness.stale):
            return "tripped"
        worst = max((w.state for w in self.windows), key=SEVERITY.__getitem__, default="ok")
        if self.spike is not None and self.spike.spiking and worst == "ok":
            worst = "warning"
        if self.staleness.stale and worst != "tripped":
            return "stale"
        return worst

    @property
    def tripped(self) -> bool:
        return self.held_tripped or any(w.tripped for w in self.windows)

    @property
    def headroom(self) -> Money | None:
        """What the tightest window leaves before its trip threshold; None when any window's is not known."""
        known = [w.headroom for w in self.windows if w.headroom is not None]
        return None if len(known) < len(self.windows) else min(known, default=0)

    @property
    def spend_unknown(self) -> bool:
        """True when some window's spend (or a source's part of it) is not known."""
        return not all(w.known for w in self.windows)


def evaluate_window(budget: Budget, spend: WindowSpend) -> WindowEvaluation:
    """Return the evaluation of one window of ``budget`` given what was spent in it (see the module docstring
    for a spend that is not, or not wholly, known)."""
    limit, spent = spend.limit, spend.spent
    trip_amount = at_percent(limit, budget.trip_at) if budget.trip_at is not None else None
    if spent is None:
        return WindowEvaluation(
            window=spend.window,
            limit=limit,
            spent=None,
            percent=None,
            state="stale",
            thresholds_crossed=(),
            trip_amount=trip_amount,
            headroom=None,
            unpriced_events=spend.unpriced_events,
            forecast=spend.forecast,
            partial=True,
            unknown=spend.unknown,
            partial_reason=_why_partial(spend),
        )
    pct = percent(spent, limit)
    crossed = tuple(t for t in sorted(budget.warn_at) if spent >= at_percent(limit, t))
    ceiling = trip_amount if trip_amount is not None else limit
    forecast_exceeds = bool(
        budget.forecast and spend.forecast is not None and spend.forecast.projected > limit and spent < limit
    )
    if trip_amount is not None and spent >= trip_amount:
        state = "tripped"
    elif spent >= limit:
        state = "critical"
    elif crossed or forecast_exceeds:
        state = "warning"
    else:
        state = "ok"
    if spend.unknown and SEVERITY[state] < SEVERITY["stale"]:
        state = "stale"  # the unknown part may hold anything: only what the known part proves stands
    return WindowEvaluation(
        window=spend.window,
        limit=limit,
        spent=spent,
        percent=pct,
        state=state,
        thresholds_crossed=crossed,
        trip_amount=trip_amount,
        headroom=None if spend.unknown else max(0, ceiling - spent),
        unpriced_events=spend.unpriced_events,
        forecast=spend.forecast,
        forecast_exceeds=forecast_exceeds,
        partial=spend.partial or bool(spend.unknown),
        unknown=spend.unknown,
        releases_at=spend.releases_at if state == "tripped" else None,
        partial_reason=_why_partial(spend),
    )


def _why_partial(spend: WindowSpend) -> str | None:
    """Why a window's figure is partial: a source's part not known, else the reason the source gave."""
    if spend.unknown:
        return f"{', '.join(spend.unknown)}'s figure is not known"
    if spend.partial:
        return spend.partial_reason or "the source covers only part of the window"
    return None


def evaluate(
    budget: Budget,
    spends: list[WindowSpend],
    now: datetime,
    staleness: Staleness | None = None,
    spike: SpikeEvaluation | None = None,
) -> BudgetEvaluation:
    """Return the evaluation of ``budget`` at ``now`` over all its windows (and its spike, if it has one).

    A spend that is not known makes the budget stale even when its source is not (yet) said to be: nothing that
    cannot be trusted is ever ``ok`` (and ``on_stale`` applies to it as to any stale data).
    """
    staleness = staleness or Staleness()
    unknown = sorted({source for s in spends for source in s.unknown})
    if not staleness.stale and (unknown or any(s.spent is None for s in spends)):
        sources = ", ".join(unknown) or "its source"
        staleness = Staleness(True, None, f"the spend from {sources} is not known: no figure yet")
    return BudgetEvaluation(
        budget=budget,
        now=now,
        windows=tuple(evaluate_window(budget, s) for s in spends),
        staleness=staleness,
        spike=spike,
    )


def overridden(ev: BudgetEvaluation, override: Override | None, held: bool = False) -> BudgetEvaluation:
    """Return ``ev`` as its switch scope stands under ``override`` (a hand decision on the budget, or None), and
    ``held``: whether the switch's scope for it is tripped (stale data with ``on_stale = "closed"``, a trip
    latched by ``release = "manual"``: tripped though no window trips it now).

    An override not active at ``ev.now`` is ignored. ``released`` holds the switch open: each window past its
    trip threshold becomes ``critical`` (never ``tripped`` while nothing trips) — once the switch shows it: while
    the scope is still ``held`` the release is recorded but not yet applied (a follower recorded it and no leader
    has decided since), clients are still refused, and the budget is shown as the switch holds it. ``tripped``
    trips the budget whatever its windows say (shown at once: the safe side). The override is kept, so what is
    shown can say who decided and why. For what is shown (``status``, ``check``), never for the switch decision.
    """
    if override is not None and override.state == "released" and held:
        override = None  # not applied yet: an applied release holds the scope open (core.switch.decide)
    if override is None or not override.active(ev.now):
        return replace(ev, held=True) if held and not ev.tripped else ev
    windows = ev.windows
    if override.state == "released":
        windows = tuple(replace(w, state="critical") if w.tripped else w for w in ev.windows)
    return replace(ev, windows=windows, override=override)

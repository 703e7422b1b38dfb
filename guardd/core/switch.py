"""The kill-switch decision: the switch document (contract §3) that evaluations and overrides call for.

:func:`decide` is pure: it takes the budget evaluations, the active overrides, the release policy and the
previous document, and returns the new document and the scope changes to record. The caller writes the file.

Per scope (one per budget, plus ``*`` for a manual trip of everything):

1. An active override wins: ``tripped`` trips the scope (window ``manual``), ``released`` holds it open.
   Overrides expire at their ``until``; the caller removes expired ones, never earlier.
2. Otherwise a tripped window trips the scope; with several, the one released latest names ``until`` (the scope
   is released only when all of them have released). A calendar window releases when it resets; a rolling window
   when enough of the spend that tripped it has left it, if nothing more is spent (a moment that stands still
   from one evaluation to the next: :meth:`~guardd.core.evaluate.WindowEvaluation.release_due`).
3. A stale source trips a budget with ``on_stale = "closed"`` (window ``stale``, no automatic ``until``); so
   does a window whose spend is not known (its state is ``stale``: the same untrustworthy data).
4. With ``release = "manual"`` a scope that was tripped stays tripped (``until`` null) until an override
   releases it.
5. Unknown spend never trips nor releases by itself (``on_stale = "open"``): a scope tripped by a window whose
   spend is now unknown stays tripped, with its reason and ``until``, until that window resets. An untripped
   scope with any window's spend unknown offers no ``headroom`` and no ``spent`` (null: not known, never $0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from guardd.core.evaluate import BudgetEvaluation, WindowEvaluation
from guardd.core.money import Money, format_human, format_json

SCHEMA = 1
GLOBAL_SCOPE = "*"
DEFAULT_TTL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Override:
    """A manual decision on a scope that wins over evaluation until ``until`` (None: until changed)."""

    scope: str
    state: str  # "tripped" | "released"
    by: str
    reason: str
    until: datetime | None = None
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def to_json(self) -> dict[str, object]:
        return {"state": self.state, "until": _iso(self.until), "by": self.by, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Scope:
    tripped: bool
    reason: str | None
    since: datetime | None
    until: datetime | None
    window: str | None
    spent: Money | None
    limit: Money | None
    headroom: Money | None  # None: not known (a window's spend is unknown), so nothing is offered
    override: Override | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "tripped": self.tripped,
            "reason": self.reason,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "window": self.window,
            "spent": None if self.spent is None else format_json(self.spent),
            "limit": None if self.limit is None else format_json(self.limit),
            "headroom": None if self.headroom is None else format_json(self.headroom),
            "override": None if self.override is None else self.override.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SwitchDoc:
    """The switch document (contract §3). ``ttl`` is ``guardd.stale_after``: ``expires_at`` is the heartbeat plus
    it, after which a reader must treat the guard as dead."""

    updated_at: datetime
    heartbeat_at: datetime
    scopes: dict[str, Scope] = field(default_factory=dict)
    ttl: timedelta = DEFAULT_TTL

    @property
    def expires_at(self) -> datetime:
        return self.heartbeat_at + self.ttl

    @property
    def tripped(self) -> bool:
        return any(s.tripped for s in self.scopes.values())

    def to_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "updated_at": _iso(self.updated_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "expires_at": _iso(self.expires_at),
            "tripped": self.tripped,
            "scopes": {name: scope.to_json() for name, scope in sorted(self.scopes.items())},
        }


@dataclass(frozen=True, slots=True)
class ScopeChange:
    """A scope that tripped or was released, and why (for a change made by hand: who, and their reason)."""

    scope: str
    tripped: bool
    reason: str
    window: str | None

    @property
    def detail(self) -> str:
        """The history line: ``tripped by alice: deploy``, ``released: the daily window reset``, …"""
        if self.reason.startswith(("tripped", "released")):
            return self.reason
        verb = "tripped" if self.tripped else "released"
        return f"{verb}: {self.reason}" + (f" ({self.window})" if self.window else "")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _trip_reason(w: WindowEvaluation, trip_at: float) -> str:
    trip = w.trip_amount if w.trip_amount is not None else w.limit
    return f"{w.window.name} spend {w.spent_text} reached the trip threshold {format_human(trip)} ({trip_at:g}%)"


def _tightest(windows: tuple[WindowEvaluation, ...]) -> WindowEvaluation | None:
    """The window that leaves the least headroom; one whose headroom is not known comes first (it may be 0)."""
    unknown = [w for w in windows if w.headroom is None]
    if unknown:
        return min(unknown, key=lambda w: w.window.end)
    return min(windows, key=lambda w: (w.headroom or 0, w.window.end), default=None)


def _held_while_unknown(ev: BudgetEvaluation, prev: Scope | None, now: datetime) -> bool:
    """True when ``prev`` tripped ``ev``'s scope by a window (no override) whose spend is now not known, and that
    window has not reset: not knowing the spend is no reason to release (nor, rule 5, to trip)."""
    if prev is None or not prev.tripped or prev.override is not None or prev.window in (None, "manual", "stale"):
        return False
    if prev.until is not None and now >= prev.until:
        return False
    return any(w.window.name == prev.window and not w.known for w in ev.windows)


def _evaluated_scope(ev: BudgetEvaluation) -> Scope:
    tripping = [w for w in ev.windows if w.tripped]
    headroom = ev.headroom
    if tripping:
        last = max(tripping, key=lambda w: w.release_due(ev.now))
        until = last.release_due(ev.now)
        trip_at = ev.budget.trip_at if ev.budget.trip_at is not None else 100.0
        return Scope(True, _trip_reason(last, trip_at), None, until, last.window.name, last.spent, last.limit, 0)
    if ev.staleness.stale and ev.budget.on_stale == "closed":  # unknown spend included (evaluate says stale)
        reason = f"data is stale ({ev.staleness.reason or 'no fresh data'}) and on_stale is closed"
        return Scope(True, reason, None, None, "stale", None, None, 0)
    tight = _tightest(ev.windows)
    spent = tight.spent if tight is not None and tight.known else None
    return Scope(False, None, None, None, None, spent, tight.limit if tight else None, headroom)


def decide(
    evaluations: list[BudgetEvaluation],
    overrides: list[Override],
    release: str,
    previous: SwitchDoc | None,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    release_causes: Mapping[str, str] | None = None,
) -> tuple[SwitchDoc, list[ScopeChange]]:
    """Return the switch document at ``now`` and the scopes whose tripped state changed since ``previous``.

    ``ttl`` (``guardd.stale_after``) sets the document's ``expires_at``. ``release_causes`` names, per scope, why
    it is released if this decision releases it (``released by alice: fixed``, an override that expired); without
    one the cause is read from the documents (a ``released`` override, a window that reset, …).
    """
    causes = release_causes or {}
    prev_scopes = previous.scopes if previous else {}
    active = {o.scope: o for o in overrides if o.active(now)}
    scopes: dict[str, Scope] = {}
    for ev in evaluations:
        scope = _evaluated_scope(ev)
        prev = prev_scopes.get(ev.name)
        if release == "manual" and not scope.tripped and prev is not None and prev.tripped and prev.override is None:
            # Latched: only an override releases it.
            scope = Scope(True, prev.reason, prev.since, None, prev.window, scope.spent, scope.limit, 0)
        elif release == "manual" and scope.tripped:
            scope = Scope(True, scope.reason, None, None, scope.window, scope.spent, scope.limit, 0)
        elif not scope.tripped and prev is not None and _held_while_unknown(ev, prev, now):
            scope = Scope(True, prev.reason, prev.since, prev.until, prev.window, scope.spent, scope.limit, 0)
        scopes[ev.name] = _apply_override(scope, active.get(ev.name))
    if GLOBAL_SCOPE in active:
        idle = Scope(False, None, None, None, None, None, None, 0)
        scopes[GLOBAL_SCOPE] = _apply_override(idle, active[GLOBAL_SCOPE])

    # Continuity of `since`, and the list of changes.
    changes: list[ScopeChange] = []
    for name, scope in list(scopes.items()):
        prev = prev_scopes.get(name)
        was = prev is not None and prev.tripped
        if scope.tripped:
            since = prev.since if was and prev is not None and prev.since is not None else now
            scopes[name] = _with_since(scope, since)
        if scope.tripped and not was:
            changes.append(ScopeChange(name, True, scope.reason or "tripped", scope.window))
        elif was and not scope.tripped and prev is not None:
            changes.append(ScopeChange(name, False, causes.get(name) or _release_cause(scope, prev, now), None))
    for name, prev in prev_scopes.items():
        if name not in scopes and prev.tripped:
            gone = "scope removed from the configuration"
            cause = causes.get(name) or (_release_cause(None, prev, now) if name == GLOBAL_SCOPE else gone)
            changes.append(ScopeChange(name, False, cause, None))

    doc = SwitchDoc(updated_at=now, heartbeat_at=now, scopes=scopes, ttl=ttl)
    if previous is not None and _same_content(previous, doc):
        doc = SwitchDoc(updated_at=previous.updated_at, heartbeat_at=now, scopes=scopes, ttl=ttl)
    return doc, changes


def _release_cause(scope: Scope | None, prev: Scope, now: datetime) -> str:
    """Why a scope that was tripped is not any more, read from the documents before and after."""
    override = scope.override if scope is not None else None
    if override is not None and override.state == "released":
        return f"released by {override.by}: {override.reason or 'no reason given'}"
    if prev.window == "manual" and prev.override is not None:
        return f"the manual trip by {prev.override.by} ended"
    if prev.until is not None and now >= prev.until and prev.window:
        return f"the {prev.window} window reset"
    if prev.window == "stale":
        return "the data is fresh again"
    return "spend is below the trip threshold again"


def without_override(
    scope: str,
    evaluations: list[BudgetEvaluation],
    overrides: list[Override],
    release: str,
    previous: SwitchDoc | None,
    now: datetime,
) -> Scope | None:
    """Return ``scope`` as the evaluation alone would leave it, its override removed (None: no such scope).

    A hand release of a scope that the evaluation trips as well (a budget over its limit) must hold it released
    (a ``released`` override until that window resets): removing the manual trip alone would not release it, and
    one release must be enough.
    """
    remaining = [o for o in overrides if o.scope != scope]
    doc, _ = decide(evaluations, remaining, release, previous, now)
    return doc.scopes.get(scope)


def _with_since(scope: Scope, since: datetime) -> Scope:
    return Scope(
        scope.tripped,
        scope.reason,
        since,
        scope.until,
        scope.window,
        scope.spent,
        scope.limit,
        scope.headroom,
        scope.override,
    )


def _apply_override(scope: Scope, override: Override | None) -> Scope:
    if override is None:
        return scope
    if override.state == "tripped":
        reason = f"tripped by {override.by}: {override.reason}" if override.reason else f"tripped by {override.by}"
        return Scope(True, reason, None, override.until, "manual", scope.spent, scope.limit, 0, override)
    headroom = scope.headroom if not scope.tripped else 0  # the limit is passed: 0, never the unknown None
    return Scope(False, None, None, None, None, scope.spent, scope.limit, headroom, override)


def _same_content(a: SwitchDoc, b: SwitchDoc) -> bool:
    return {k: v.to_json() for k, v in a.scopes.items()} == {k: v.to_json() for k, v in b.scopes.items()}


def blocks(doc_scopes: dict[str, Scope], budget: str | None) -> bool:
    """Return True when ``budget`` (None: any) is tripped in ``doc_scopes``, the global scope included."""
    if GLOBAL_SCOPE in doc_scopes and doc_scopes[GLOBAL_SCOPE].tripped:
        return True
    if budget is None:
        return any(s.tripped for s in doc_scopes.values())
    scope = doc_scopes.get(budget)
    return scope is not None and scope.tripped

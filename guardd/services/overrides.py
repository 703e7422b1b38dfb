"""Manual control of the kill-switch (``guardd killswitch trip|release`` and ``POST /v1/killswitch/…``).

One policy for both: a trip records a ``tripped`` override; a release removes a manual trip, and records a
``released`` override that holds until the tripping window resets (or ``until``) when the budget's own evaluation
would trip it all the same — so one release always releases; without a budget, a trip acts on the
global scope ``*`` and a release on every tripped scope. The switch is then recomputed at once through the
caller's :class:`~guardd.services.jobs.Engine` (the daemon passes its own, so there is one writer of the switch), and a
message goes to the notifiers. On a shared store, an instance that does not lead only records the overrides and the
message (:func:`request_manual`): the leader decides the switch, and every instance's mirror writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from guardd.core.periods import Kind, parse_duration, window_at
from guardd.core.switch import GLOBAL_SCOPE, Override, Scope, SwitchDoc, without_override
from guardd.errors import NotLeader
from guardd.store.api import Message

if TYPE_CHECKING:
    from guardd.services.jobs import Engine

Action = Literal["trip", "release"]


@dataclass(slots=True)
class ManualResult:
    """The switch after a manual action, and notes for the person who acted (e.g. a release with no end)."""

    doc: SwitchDoc
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Recorded:
    """What a manual action wrote to the store, and what remains to do: the scopes acted on, why each is
    released (for the switch's history), the notes for the person, and the messages to queue."""

    scopes: list[str]
    causes: dict[str, str]
    notes: list[str]
    messages: list[Message]


class ManualNotApplied(NotLeader):
    """The overrides of a manual action are committed, but the leader's term ended before the switch was decided:
    the next leader applies them. ``recorded`` is what was written: queue its message and wait
    (:func:`requested`), never record it again — a release recorded twice, after its first pass had removed a
    manual trip, found no trip left and held the budget released with no end."""

    def __init__(self, recorded: Recorded) -> None:
        super().__init__("this instance's term ended after the manual change was recorded, before it was applied")
        self.recorded = recorded


@dataclass(slots=True)
class ManualRequest:
    """A manual action recorded by an instance that does not lead a shared store: the leader applies it at its
    next evaluation. ``expected`` is, per scope acted on, the override the switch shows once it is applied
    (None: none)."""

    expected: dict[str, Override | None]
    notes: list[str] = field(default_factory=list)

    def applied(self, doc: SwitchDoc | None) -> bool:
        """True when ``doc`` (a committed switch document) shows every override of this request."""
        if doc is None:
            return False
        for name, want in self.expected.items():
            scope = doc.scopes.get(name)
            have = scope.override if scope is not None else None
            if (want is None) != (have is None):
                return False
            if want is not None and have is not None and _decision(have) != _decision(want):
                return False
        return True


def _decision(o: Override) -> tuple[str, str, str, datetime | None]:
    """What a switch document shows of an override: its state, who, why and until (a repeat with a new --for is
    a new decision); not when it was stored."""
    return (o.state, o.by, o.reason, o.until)


async def apply_manual(
    engine: Engine, action: Action, scope: str, until: datetime | None, reason: str, by: str, now: datetime
) -> ManualResult:
    """Record a manual trip/release of ``scope`` by ``by``, recompute the switch and enqueue the notification.

    The caller has checked that ``scope`` names a budget or is ``*``. Return the new switch document.
    """
    done = await record_manual(engine, action, scope, until, reason, by, now)
    try:
        doc = await engine.cycle(now, causes=done.causes)
    except NotLeader as exc:
        raise ManualNotApplied(done) from exc
    if not engine.dry_run:
        await engine.state.enqueue(done.messages, now)
    return ManualResult(doc, done.notes)


async def request_manual(
    engine: Engine, action: Action, scope: str, until: datetime | None, reason: str, by: str, now: datetime
) -> ManualRequest:
    """Record a manual trip/release and enqueue its notification, without deciding the switch: on a shared store,
    an instance that does not lead leaves the decision to the leader (the one writer of the switch), which
    applies the overrides at its next evaluation; ``engine`` writes through the plain (unfenced) state.

    Return what the committed switch shows once the leader applied it (:meth:`ManualRequest.applied`).
    """
    done = await record_manual(engine, action, scope, until, reason, by, now)
    return await requested(engine, done, now)


async def requested(engine: Engine, done: Recorded, now: datetime) -> ManualRequest:
    """Queue the message of a manual action whose overrides are recorded (``done``), and return what the committed
    switch shows once the leader applied them. Records nothing: see :class:`ManualNotApplied`."""
    if not engine.dry_run:
        await engine.state.enqueue(done.messages, now)
    active = {o.scope: o for o in await engine.state.overrides() if o.active(now)}
    return ManualRequest({name: active.get(name) for name in done.scopes}, done.notes)


async def record_manual(
    engine: Engine, action: Action, scope: str, until: datetime | None, reason: str, by: str, now: datetime
) -> Recorded:
    """Record the overrides of a manual trip/release of ``scope`` by ``by`` and build its messages (not queued)."""
    from guardd.services.jobs import routes

    state = engine.state
    notes: list[str] = []
    causes: dict[str, str] = {}
    names = [scope]
    if action == "trip":
        await state.set_override(Override(scope, "tripped", by, reason, until), now)
    else:
        if scope == GLOBAL_SCOPE:
            previous = await state.switch_doc()
            names = [name for name, s in (previous.scopes.items() if previous else []) if s.tripped] or names
        for name in names:
            await _release(engine, name, by, reason, until, now, notes)
            causes[name] = f"released by {by}: {reason or 'no reason given'}"
    verb = "tripped" if action == "trip" else "released"
    title = f"guardd: kill-switch {verb} by hand ({'all budgets' if scope == GLOBAL_SCOPE else scope})"
    body = f"By {by}" + (f" until {until.isoformat()}" if until else "") + f". Reason: {reason or 'none given'}."
    budget = engine.config.budget(scope)
    severity = "critical" if action == "trip" else "info"
    messages = [
        Message(scope, severity, title, body, c.index, c.display)
        for c in engine.channels
        if routes(c, "critical" if action == "trip" else "warning", budget)
    ]
    return Recorded(names, causes, notes, messages)


async def _release(
    engine: Engine, scope: str, by: str, reason: str, until: datetime | None, now: datetime, notes: list[str]
) -> None:
    """Release ``scope`` in one go: drop its manual trip, and hold it released (until ``until``, else until the
    tripping window resets) when its own evaluation would trip it all the same — one release is always enough."""
    state = engine.state
    overrides = await state.overrides()
    current = next((o for o in overrides if o.scope == scope), None)
    manual_trip = current is not None and current.state == "tripped"
    removed = f"manual trip removed by {by}: {reason or 'no reason given'}"
    if scope == GLOBAL_SCOPE:  # nothing evaluates `*`: only a manual trip holds it
        if manual_trip:
            await state.remove_override(scope, now, removed)
        return
    budget = engine.config.budget(scope)
    evaluations = await engine.evaluator.evaluate_all(now, [budget]) if budget is not None else []
    release = engine.config.settings.killswitch.release
    held = without_override(scope, evaluations, overrides, release, await state.switch_doc(), now)
    if until is None and (held is None or not held.tripped):
        # Nothing but a manual trip holds it: remove that one. With none (e.g. a release asked again before the
        # first was applied, which removed it), there is nothing to hold open — a release with no end would
        # keep the budget from ever tripping again.
        if manual_trip:
            await state.remove_override(scope, now, removed)
        return
    if until is None:
        until = _window_reset(engine, held, now)
        if until is None:
            notes.append(f"{scope}'s release has no natural end; it lasts until removed (or use --for)")
    await state.set_override(Override(scope, "released", by, reason, until), now)


def _window_reset(engine: Engine, held: Scope | None, now: datetime) -> datetime | None:
    """When the window that trips ``held`` resets: the end of an automatic release hold.

    Derived from the tripping window itself, because with ``release = "manual"`` the scope's own ``until`` is
    null — taking that would make the release last forever.
    """
    if held is None or not held.tripped:
        return None
    if held.until is not None:
        return held.until
    settings = engine.config.settings.guardd
    if held.window in {k.value for k in Kind}:
        return window_at(held.window, settings.zone, now, settings.weekday).end
    if held.window and held.window.startswith("rolling:"):
        return now + parse_duration(held.window.removeprefix("rolling:"))
    return None

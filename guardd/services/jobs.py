"""The daemon's units of work: an evaluation cycle (alerts → outbox, switch → file) and outbox delivery.

Decide, then apply: the core decides (alert transitions, switch document); this module writes rows, the file
and sends. ``dry_run`` is checked only here, where something would change outside the state database or be sent:
a dry run logs what it would do and persists no alert state (else the real run would never announce it).

:class:`Engine` is the evaluation cycle (windows, alerts, health rules, system notices) over two jobs of its own:
the switch (:mod:`guardd.services.switch`) and outbox delivery (:mod:`guardd.services.delivery`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from guardd.adapters.instance_lock import pid_space
from guardd.config import Config
from guardd.core import health
from guardd.core.alerts import Announcement, Policy, severity_rank, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import BudgetEvaluation
from guardd.core.health import HEALTH_WINDOW, HealthEvaluation
from guardd.core.periods import forward_now
from guardd.core.switch import GLOBAL_SCOPE, SwitchDoc
from guardd.services.advice import top_line
from guardd.services.delivery import Delivery, channels_of, routes
from guardd.services.evaluation import Evaluator
from guardd.services.health_rules import evaluate_rules
from guardd.services.messages import render, render_health
from guardd.services.switch import SwitchWriter
from guardd.store.api import Message, OutboxRow, StateAPI

__all__ = ["Engine", "channels_of", "routes"]

log = logging.getLogger("guardd.services.jobs")

HEALTH_PREFIX = "health:"
"""Alert state, outbox rows and history of a health rule are kept under ``health:<rule name>``."""
CLOCK_MARKER = "clock"  # the latest time windows were evaluated at


class Engine(SwitchWriter, Delivery):
    """Evaluates budgets and applies the consequences. One per daemon (or per CLI command that writes).

    :meth:`cycle` and :meth:`deliver` may be called concurrently: they take turns (one lock), because a cycle
    reads the alert state, decides and writes it back, and two interleaved cycles would announce one change twice.
    """

    def __init__(
        self,
        config: Config,
        state: StateAPI,
        evaluator: Evaluator,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.state = state
        self.evaluator = evaluator
        self.dry_run = dry_run
        self.channels = channels_of(config)
        self.claimant = f"{config.instance}:{pid_space()}"
        """This instance in this pid space (:func:`~guardd.adapters.instance_lock.pid_space`): whose claims a
        restart may free when their process is gone (``release_dead_leases``). The instance name, not the host
        name: two containers may share a host name (and pids), never an instance name on one store (contract §9);
        the pid space, because after a takeover of the name the old process, in another container, may still be
        sending: its claims expire with their lease, never freed early on a pid that means nothing here."""
        self.owner = f"{self.claimant}:{os.getpid()}"
        """Who claims outbox rows: ``instance:pid-space:pid``."""
        self.last: dict[str, BudgetEvaluation] = {}
        self.doc: SwitchDoc | None = None
        self.key_switch: Any = None  # guardd.services.openrouter.keys.KeySwitch when keys are to follow the switch
        self.on_switch: Callable[[SwitchDoc], None] | None = None
        """Called with every switch document decided, once it is written (the HTTP service publishes it)."""
        self._high_water: datetime | None = None
        self._unmarked: dict[int, tuple[OutboxRow, str]] = {}
        """Outbox rows a channel accepted whose delivered mark failed; marked at the next delivery, never resent."""
        self._hastened_for: frozenset[str] | None = None
        """The notifiers (redacted URLs) whose orphaned rows' next tries were last made due (Delivery._deliver)."""
        self._clock_behind = False
        self._turn = asyncio.Lock()
        self.written: SwitchDoc | None = None
        """The last switch document written to the file (what clients read); its heartbeat is the last one."""
        self.switch_error: str | None = None
        """Why the latest write of the switch file failed; None once a write succeeds. A failed write (contract §8)."""
        self.writes_file = True
        """False on a shared store: there every instance's switch mirror (:mod:`guardd.daemon.cluster`) writes its
        own file from the committed decision; the engine decides and saves only."""
        self.fence: Callable[[], None] = lambda: None
        """Called before each send; raises (NotLeader) when this engine's term as leader is over, so a deposed
        leader starts no send after its successor started (:mod:`guardd.daemon.cluster`)."""
        self.keeps_heartbeat = False
        """True for a command that writes the switch but is not the daemon (``killswitch trip|release``): the file
        then keeps the previous document's ``heartbeat_at``/``expires_at`` (none when it had none), because only
        the daemon's evaluations are heartbeats (contract §3) — a dead guard stays dead."""

    def new_term(self) -> None:
        """Forget what this process remembered of an earlier term as leader (a shared store): another leader may
        have decided, announced and advanced the evaluated time since; everything is read from the store again."""
        self.last, self.doc, self._high_water, self._clock_behind = {}, None, None, False
        if self.key_switch is not None:
            self.key_switch.forget()

    @property
    def policy(self) -> Policy:
        alerts = self.config.settings.alerts
        return Policy(repeat_every=alerts.repeat_every, send_resolved=alerts.send_resolved)

    async def cycle(
        self, now: datetime, only: list[Budget] | None = None, causes: Mapping[str, str] | None = None
    ) -> SwitchDoc:
        """Evaluate ``only`` (default: every budget), announce what changed and write the switch.

        Windows are evaluated, and alerts stepped, at :func:`forward_now` (the latest time evaluated, persisted):
        a wall clock stepped back never re-opens an ended window. The switch document keeps wall-clock times.
        ``causes`` names why a scope is released if this cycle releases it (a hand release: who and why).
        """
        async with self._turn:
            return await self._cycle(now, only, causes)

    async def _cycle(self, now: datetime, only: list[Budget] | None, causes: Mapping[str, str] | None) -> SwitchDoc:
        at = await self._forward(now)
        for ev in await self.evaluator.evaluate_all(at, only):
            self.last[ev.name] = ev
            _log_decision(ev)
        names = {b.name for b in self.config.budgets}
        self.last = {k: v for k, v in self.last.items() if k in names}
        evaluations = [self.last[b.name] for b in self.config.budgets if b.name in self.last]
        doc = await self._switch(evaluations, now, causes)
        silenced = {s.budget for s in await self.state.silences(now)}
        for ev in evaluations if only is None else [self.last[b.name] for b in only if b.name in self.last]:
            await self._alerts(ev, doc, at, ev.name in silenced or GLOBAL_SCOPE in silenced)
        if self.config.health:
            stats = self.evaluator.stats
            for hev in await evaluate_rules(self.config.health, stats, self.evaluator.series, now):
                await self._health_alerts(hev, now, hev.name in silenced or GLOBAL_SCOPE in silenced)
        return doc

    async def _forward(self, now: datetime) -> datetime:
        """Return the time to evaluate windows at, and persist it as the latest one (see :func:`forward_now`)."""
        if self._high_water is None:
            mark = await self.state.marker(CLOCK_MARKER)
            self._high_water = datetime.fromisoformat(mark) if mark else None
        at = forward_now(now, self._high_water)
        if at > now:
            if not self._clock_behind:
                log.warning(
                    "the wall clock stepped back %s behind the latest time evaluated; windows stay as they were"
                    " until it catches up",
                    at - now,
                )
            self._clock_behind = True
            return at
        self._clock_behind = False
        self._high_water = at
        if not self.dry_run:
            await self.state.set_marker(CLOCK_MARKER, at.isoformat(), now)
        return at

    async def _health_alerts(self, ev: HealthEvaluation, now: datetime, silenced: bool) -> None:
        """A health rule through the alert state machine; kept under ``health:<name>`` beside the budgets."""
        key = HEALTH_PREFIX + ev.name
        previous = await self.state.alert_states(key)
        state, ann = health.step(previous.get(HEALTH_WINDOW), ev, self.policy, now, silenced)
        if ann is None and previous.get(HEALTH_WINDOW) == state:
            return
        messages: list[Message] = []
        history: list[tuple[str, str]] = []
        if ann is not None:
            title, body = render_health(ann, ev)
            history = [("alert", f"{ann.severity}: {title}" + (" (silenced)" if ann.silenced else ""))]
            log.log(logging.WARNING if ann.severity == "warning" else logging.INFO, "%s", title)
            targets = [c for c in self.channels if routes(c, ann.severity, ev.rule)]
            if self.dry_run:
                log.info("dry run; not sending to %d channel(s): %s", len(targets), title)
            elif not ann.silenced:
                messages = [Message(key, ann.severity, title, body, c.index, c.display) for c in targets]
        if self.dry_run:
            return
        await self.state.save_alerts(key, {HEALTH_WINDOW: state}, messages, history, now)

    async def _alerts(self, ev: BudgetEvaluation, doc: SwitchDoc, now: datetime, silenced: bool) -> None:
        previous = await self.state.alert_states(ev.name)
        states, ann = step(previous, ev, self.policy, now, silenced)
        if ann is None and states == previous:
            return
        messages: list[Message] = []
        history: list[tuple[str, str]] = []
        if ann is not None:
            messages, history = await self._announce(ann, ev, doc, now)
        if self.dry_run:
            return
        await self.state.save_alerts(ev.name, states, messages, history, now)

    async def _announce(
        self, ann: Announcement, ev: BudgetEvaluation, doc: SwitchDoc, now: datetime
    ) -> tuple[list[Message], list[tuple[str, str]]]:
        worst = next((w for w in ev.windows if w.window.name == ann.changes[0].window), None)
        top = await self.evaluator.top_spend(ev.budget, worst.window, now) if worst else None
        advice = None
        if ev.budget.suggest and severity_rank(ann.severity) >= severity_rank("warning"):
            window = (worst or ev.windows[0]).window if (worst or ev.windows) else None
            if window is not None:
                stats = self.evaluator.stats
                advice = await top_line(self.evaluator, stats, ev.budget, window.start, min(window.end, now))
        title, body = render(ann, ev, doc.scopes.get(ev.name), self.config.zone, top, advice)
        history = [("alert", f"{ann.severity}: {title}" + (" (silenced)" if ann.silenced else ""))]
        level = logging.WARNING if severity_rank(ann.severity) >= 1 else logging.INFO
        log.log(level, "%s", title, extra={"ctx": {"budget": ann.budget}})
        if ann.silenced:
            return [], history
        targets = [c for c in self.channels if routes(c, ann.severity, ev.budget)]
        if self.dry_run:
            log.info("dry run; not sending to %d channel(s): %s", len(targets), title)
            return [], history
        return [Message(ann.budget, ann.severity, title, body, c.index, c.display) for c in targets], history

    async def notify_system(
        self,
        title: str,
        body: str,
        severity: str,
        now: datetime,
        budget: Budget | None = None,
        once: tuple[str, str] | None = None,
    ) -> bool:
        """Announce something that is not a budget window (low balance, drift, key switch) through the outbox.

        With ``once = (marker, value)`` the message is queued only if the marker does not hold ``value`` yet, and
        the marker is set in the same transaction as the outbox rows: a failure leaves both for the next try.
        Return True when queued.
        """
        if once is not None and await self.state.marker(once[0]) == once[1]:
            return False
        level = logging.WARNING if severity_rank(severity) >= 1 else logging.INFO
        log.log(level, "%s", title)
        if self.dry_run:
            log.info("dry run; not sending: %s", title)
            return False
        messages = self._system_messages(title, body, severity, budget)
        detail = f"{severity}: {title}"
        if once is not None:
            return await self.state.notify_once(once[0], once[1], messages, detail, now)
        await self.state.enqueue(messages, now, history=(budget.name if budget else None, detail))
        return True

    def _system_messages(self, title: str, body: str, severity: str, budget: Budget | None = None) -> list[Message]:
        targets = [c for c in self.channels if routes(c, severity, budget)]
        return [Message(budget.name if budget else None, severity, title, body, c.index, c.display) for c in targets]


def _log_decision(ev: BudgetEvaluation) -> None:
    """At debug level (``-v``): what one evaluation decided for a budget, window by window."""
    windows = ", ".join(f"{w.window.name} {w.percent_text} {w.state}" for w in ev.windows)
    ctx = {"budget": ev.name, "state": ev.state, "tripped": ev.tripped, "windows": windows}
    log.debug("evaluated", extra={"ctx": ctx})

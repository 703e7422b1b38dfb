"""The daemon's units of work: an evaluation cycle (alerts → outbox, switch → file) and outbox delivery.

Decide, then apply: the core decides (alert transitions, switch document); this module writes rows, the file
and sends. ``dry_run`` is checked only here, where something would change outside the state database or be sent:
a dry run logs what it would do and persists no alert state (else the real run would never announce it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from guardd.adapters import killswitch, notifier
from guardd.adapters.notifier import Channel
from guardd.config import Config
from guardd.core import health
from guardd.core.alerts import Announcement, Policy, severity_rank, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import BudgetEvaluation
from guardd.core.health import HEALTH_WINDOW, HealthEvaluation, HealthRule
from guardd.core.periods import forward_now
from guardd.core.switch import GLOBAL_SCOPE, ScopeChange, SwitchDoc, decide
from guardd.errors import DeliveryError, StoreError, SwitchFileError
from guardd.services.advice import top_line
from guardd.services.evaluation import Evaluator
from guardd.services.health_rules import evaluate_rules
from guardd.services.messages import render, render_health
from guardd.store.api import Message, OutboxRow, StateAPI, SwitchDecision

log = logging.getLogger("guardd.services.jobs")

HEALTH_PREFIX = "health:"
"""Alert state, outbox rows and history of a health rule are kept under ``health:<rule name>``."""
LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(hours=24)
MAX_BACKOFF = timedelta(hours=1)
CLOCK_MARKER = "clock"  # the latest time windows were evaluated at
LIVENESS_FIELDS = ("heartbeat_at", "expires_at")


def channels_of(config: Config) -> list[Channel]:
    return [
        Channel.build(i, n.url.get_secret_value(), n.tags, n.min_severity)
        for i, n in enumerate(config.settings.notifiers)
    ]


def routes(channel: Channel, severity: str, budget: Budget | HealthRule | None) -> bool:
    """Return True when ``channel`` should receive a message of ``severity`` about ``budget`` (or a health
    rule): its ``notify`` tags, absent meaning every notifier."""
    if severity_rank(severity) < severity_rank(channel.min_severity):
        return False
    if budget is None or budget.notify is None:
        return True
    return bool(set(budget.notify) & set(channel.tags))


class Engine:
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
        self.owner = f"{config.instance}:{os.getpid()}"
        """Who claims outbox rows: ``instance:pid``. The instance name, not the host name: two containers may share
        a host name (and pids), never an instance name on one store (contract §9)."""
        self.last: dict[str, BudgetEvaluation] = {}
        self.doc: SwitchDoc | None = None
        self.key_switch: Any = None  # guardd.services.openrouter.keys.KeySwitch when keys are to follow the switch
        self.on_switch: Callable[[SwitchDoc], None] | None = None
        """Called with every switch document decided, once it is written (the HTTP service publishes it)."""
        self._high_water: datetime | None = None
        self._unmarked: dict[int, tuple[OutboxRow, str]] = {}
        """Outbox rows a channel accepted whose delivered mark failed; marked at the next delivery, never resent."""
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

    async def _switch(
        self, evaluations: list[BudgetEvaluation], now: datetime, causes: Mapping[str, str] | None = None
    ) -> SwitchDoc:
        overrides = await self.state.overrides()
        release_causes = dict(causes or {})
        for ov in overrides:
            if not ov.active(now):
                if ov.state == "tripped":
                    release_causes.setdefault(ov.scope, f"the manual trip by {ov.by} expired")
                if not self.dry_run:
                    await self.state.remove_override(ov.scope, now, f"override {ov.state} by {ov.by} expired")
        settings = self.config.settings

        def decided(previous: SwitchDoc | None) -> tuple[SwitchDoc, list[ScopeChange]]:
            return decide(
                evaluations,
                overrides,
                settings.killswitch.release,
                previous,
                now,
                settings.guardd.stale_after,
                release_causes,
            )

        if self.dry_run:
            doc, changes = decided(self.doc)
            self.doc = self.written = doc
            self._log_changes(changes)
            if changes:
                log.info("dry run; not writing the kill-switch file")
            self._published(doc)
            return doc
        made: list[ScopeChange] = []
        keys_follow = self.key_switch is not None and settings.killswitch.disable_openrouter_keys

        def step(previous: SwitchDoc | None) -> SwitchDecision:
            doc, changes = decided(previous)
            made[:] = changes
            # written while the decision's transaction holds the store: two deciders write in the order they save
            if self.writes_file:
                self._write_file(doc)
            save = bool(changes) or previous is None or previous.updated_at != doc.updated_at
            history = [(c.scope, c.detail) for c in changes]
            return SwitchDecision(doc, history, save, changes if keys_follow else ())

        try:
            # Decided from the stored document, not this process's last one: another process (a killswitch
            # command, the daemon) may have changed it since, and its change must not be recorded twice.
            doc = await self.state.update_switch(step, now)
        except StoreError:
            if not made and self.writes_file:  # the state could not be read or written: keep the guard's word
                doc, _ = decided(self.doc)  # current all the same
                self._write_file(doc)
                self.doc = doc
            raise
        self.doc = doc
        self._log_changes(made)
        self._published(doc)
        if keys_follow:
            await self.key_switch.apply(now, self._system_messages)
        return doc

    @staticmethod
    def _log_changes(changes: list[ScopeChange]) -> None:
        for change in changes:
            log.warning("kill-switch %s", change.detail, extra={"ctx": {"budget": change.scope}})

    def _write_file(self, doc: SwitchDoc) -> None:
        section = self.config.settings.killswitch
        try:
            killswitch.write_atomic(
                self.config.killswitch_path, self._file_document(doc), section.mode_bits, section.group
            )
        except SwitchFileError as exc:
            self.switch_error = str(exc)  # a failed write: status, check and /healthz say so until one succeeds
            raise
        self.switch_error = None
        self.written = doc  # what the file says now (the metrics report this, not an unwritten decision)

    def _file_document(self, doc: SwitchDoc) -> dict[str, Any]:
        document = doc.to_json()
        if self.keeps_heartbeat:
            try:
                previous = killswitch.read(self.config.killswitch_path) or {}
            except SwitchFileError:
                previous = {}
            for name in LIVENESS_FIELDS:
                document[name] = previous.get(name)
        return document

    def _published(self, doc: SwitchDoc) -> None:
        if self.on_switch is not None:
            try:
                self.on_switch(doc)
            except Exception:
                log.exception("publishing the switch document failed")

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

    # ---- delivery ---------------------------------------------------------------------------------------
    async def deliver(self, now: datetime) -> int:
        """Send every due outbox row once; return how many were delivered."""
        if self.dry_run:
            return 0
        async with self._turn:
            return await self._deliver(now)

    async def _deliver(self, now: datetime) -> int:
        delivered = 0
        # Rows sent whose delivered mark failed: mark them (never send them again) before anything else.
        for row, display in list(self._unmarked.values()):
            await self.state.delivered(row, now)
            del self._unmarked[row.id]
            await self.state.channel_result(display, True, None, now)
            delivered += 1
        for row in await self.state.claim(self.owner, now, LEASE):
            if row.id in self._unmarked:
                continue
            channel = self._channel_for(row)
            if channel is None:
                await self.state.failed(row, now, "the notifier is no longer configured", None)
                continue
            try:
                self.fence()  # NotLeader (no DeliveryError) ends a deposed leader's delivery; the row stays claimed
                await notifier.send(channel, row.title, row.body, row.severity)
            except DeliveryError as exc:
                await self._failed(row, channel, exc, now)
                continue
            self._unmarked[row.id] = (row, channel.display)
            await self.state.delivered(row, now)
            del self._unmarked[row.id]
            await self.state.channel_result(channel.display, True, None, now)
            delivered += 1
        return delivered

    def _channel_for(self, row: OutboxRow) -> Channel | None:
        if row.notifier < len(self.channels) and self.channels[row.notifier].display == row.notifier_url:
            return self.channels[row.notifier]
        return next((c for c in self.channels if c.display == row.notifier_url), None)

    async def _failed(self, row: OutboxRow, channel: Channel, exc: DeliveryError, now: datetime) -> None:
        error = str(exc)
        retry_at: datetime | None = None
        if not exc.permanent and now - row.created_at < GIVE_UP_AFTER:
            first = self.config.settings.alerts.retry_after
            backoff = min(first * 2 ** min(row.attempts, 12), MAX_BACKOFF)
            retry_at = now + backoff * random.uniform(0.8, 1.2)
        log.warning(
            "notification failed%s: %s",
            "" if retry_at else " (giving up)",
            error,
            extra={"ctx": {"budget": row.budget}},
        )
        await self.state.failed(row, now, error, retry_at)
        if await self.state.channel_result(channel.display, False, error, now):
            others = [c for c in self.channels if c.display != channel.display and routes(c, "warning", None)]
            title = f"guardd: notifications to {channel.display} are failing"
            body = f"Since {now.isoformat()}: {error}\n\nMessages are kept and retried with backoff."
            await self.state.enqueue([Message(None, "warning", title, body, c.index, c.display) for c in others], now)


def _log_decision(ev: BudgetEvaluation) -> None:
    """At debug level (``-v``): what one evaluation decided for a budget, window by window."""
    windows = ", ".join(f"{w.window.name} {w.percent:.1f}% {w.state}" for w in ev.windows)
    ctx = {"budget": ev.name, "state": ev.state, "tripped": ev.tripped, "windows": windows}
    log.debug("evaluated", extra={"ctx": ctx})

"""Outbox delivery: each due outbox row is claimed under a lease, sent once and marked delivered; a failure is data.

:class:`Delivery` is the delivery job of :class:`~guardd.services.jobs.Engine` (a base class of it, sharing its
store, channels, owner, fence and turn lock): :meth:`Delivery.deliver` sends every due row. A row is marked
delivered only after its channel accepted it; one whose mark failed is marked at the next delivery, never sent
again. A failed send is retried with jittered exponential backoff (from ``[alerts] retry_after`` up to
:data:`MAX_BACKOFF`) until :data:`GIVE_UP_AFTER`, or given up at once when permanent; a channel that starts failing
is announced on the others. :func:`channels_of` and :func:`routes` say which channels there are and which get what.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from guardd.adapters import notifier
from guardd.adapters.notifier import Channel
from guardd.config import Config
from guardd.core.alerts import severity_rank
from guardd.core.budgets import Budget
from guardd.core.health import HealthRule
from guardd.core.undelivered import DROPPED, dropped
from guardd.errors import DeliveryError
from guardd.store.api import Message, OutboxRow, StateAPI

log = logging.getLogger("guardd.services.jobs")

LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(hours=24)
MAX_BACKOFF = timedelta(hours=1)


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


class Delivery:
    """The outbox delivery job (see the module's docstring). Its attributes are set by
    :class:`~guardd.services.jobs.Engine`; :meth:`deliver` takes turns with the engine's cycles (one lock)."""

    config: Config
    state: StateAPI
    dry_run: bool
    channels: list[Channel]
    owner: str
    fence: Callable[[], None]
    _turn: asyncio.Lock
    _unmarked: dict[int, tuple[OutboxRow, str]]
    _hastened_for: frozenset[str] | None

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
        configured = frozenset(c.display for c in self.channels)
        if configured != self._hastened_for:
            # The configuration's notifiers are new to this process (a start, a reload): the rows waiting for a URL
            # no longer configured are due now — the natural repair of a failing notifier is to correct its URL, and
            # the corrected one is tried at once, not at the old one's next backoff (up to an hour away).
            await self.state.hasten(sorted(configured), now)
            self._hastened_for = configured
        for row in await self.state.claim(self.owner, now, LEASE):
            if row.id in self._unmarked:
                continue
            channel = self._channel_for(row)
            if channel is None:
                followed = await self._follow(row, now)
                if followed is None:
                    continue
                row, channel = followed
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

    async def _follow(self, row: OutboxRow, now: datetime) -> tuple[OutboxRow, Channel] | None:
        """The row whose notifier URL is no longer configured, and where it goes now (None: dropped, loudly).

        A notifier has no name in the configuration; what stays when its URL is corrected in place is its position
        in ``[[notifiers]]`` and its routing. So the row follows the notifier now at its index when that one still
        routes the message (tags, ``min_severity``) and had no copy of it (:meth:`StateAPI.addressed`): a notifier
        removed from above shifts the next one into its place, and that one already has its own copy. Otherwise
        the notifier is gone: the row is given up (:mod:`guardd.core.undelivered`), said in the log at warning
        with the alert's title (the log may now be where alerts go), in the history, and by ``status`` and
        ``check`` for a day."""
        here = self.channels[row.notifier] if row.notifier < len(self.channels) else None
        if (
            here is not None
            and routes(here, row.severity, self._subject(row.budget))
            and here.display not in await self.state.addressed(row)
        ):
            why = f"the notifier at position {row.notifier + 1} of [[notifiers]] has this URL now"
            await self.state.reroute(row, here.index, here.display, why, now)
            log.info("re-routed a waiting alert from %s to %s: %s", row.notifier_url, here.display, why)
            return replace(row, notifier=here.index, notifier_url=here.display), here
        log.warning("%s: %s", dropped(row.budget, row.notifier_url), row.title, extra={"ctx": {"budget": row.budget}})
        await self.state.failed(row, now, DROPPED, None)
        return None

    def _subject(self, budget: str | None) -> Budget | HealthRule | None:
        """The budget or health rule a message is about, by name (None: every notifier's, as a removed one's)."""
        subjects: list[Budget | HealthRule] = [*self.config.budgets, *self.config.health]
        return next((s for s in subjects if s.name == budget), None)

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

"""What the HTTP routes need from the daemon, as one narrow interface.

The routes never touch the store or the engine directly: they call a :class:`Backend`. The daemon's
implementation (:mod:`guardd.daemon.webservice`) runs every write — a pushed batch, a manual trip — through the
daemon's single writer, and answers reads from the same state the daemon evaluates. Tests of the routes could
pass another implementation; guardd's own tests go through the real daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from guardd.config import Config
from guardd.core.batch import Parsed
from guardd.core.evaluate import BudgetEvaluation
from guardd.core.money import Money
from guardd.store.api import BatchResult


@dataclass(frozen=True, slots=True)
class LedgerCount:
    """Events stored and lines quarantined so far for one ``[[ledgers]]`` entry (its path as configured)."""

    ledger: str
    events: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class KeyUsage:
    key: str  # redacted
    window: str  # daily | weekly | monthly | total
    usage: Money


@dataclass(frozen=True, slots=True)
class NotificationCount:
    notifier: str  # redacted URL
    result: Literal["delivered", "failed"]
    count: int


@dataclass(slots=True)
class MetricsSnapshot:
    """Everything ``/metrics`` exposes, read at scrape time from the current evaluation and the store."""

    heartbeat_at: datetime | None
    evaluations: list[BudgetEvaluation]
    switch: dict[str, bool]
    ledgers: list[LedgerCount]
    outbox_pending: int
    notifications: list[NotificationCount]
    stale: dict[str, bool]
    balance: Money | None = None
    keys: list[KeyUsage] = field(default_factory=list)


@dataclass(slots=True)
class Charts:
    """The page's two charts: each budget's cumulative spend over its first window (``(ms, pico-dollars)`` points,
    hourly), and the spend per local day for the last 30 days by model."""

    cumulative: dict[str, list[tuple[int, Money]]]
    daily: list[tuple[date, str, Money]]


class Backend(Protocol):
    """The daemon as the HTTP routes see it. Every method is called on the daemon's event loop."""

    @property
    def config(self) -> Config: ...

    async def status(self, now: datetime) -> dict[str, Any]:
        """The ``guardd status --json`` document, evaluated at ``now``."""

    async def ingest(self, parsed: Parsed) -> BatchResult:
        """Commit ``parsed`` through the daemon's single writer, then re-evaluate what it touched; return once
        both are done (the switch file already reflects the batch)."""

    async def manual(
        self, action: Literal["trip", "release"], scope: str, until: datetime | None, reason: str, by: str
    ) -> dict[str, Any]:
        """A manual trip/release exactly as the command does it; return the new switch document. On a shared
        store any instance accepts it; NotApplied when no leader applied it in time (it stays recorded)."""

    async def metrics(self, now: datetime) -> MetricsSnapshot: ...

    async def charts(self, now: datetime) -> Charts: ...

    def store_error(self) -> str | None:
        """Why the state cannot be written right now, or None when it can."""

"""The rows of the storage interface (:mod:`guardd.store.api`) that the read commands build — ``status`` and
``check`` above all: window sums, file checkpoints, set-aside lines, silences, channel health and request
counts. Plain dataclasses that every backend returns; money in integer pico-dollars.

Every frozen dataclass costs its definition at import (≈ 4 M instructions), so the rows only the daemon's write
path, its jobs or other commands build live by area beside this module, imported where they are built:
:mod:`~guardd.store.api.rows_ingest` (storing and pricing events), :mod:`~guardd.store.api.rows_daemon`
(messages and their outbox, history, switch decisions), :mod:`~guardd.store.api.rows_advice` (token sums),
:mod:`~guardd.store.api.rows_remote` (what guardd stored of OpenRouter) and
:mod:`~guardd.store.api.rows_cluster` (many instances on a shared store)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


# ---- events -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where reading of one file identity stands: the byte after the last complete line read."""

    ledger: str
    path: str
    dev: int
    ino: int
    fingerprint: str
    offset: int
    size: int
    tail: str
    events: int
    quarantined: int
    last_event_ms: int | None
    updated_at: datetime | None = field(default=None, compare=False)
    """When the store saved it (None for one not read from the store): a rotated sibling modified after the
    ledger's newest checkpoint may hold lines guardd never read (:mod:`guardd.ledger.siblings`)."""


@dataclass(frozen=True, slots=True)
class SetAside:
    """A ledger line set aside (quarantined): its file, byte offset, why, a redacted excerpt, and when."""

    path: str
    offset: int
    reason: str
    excerpt: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Sum:
    """Spend in pico-dollars, the number of events, and how many of them are unpriced (not in ``cost``)."""

    cost: int = 0
    events: int = 0
    unpriced: int = 0

    def __add__(self, other: Sum) -> Sum:
        return Sum(self.cost + other.cost, self.events + other.events, self.unpriced + other.unpriced)

    @staticmethod
    def total(sums: Iterable[Sum]) -> Sum:
        """The sum of ``sums`` (one Sum built, however many are added: a budget adds up hundreds of series)."""
        cost = events = unpriced = 0
        for s in sums:
            cost += s.cost
            events += s.events
            unpriced += s.unpriced
        return Sum(cost, events, unpriced)


# ---- the state ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Silence:
    """Notifications of ``budget`` (or ``*``: every one) muted until ``until``, by whom and why."""

    id: int
    budget: str
    until: datetime
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """A notification channel's latest result: ok, the last error (kept after a recovery), since when it fails."""

    ok: bool
    last_error: str | None
    failing_since: datetime | None


PENDING_KEYS = "keyswitch:pending"
"""The marker under which both backends keep the scope changes a switch decision still asks of the keys."""


# ---- request statistics -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Requests of a series that failed (ok = false) and that were rate limited (HTTP 429)."""

    errors: int
    rate_limited: int

"""Rows of the state the daemon writes (:class:`~guardd.store.api.StateAPI`): messages and their outbox, delivery
counts, history lines and switch decisions. Not imported by the read commands (:mod:`guardd.store.api.rows`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from guardd.core.switch import Override, ScopeChange, SwitchDoc


@dataclass(frozen=True, slots=True)
class Message:
    """A message to enqueue for one notifier."""

    budget: str | None
    severity: str
    title: str
    body: str
    notifier: int
    notifier_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow(Message):
    """A message claimed from the outbox, with its delivery bookkeeping."""

    id: int
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelCount:
    """Per channel (its redacted URL): messages delivered and failed attempts, over the outbox."""

    url: str
    delivered: int
    failed: int


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of the history: an alert, a switch change, an override, a silence, a delivery, a key switched."""

    at: datetime
    kind: str
    budget: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class SwitchDecision:
    """A switch decision to save: the document, its ``switch`` history lines ``(scope, detail)``, whether it
    changed at all (``save``), and the scope changes the OpenRouter key switch still has to apply."""

    doc: SwitchDoc
    history: list[tuple[str, str]]
    save: bool
    key_changes: Sequence[ScopeChange] = ()


SwitchStep = Callable[[SwitchDoc | None, list[Override]], SwitchDecision]
"""Given the stored switch document (None: none yet) and the stored overrides, both read in the decision's
transaction, the decision to save."""

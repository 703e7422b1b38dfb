"""The rows of the storage interface (:mod:`guardd.store.api`): plain dataclasses that every backend returns
and takes, grouped by area — the state (alerts, outbox, channels, history, switch), events, request
statistics, what guardd stored of OpenRouter, and many instances on a shared store. No behaviour beyond
small derived values; money in integer pico-dollars."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from guardd.core.switch import Override, ScopeChange, SwitchDoc


# ---- the state: alerts, outbox, channels, silences, history, the switch ---------------------------------------
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
class Silence:
    """Notifications of ``budget`` (or ``*``: every one) muted until ``until``, by whom and why."""

    id: int
    budget: str
    until: datetime
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of the history: an alert, a switch change, an override, a silence, a delivery, a key switched."""

    at: datetime
    kind: str
    budget: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """A notification channel's latest result: ok, the last error (kept after a recovery), since when it fails."""

    ok: bool
    last_error: str | None
    failing_since: datetime | None


@dataclass(frozen=True, slots=True)
class ChannelCount:
    """Per channel (its redacted URL): messages delivered and failed attempts, over the outbox."""

    url: str
    delivered: int
    failed: int


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Requests of a series that failed (ok = false) and that were rate limited (HTTP 429)."""

    errors: int
    rate_limited: int


PENDING_KEYS = "keyswitch:pending"
"""The marker under which both backends keep the scope changes a switch decision still asks of the keys."""


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


@dataclass(slots=True)
class BatchResult:
    """What :meth:`EventsAPI.write_batch` did: new events, duplicates of stored keys, quarantined lines, unpriced
    events among those stored, the series touched and the latest event time."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unpriced: int = 0
    series: set[int] = field(default_factory=set)
    max_ts: int | None = None


@dataclass(slots=True)
class IngestSummary:
    """What ingesting some files or a pushed batch did, summed over its batches: lines read, stored, duplicates of
    stored keys, quarantined, unpriced among those stored, and the seconds it took."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unpriced: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unpriced": self.unpriced,
            "seconds": round(self.seconds, 3),
        }


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


@dataclass(frozen=True, slots=True)
class UnpricedEvent:
    """A stored event without a cost, with what pricing it needs."""

    id: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    generation_id: str | None


@dataclass(frozen=True, slots=True)
class Priced:
    """A price found for an unpriced event: its id and its cost in pico-dollars."""

    id: int
    cost: int


# ---- request statistics -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenSums:
    """Spend and token counts of a series over whole hours (for advice)."""

    cost: int = 0
    events: int = 0
    unpriced: int = 0
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    cached: int = 0


# ---- what guardd stored of OpenRouter -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One OpenRouter key's figures at one poll (``/key`` of a polled secret, or its ``/keys`` entry): money in
    pico-dollars, None where OpenRouter gave none. ``key`` is the handle (:func:`guardd.core.keys.ref_of`), never
    the secret; ``at`` is Unix ms."""

    at: int
    key: str
    label: str | None = None
    usage: int | None = None
    usage_daily: int | None = None
    usage_weekly: int | None = None
    usage_monthly: int | None = None
    limit: int | None = None
    limit_remaining: int | None = None
    limit_reset: str | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Credits:
    """The account's credits at one poll (``/credits``, management key): pico-dollars; ``at`` is Unix ms."""

    at: int
    total_credits: int
    total_usage: int

    @property
    def balance(self) -> int:
        return self.total_credits - self.total_usage


@dataclass(frozen=True, slots=True)
class ListedKey:
    """An entry of OpenRouter's ``/keys`` list as guardd last stored it (or recorded switching it).
    ``disabled_by_guardd``: guardd disabled it (so guardd may re-enable it)."""

    hash: str
    name: str | None = None
    label: str | None = None
    disabled: bool = False
    disabled_by_guardd: bool = False
    usage_daily: int | None = None
    limit: int | None = None
    limit_remaining: int | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """How polling a source (``openrouter``) stands: the last success, since when it fails, the last error and
    whether every failure was permanent (a rejected key)."""

    ok_at: datetime | None
    failing_since: datetime | None
    error: str | None
    permanent: bool


# ---- many instances on a shared store (contract §9) ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Term:
    """A term this instance holds as leader: its epoch (the fencing token) and how long the lease still ran when
    the store answered, by the store's clock (a host turns it into a deadline of its own monotonic clock)."""

    epoch: int
    remaining: float


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What an instance says about itself in the shared store."""

    name: str
    host: str
    pid: int
    token: str
    """Who holds the name now: ``SPACE/RANDOM``, random per process after the process's pid space (where its pid
    means something: :func:`guardd.adapters.instance_lock.pid_space`)."""
    ledgers: Sequence[str]
    version: str
    config_digest: str

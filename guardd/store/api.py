"""The storage interface: what guardd asks of its state, whichever database holds it (contract §9).

Four Protocols — :class:`EventsAPI` (usage events, window sums, checkpoints, set-aside lines), :class:`StateAPI`
(alerts, outbox, channels, overrides, silences, history, switch, markers, the key switch's records),
:class:`RequestStatsAPI` (health facts, token sums) and :class:`RemoteAPI` (what guardd stored of OpenRouter) — with
dataclass rows, bundled as :class:`Stores`. Two backends implement them: SQLite in ``state_dir``
(:mod:`guardd.store.sqlite`), the embedded default, and a shared PostgreSQL database (:mod:`guardd.store.postgres`);
:func:`guardd.app.open_stores` picks one from ``[store] url``. What the dialects can share is written once
(:mod:`guardd.store.state`, :mod:`guardd.store.event_reads`, :mod:`guardd.store.stats`, :mod:`guardd.store.remote`
over :mod:`guardd.store.dialect`); each backend's ``open_stores`` builds a typed :class:`Stores`, so mypy proves it
satisfies every Protocol. Code above the store depends on these Protocols and rows only, never on SQL (there is
none outside ``guardd/store``); ``tests/store/test_contract*.py`` run every operation over both backends.

The rules every backend keeps:

- Money is exact: integer pico-dollars in Python (:mod:`guardd.core.money`); SQLite stores the integers,
  PostgreSQL stores ``numeric`` dollars. Times of events are Unix milliseconds (UTC).
- :meth:`EventsAPI.write_batch` is one transaction: the events, their quarantined lines and the file checkpoint
  are all stored or none is. An event key stored once counts once, across every writer; a later line with a
  stored key replaces the stored event (the last line wins) and the sums follow.
- Concurrent callers are safe: two writers storing overlapping keys at once leave exact totals.
- Since schema 3 (contract §10, §11) a batch also carries, per row, its token counts (summed per hour and day
  with the spend, for advice) and, for the rows that report any, their health facts (``Parsed.health``: ok,
  status, latency, error), which :class:`RequestStatsAPI` reads. A duplicate key's stored health facts are
  replaced by the new line's (or removed when it has none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from guardd.core.alerts import AlertState
from guardd.core.batch import Parsed
from guardd.core.budgets import Dimensions
from guardd.core.health import HealthSample
from guardd.core.switch import Override, ScopeChange, SwitchDoc
from guardd.errors import StoreError


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


SwitchStep = Callable[[SwitchDoc | None], SwitchDecision]
"""Given the stored switch document (None: none yet), the decision to save."""


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


class EventsAPI(Protocol):
    """Usage events: exactly-once batches with their checkpoints, and window sums by series.

    Safe for concurrent callers: the backend serialises what must be serialised.
    """

    async def load_series(self) -> dict[int, Dimensions]:
        """Return every series (a distinct model/key/provider/labels combination) by id."""
        ...

    async def write_batch(self, parsed: Parsed, checkpoint: Checkpoint | None = None) -> BatchResult:
        """Store ``parsed`` and ``checkpoint`` (whose ``events`` counts events before this batch) in one
        transaction; return what happened (see the module's rules)."""
        ...

    async def set_cost(self, priced: Sequence[Priced]) -> int:
        """Price still-unpriced events; the sums follow. Return how many were priced."""
        ...

    async def checkpoints(self) -> list[Checkpoint]:
        """Return this instance's file checkpoints (in a shared store, other instances' are theirs)."""
        ...

    async def window_sum(self, series: Sequence[int] | None, start: datetime, end: datetime) -> Sum:
        """Return the spend of ``series`` (None: all) in ``[start, end)``."""
        ...

    async def grouped_sums(self, series: Sequence[int] | None, start: datetime, end: datetime) -> dict[int, Sum]:
        """Return the spend per series in ``[start, end)``; ``series`` None means every series."""
        ...

    async def hourly_costs(self, series: Sequence[int] | None, start: datetime, end: datetime) -> list[tuple[int, int]]:
        """Return ``(hour start in Unix ms, cost)`` per UTC hour overlapping ``[start, end)`` that holds spend of
        ``series`` (None: all), from the hour rollups (edge hours count whole)."""
        ...

    async def unpriced_events(self, limit: int = 5000) -> list[UnpricedEvent]:
        """Return up to ``limit`` stored events that still have no cost."""
        ...

    async def quarantine_count(self) -> int:
        """Return how many ledger lines were set aside as unreadable or implausible."""
        ...

    async def set_aside(self, since: datetime | None, limit: int) -> list[SetAside]:
        """Return up to ``limit`` lines set aside at or after ``since`` (None: ever), newest first."""
        ...

    async def set_aside_by_file(self, since: datetime) -> dict[str, int]:
        """Return how many lines each ledger file set aside at or after ``since``."""
        ...

    def bulk_load(self) -> AbstractAsyncContextManager[None]:
        """A block that writes many batches in a row (``guardd ingest``): the backend may tune itself for it
        (SQLite checkpoints its WAL less often, then once at the end); nothing else changes."""
        ...


class StateAPI(Protocol):
    """Alert state, the notification outbox, channel health, overrides, silences, history, the last switch
    document and run markers. Each method that writes is one transaction.

    """

    async def alert_states(self, budget: str) -> dict[str, AlertState]: ...

    async def save_alerts(
        self,
        budget: str,
        states: dict[str, AlertState],
        messages: list[Message],
        history: list[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Persist the new alert states of ``budget`` with their outbox rows and history, in one transaction."""
        ...

    async def enqueue(
        self, messages: list[Message], now: datetime, history: tuple[str | None, str] | None = None
    ) -> None:
        """Queue ``messages`` and, with ``history = (budget, detail)``, their ``alert`` history line, together."""
        ...

    async def notify_once(
        self, name: str, value: str, messages: list[Message], history: str | None, now: datetime
    ) -> bool:
        """Set marker ``name`` to ``value`` and queue ``messages`` in one transaction, unless the marker already
        holds ``value``; return True when queued. A failure leaves neither."""
        ...

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows for ``owner`` until ``now + lease``; a row is claimed by one owner."""
        ...

    async def release_dead_leases(self, instance: str) -> int:
        """Free the claims of ``instance``'s processes that no longer run (owners ``instance:pid``, matched exactly);
        return how many."""
        ...

    async def delivered(self, row: OutboxRow, now: datetime) -> None: ...

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None: ...

    async def pending_count(self) -> int: ...

    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool: ...

    async def notification_counts(self) -> list[ChannelCount]:
        """Per notifier (redacted URL): ``(url, delivered messages, failed attempts)`` over the outbox."""
        ...

    async def channel_health(self) -> dict[str, ChannelHealth]:
        """The latest result of each channel that was used, by its redacted URL."""
        ...

    async def overrides(self) -> list[Override]: ...

    async def set_override(self, override: Override, now: datetime) -> None: ...

    async def remove_override(self, scope: str, now: datetime, why: str) -> None: ...

    async def add_silence(self, budget: str, until: datetime, reason: str, by: str, now: datetime) -> int: ...

    async def silences(self, now: datetime) -> list[Silence]:
        """The silences still active at ``now``, ending soonest first."""
        ...

    async def remove_silence(self, silence_id: int, by: str, now: datetime) -> bool: ...

    async def add_history(self, kind: str, budget: str | None, detail: str, now: datetime) -> None: ...

    async def history(self, since: datetime | None, limit: int = 1000) -> list[HistoryLine]:
        """Up to ``limit`` history lines at or after ``since`` (None: ever), newest first."""
        ...

    async def switch_doc(self) -> SwitchDoc | None: ...

    async def update_switch(self, step: SwitchStep, now: datetime) -> SwitchDoc:
        """Read the stored switch document, let ``step`` decide from it (it may write the switch file), and save
        the decision — document, history, pending key changes — in one transaction that concurrent writers take
        in turns: a change decided by one process is seen, not decided and recorded again, by another."""
        ...

    async def pending_key_changes(self) -> list[ScopeChange]:
        """Scope changes saved with a decision whose keys are not all switched and recorded yet, oldest first."""
        ...

    async def key_change_done(self, change: ScopeChange, now: datetime) -> None: ...

    async def record_key(
        self, key_hash: str, disabled: bool, messages: list[Message], history: str, now: datetime
    ) -> None:
        """Record a key switched at OpenRouter with its notice's outbox rows and history, in one transaction."""
        ...

    async def marker(self, name: str) -> str | None: ...

    async def set_marker(self, name: str, value: str, now: datetime) -> bool:
        """Set ``name`` to ``value``; return False when it already had that value (the job already ran)."""
        ...


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


class RequestStatsAPI(Protocol):
    """What events say beyond their cost: health facts for health rules and per-key statistics, token sums for
    advice, and the OpenRouter catalog the poller stored. Read-only."""

    async def health_sample(self, series: Sequence[int] | None, start: datetime, end: datetime) -> HealthSample:
        """Requests (every event), errors (ok = false), 429s and latencies of ``series`` in ``[start, end)``."""
        ...

    async def request_stats(self, start: datetime, end: datetime) -> dict[int, RequestCounts]:
        """Errors and rate-limited requests per series in ``[start, end)`` (series without any are absent)."""
        ...

    async def last_event_ms(self, start: datetime, end: datetime) -> dict[int, int]:
        """The latest event time (Unix ms) per series in ``[start, end)``."""
        ...

    async def token_sums(self, start: datetime, end: datetime) -> dict[int, TokenSums]:
        """Spend and tokens per series over the whole UTC hours ``[start, end)`` touches."""
        ...

    async def catalog(self) -> dict[str, dict[str, object]]:
        """The catalog's ``pricing`` objects by model id."""
        ...


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


class RemoteAPI(Protocol):
    """What guardd stored of OpenRouter: usage snapshots per key, account credits, the ``/keys`` list, how polling
    stands, and the model catalog. Each method that writes is one transaction; safe for concurrent callers."""

    async def save_poll(
        self, usage: Sequence[KeyUsage], credits: Credits | None, error: str | None, permanent: bool, now: datetime
    ) -> None:
        """Store one poll's snapshots (a snapshot of a key at the same ``at`` replaces it) and its credits, and
        record the source ``openrouter`` as polled at ``now`` (``error`` None) or failing since its first failure
        with ``error`` (``permanent``: every failure was a rejection), all in one transaction."""
        ...

    async def save_keys(self, keys: Sequence[ListedKey], now: datetime) -> None:
        """Store the ``/keys`` list fetched at ``now``. A key listed enabled is no longer guardd's to re-enable;
        a list fetched before guardd last recorded switching a key leaves that key's record as it is."""
        ...

    async def listed_keys(self) -> list[ListedKey]:
        """Every key of the stored ``/keys`` list, by hash."""
        ...

    async def polled_keys(self) -> dict[str, str | None]:
        """Every key handle with snapshots, with the (greatest) label OpenRouter gave it."""
        ...

    async def latest_usage(self, key: str | None = None) -> list[KeyUsage]:
        """The latest snapshot of ``key`` (None: of every key, by handle), as a list of at most one per key."""
        ...

    async def usage_before(self, key: str, at: int) -> int | None:
        """The total usage of ``key``'s last snapshot at or before ``at`` (Unix ms); None when none says."""
        ...

    async def usage_after(self, key: str, at: int) -> int | None:
        """The total usage of ``key``'s first snapshot at or after ``at`` (Unix ms); None when none says."""
        ...

    async def latest_credits(self) -> Credits | None: ...

    async def first_credits_since(self, at: int) -> Credits | None:
        """The first credits snapshot at or after ``at`` (Unix ms)."""
        ...

    async def source(self, name: str) -> SourceState | None: ...

    async def save_prices(self, pricing: dict[str, dict[str, object]], now: datetime) -> None:
        """Store the catalog's ``pricing`` objects by model id (replacing what each model had)."""
        ...

    async def priced_models(self) -> set[str]:
        """The model ids of the stored catalog."""
        ...

    async def catalog(self) -> dict[str, dict[str, object]]:
        """The stored catalog's ``pricing`` objects by model id."""
        ...


class StoreHealth(Protocol):
    """Whether the last write transaction failed (None once one commits again): store health for ``status``."""

    write_error: StoreError | None


@dataclass(frozen=True, slots=True)
class Stores:
    """One open store, whichever backend: every interface guardd asks of it. Built by :mod:`guardd.app` from
    ``[store] url`` (absent: SQLite in ``state_dir``; ``postgresql://``: the shared store)."""

    events: EventsAPI
    state: StateAPI
    stats: RequestStatsAPI
    remote: RemoteAPI
    health: StoreHealth
    kind: str
    """``sqlite`` or ``postgresql``."""
    where: str
    """The database file, or the shared store's URL without its password (for messages)."""
    cluster: ClusterAPI | None = None
    """The shared store's side of many instances (leader lease, membership, switch wake-ups); None on SQLite."""


# ---- many instances on a shared store (contract §9) -------------------------------------------------------------
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
    """Random per process: who holds the name now."""
    ledgers: Sequence[str]
    version: str
    config_digest: str


class ClusterAPI(Protocol):
    """The shared store's side of many instances: membership, the leader lease, fenced state and the switch's
    wake-ups (:mod:`guardd.store.postgres.cluster`). Each call is bounded in time and raises StoreError when the
    store cannot be reached; the control calls share one connection of their own (never the pool's)."""

    async def register(self, me: InstanceInfo, alive_within: timedelta) -> None:
        """Enter ``me``; raise InstanceTaken when a live guardd (seen within ``alive_within``) has its name."""
        ...

    async def beat(self, me: InstanceInfo, ttl: timedelta, lead: bool) -> tuple[bool, Term | None]:
        """Refresh ``me``'s row and (with ``lead``) take or renew the lease for ``ttl``, in one transaction.
        Return (``me`` still owns its name, the term it holds or None)."""
        ...

    async def retire(self, me: InstanceInfo, epoch: int | None) -> None:
        """Mark ``me`` stopped and end its term ``epoch`` now (a clean stop)."""
        ...

    async def switch_doc(self) -> SwitchDoc | None:
        """The switch document the leader last committed, None when none was."""
        ...

    def wakeups(self) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Listen for committed changes: an iterator yielding ``"switch"`` (the switch document), ``"events"``
        (a batch of events, stored by any instance) or ``"overrides"`` (:meth:`wake_leader`) per change;
        StoreError when the listening is lost."""
        ...

    async def wake_leader(self) -> None:
        """Ask the leader to evaluate everything now (an instance that does not lead recorded an override): a
        notification to every instance listening (:meth:`wakeups` yields ``"overrides"``)."""
        ...

    def fenced_state(self, term: Callable[[], int | None]) -> StateAPI:
        """The state for leader steps: every write transaction first re-checks the term ``term()`` names
        (NotLeader, writing nothing, when it is None or over); claims last until the term ends plus a send."""
        ...

    async def status(self) -> dict[str, object]:
        """The ``cluster`` section of ``status --json``."""
        ...

    async def close(self) -> None: ...

"""The events half of the storage interface: :class:`EventsAPI` (usage events, window sums, checkpoints, set-aside
lines) and :class:`RequestStatsAPI` (what events say beyond their cost). The rules every backend keeps are in
:mod:`guardd.store.api`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: a read command need not import the write path's batch and rows
    from guardd.core.batch import Parsed
    from guardd.core.budgets import Dimensions
    from guardd.core.health import HealthSample
    from guardd.store.api.rows import Checkpoint, RequestCounts, SetAside, Sum
    from guardd.store.api.rows_advice import TokenSums
    from guardd.store.api.rows_ingest import BatchResult, Priced, UnpricedEvent


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

    async def spend_steps(
        self, series: Sequence[int] | None, start: datetime, end: datetime, grain: str = "day"
    ) -> list[tuple[int, int, int]]:
        """Return the priced spend of ``series`` (None: all) in ``[start, end)`` as ``(first ms, last ms, cost)``
        steps, oldest first, covering it once: event times in the raw edges, whole hour and UTC-day buckets between
        (``grain``: ``"day"`` as window sums split it, ``"hour"`` without day buckets, ``"raw"`` every event time)."""
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

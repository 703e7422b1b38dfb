"""Rows of storing and pricing events (:class:`~guardd.store.api.EventsAPI`'s write path): what a batch did,
what ingesting did, and the unpriced events with the prices found for them. Not imported by the read commands
(:mod:`guardd.store.api.rows`)."""

from __future__ import annotations

from dataclasses import dataclass, field


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

"""Reading what events say beyond their cost (:class:`~guardd.store.api.RequestStatsAPI`), written once for
both backends: health facts for health rules and per-key statistics (contract §10, §11), token sums for advice,
and the OpenRouter catalog the poller stored.

Tables (both schemas): ``health`` (one row per event key that reported any fact: ok, status, latency, error),
the hour and day ``rollups`` with their token columns, and ``events`` (for the latest event time). Written by
the backend's ``write_batch``; read here with the SQL both dialects share.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from guardd.core.health import HealthSample
from guardd.core.hours import ENTRY, HOUR_MS
from guardd.store.api import EventsAPI, RequestCounts
from guardd.store.dialect import Db, Dialect
from guardd.store.remote import RemoteStore
from guardd.store.shared import plan, to_ms

if TYPE_CHECKING:
    from guardd.store.api import TokenSums

_ERRORS = "coalesce(sum(CASE WHEN ok THEN 0 ELSE 1 END), 0)"
_LIMITED = "coalesce(sum(CASE WHEN status = 429 THEN 1 ELSE 0 END), 0)"


class RequestStats:
    """:class:`~guardd.store.api.RequestStatsAPI` over one open database. Read-only."""

    def __init__(self, events: EventsAPI, db: Db, dialect: Dialect) -> None:
        self.events, self.db, self.d = events, db, dialect

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
        return await self.db.fetchall(self.d.sql(sql), params)

    async def health_sample(self, series: Sequence[int] | None, start: datetime, end: datetime) -> HealthSample:
        """Return what a health rule over ``series`` (None: all) sees in ``[start, end)``: every event is a
        request; errors, 429s and latencies come from the events that reported them."""
        requests = (await self.events.window_sum(series, start, end)).events
        if series is not None and not series:
            return HealthSample(requests)
        where = "" if series is None else f" AND series IN ({','.join(str(int(s)) for s in series)})"
        bounds = (to_ms(start), to_ms(end))
        rows = await self._all(f"SELECT {_ERRORS}, {_LIMITED} FROM health WHERE ts >= ? AND ts < ?{where}", bounds)
        errors, limited = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        latencies = await self._all(
            f"SELECT latency_ms FROM health WHERE ts >= ? AND ts < ? AND latency_ms IS NOT NULL{where}", bounds
        )
        return HealthSample(requests, errors, limited, [float(r[0]) for r in latencies])

    async def request_stats(self, start: datetime, end: datetime) -> dict[int, RequestCounts]:
        """Return errors and rate-limited requests per series in ``[start, end)`` (series without any are absent)."""
        rows = await self._all(
            f"SELECT series, {_ERRORS}, {_LIMITED} FROM health WHERE ts >= ? AND ts < ? GROUP BY series",
            (to_ms(start), to_ms(end)),
        )
        return {int(sid): RequestCounts(int(errors), int(limited)) for sid, errors, limited in rows}

    async def last_event_ms(self, start: datetime, end: datetime) -> dict[int, int]:
        """Return the time (Unix ms) of the latest event per series in ``[start, end)``, in two statements whatever
        the number of series (each distinct label set is one: there may be one per conversation).

        The range splits into a head and a tail (its partial hours, read as events) and the whole hours between.
        The hour rollups say which whole hour was the last with events of each series; the events of the head, of
        those hours (a few, however many series share them) and of the tail are read once, ``max(ts)`` grouped by
        series. That is each series' latest: nothing of a series lies in the whole hours after its last one, and
        the tail is later than all of them, the head earlier. (No index starts with ``series``: one query per
        series would read the hour's events once per series.)"""
        a, b = to_ms(start), to_ms(end)
        h0, h1 = -(-a // HOUR_MS), b // HOUR_MS  # the whole hours [h0, h1)
        ranges = [(a, b)]
        if h0 < h1:
            rows = await self._all(
                "SELECT DISTINCT last FROM (SELECT max(bucket) AS last FROM rollups WHERE level = 0 AND events > 0"
                " AND bucket >= ? AND bucket < ? GROUP BY series) AS lasts",
                (h0, h1),
            )
            hours = sorted(int(r[0]) * HOUR_MS for r in rows)
            ranges = [(a, h0 * HOUR_MS), *((h, h + HOUR_MS) for h in hours), (h1 * HOUR_MS, b)]
        where = " OR ".join(f"(ts >= {x} AND ts < {y})" for x, y in _merged(ranges))  # integers: nothing to escape
        if not where:
            return {}
        rows = await self._all(f"SELECT series, max(ts) FROM events WHERE {where} GROUP BY series")
        return {int(sid): int(last) for sid, last in rows}

    async def token_sums(self, start: datetime, end: datetime) -> dict[int, TokenSums]:
        """Return spend and token counts per series over the whole UTC hours that ``[start, end)`` touches (token
        counts are kept per hour only)."""
        from guardd.store.api import TokenSums  # here, not above: status imports this module, never builds it

        h0, h1 = to_ms(start) // HOUR_MS, -(-to_ms(end) // HOUR_MS)
        out: dict[int, list[int]] = {}
        for kind, a, b in plan(h0 * HOUR_MS, h1 * HOUR_MS):
            level = 0 if kind == "hour" else 1
            rows = await self._all(
                "SELECT series, sum(cost), sum(events), sum(unpriced), sum(prompt_tokens), sum(completion_tokens),"
                f" sum(reasoning_tokens), sum(cached_tokens) FROM rollups WHERE level = {level}"
                " AND bucket >= ? AND bucket < ? GROUP BY series",
                (a, b),
            )
            for sid, cost, *counts in rows:
                entry = out.setdefault(int(sid), [0] * ENTRY)
                entry[0] += self.d.pico(cost) or 0
                for i, value in enumerate(counts, 1):
                    entry[i] += int(value or 0)
        return {sid: TokenSums(*entry) for sid, entry in out.items()}

    async def catalog(self) -> dict[str, dict[str, object]]:
        """Return the OpenRouter catalog's ``pricing`` objects the poller stored, by model id."""
        return await RemoteStore(self.db, self.d).catalog()


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` (sorted by start) without the empty ones, adjacent or overlapping ones joined."""
    out: list[tuple[int, int]] = []
    for x, y in ranges:
        if x >= y:
            continue
        if out and x <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], y))
        else:
            out.append((x, y))
    return out

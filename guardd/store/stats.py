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
        """Return the time (Unix ms) of the latest event per series in ``[start, end)``.

        The hour rollups say in which hour each series last had events; only that hour's events are read."""
        a, b = to_ms(start), to_ms(end)
        rows = await self._all(
            "SELECT series, max(bucket) FROM rollups WHERE level = 0 AND events > 0 AND bucket >= ? AND bucket <= ?"
            " GROUP BY series",
            (a // HOUR_MS, (b - 1) // HOUR_MS),
        )
        out: dict[int, int] = {}
        for sid, last_hour in rows:
            hour = int(last_hour)
            while hour >= a // HOUR_MS:
                found = await self._all(
                    "SELECT max(ts) FROM events WHERE ts >= ? AND ts < ? AND series = ?",
                    (max(a, hour * HOUR_MS), min(b, (hour + 1) * HOUR_MS), sid),
                )
                if found and found[0][0] is not None:
                    out[int(sid)] = int(found[0][0])
                    break
                hour -= 1  # that hour's events lie outside the range: look at the hour before
        return out

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

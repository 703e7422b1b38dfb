"""Reading what events say beyond their cost: health facts for health rules and per-key statistics (contract §10,
§11), and token counts for advice. Written by :class:`~guardd.store.sqlite.events.EventStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from guardd.core.batch import ENTRY, HOUR_MS
from guardd.core.health import HealthSample
from guardd.store.api import TokenSums
from guardd.store.sqlite.events import EventStore, plan, to_ms

Tokens = TokenSums


class RequestStats:
    """:class:`~guardd.store.api.RequestStatsAPI` over the SQLite :class:`EventStore`. Read-only."""

    def __init__(self, events: EventStore) -> None:
        self.events = events

    async def health_sample(self, series: Sequence[int] | None, start: datetime, end: datetime) -> HealthSample:
        """Return what a health rule over ``series`` (None: all) sees in ``[start, end)``: every event is a
        request; errors, 429s and latencies come from the events that reported them."""
        requests = (await self.events.window_sum(series, start, end)).events
        if series is not None and not series:
            return HealthSample(requests)
        where = "" if series is None else f" AND series IN ({','.join(str(int(s)) for s in series)})"
        bounds = (to_ms(start), to_ms(end))
        row = await self.events.store.fetchone(
            f"SELECT coalesce(sum(ok = 0), 0), coalesce(sum(status = 429), 0) FROM health"
            f" WHERE ts >= ? AND ts < ?{where}",
            bounds,
        )
        errors, limited = (int(row[0]), int(row[1])) if row else (0, 0)
        latencies = await self.events.store.fetchall(
            f"SELECT latency_ms FROM health WHERE ts >= ? AND ts < ? AND latency_ms IS NOT NULL{where}", bounds
        )
        return HealthSample(requests, errors, limited, [float(r[0]) for r in latencies])

    async def request_stats(self, start: datetime, end: datetime) -> dict[int, tuple[int, int]]:
        """Return ``(errors, rate limited)`` per series in ``[start, end)`` (series without any are absent)."""
        rows = await self.events.store.fetchall(
            "SELECT series, sum(ok = 0), sum(status = 429) FROM health WHERE ts >= ? AND ts < ? GROUP BY series",
            (to_ms(start), to_ms(end)),
        )
        return {int(sid): (int(errors), int(limited)) for sid, errors, limited in rows}

    async def last_event_ms(self, start: datetime, end: datetime) -> dict[int, int]:
        """Return the time (Unix ms) of the latest event per series in ``[start, end)``.

        The hour rollups say in which hour each series last had events; only that hour's events are read."""
        a, b = to_ms(start), to_ms(end)
        rows = await self.events.store.fetchall(
            "SELECT series, max(bucket) FROM rollups WHERE level = 0 AND events > 0 AND bucket >= ? AND bucket <= ?"
            " GROUP BY series",
            (a // HOUR_MS, (b - 1) // HOUR_MS),
        )
        out: dict[int, int] = {}
        for sid, hour in rows:
            while hour >= a // HOUR_MS:
                found = await self.events.store.fetchone(
                    "SELECT max(ts) FROM events WHERE ts >= ? AND ts < ? AND series = ?",
                    (max(a, hour * HOUR_MS), min(b, (hour + 1) * HOUR_MS), sid),
                )
                if found and found[0] is not None:
                    out[int(sid)] = int(found[0])
                    break
                hour -= 1  # that hour's events lie outside the range: look at the hour before
        return out

    async def token_sums(self, start: datetime, end: datetime) -> dict[int, Tokens]:
        """Return spend and token counts per series over the whole UTC hours that ``[start, end)`` touches (token
        counts are kept per hour only)."""
        h0, h1 = to_ms(start) // HOUR_MS, -(-to_ms(end) // HOUR_MS)
        out: dict[int, list[int]] = {}
        for kind, a, b in plan(h0 * HOUR_MS, h1 * HOUR_MS):
            level = 0 if kind == "hour" else 1
            rows = await self.events.store.fetchall(
                "SELECT series, sum(cost), sum(events), sum(unpriced), sum(prompt_tokens), sum(completion_tokens),"
                f" sum(reasoning_tokens), sum(cached_tokens) FROM rollups WHERE level = {level}"
                " AND bucket >= ? AND bucket < ? GROUP BY series",
                (a, b),
            )
            for sid, *values in rows:
                entry = out.setdefault(int(sid), [0] * ENTRY)
                for i, value in enumerate(values):
                    entry[i] += int(value or 0)
        return {sid: Tokens(*entry) for sid, entry in out.items()}

    async def catalog(self) -> dict[str, dict[str, object]]:
        """Return the OpenRouter catalog's ``pricing`` objects the poller stored, by model id."""
        rows = await self.events.store.fetchall("SELECT model, pricing FROM prices")
        return {model: json.loads(pricing) for model, pricing in rows}

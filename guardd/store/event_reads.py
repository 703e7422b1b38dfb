"""The read side of :class:`~guardd.store.api.EventsAPI`, written once for both backends: window sums from raw edges,
hour and UTC-day rollups (:func:`guardd.store.shared.plan`), hourly costs for charts, this instance's checkpoints
and the lines set aside. Each backend's event store mixes this in and writes batches its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from guardd.core.hours import HOUR_MS
from guardd.store.api import Checkpoint, SetAside, Sum
from guardd.store.dialect import Db, Dialect
from guardd.store.shared import plan, to_ms

_EPOCH = datetime.fromtimestamp(0, UTC)


class EventReads:
    """Reads of events, rollups, checkpoints and quarantine over ``db`` in ``dialect`` (set by the subclass)."""

    db: Db
    d: Dialect

    def _checkpoint_filter(self) -> tuple[str, Sequence[Any]]:
        """A ``WHERE`` clause (and its parameters) that keeps this instance's checkpoints: every one in SQLite."""
        return "", ()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
        return await self.db.fetchall(self.d.sql(sql), params)

    async def checkpoints(self) -> list[Checkpoint]:
        """Return this instance's file checkpoints (in a shared store, other instances' are theirs)."""
        where, params = self._checkpoint_filter()
        rows = await self._all(
            f"SELECT ledger, path, dev, ino, fingerprint, {self.d.offset_column}, size, tail, events, quarantined,"
            f" last_event_ms, updated_at FROM files{where} ORDER BY id",
            params,
        )
        return [replace(Checkpoint(*row[:-1]), updated_at=self.d.when(row[-1])) for row in rows]

    async def window_sum(self, series: Sequence[int] | None, start: datetime, end: datetime) -> Sum:
        """Return the spend of ``series`` (None: all) in ``[start, end)``."""
        totals = await self.grouped_sums(series, start, end)
        return Sum.total(totals.values())

    async def grouped_sums(self, series: Sequence[int] | None, start: datetime, end: datetime) -> dict[int, Sum]:
        """Return the spend per series in ``[start, end)``; ``series`` None means every series."""
        if series is not None and not series:
            return {}
        where = _series_filter(series)
        parts, params = [], []
        for kind, a, b in plan(to_ms(start), to_ms(end)):
            if kind == "raw":
                parts.append(
                    "SELECT series, cost AS c, 1 AS e, CASE WHEN cost IS NULL THEN 1 ELSE 0 END AS u FROM events"
                    f" WHERE ts >= ? AND ts < ?{where}"
                )
            else:
                level = 0 if kind == "hour" else 1
                parts.append(
                    "SELECT series, cost AS c, events AS e, unpriced AS u FROM rollups"
                    f" WHERE level = {level} AND bucket >= ? AND bucket < ?{where}"
                )
            params += [a, b]
        if not parts:
            return {}
        # One statement for every part (a round trip each would cost more than the sums themselves), summed per
        # series by the database: one row, and one Sum, per series.
        rows = await self._all(
            "SELECT series, sum(c), CAST(sum(e) AS BIGINT), CAST(sum(u) AS BIGINT)"
            f" FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY series",
            params,
        )
        pico = self.d.pico
        return {
            int(sid): Sum(pico(cost) or 0, int(events or 0), int(unpriced or 0)) for sid, cost, events, unpriced in rows
        }

    async def hourly_costs(self, series: Sequence[int] | None, start: datetime, end: datetime) -> list[tuple[int, int]]:
        """Return ``(hour start in Unix ms, cost)`` per UTC hour overlapping ``[start, end)`` that holds spend of
        ``series`` (None: all), from the hour rollups (a chart's resolution: edge hours count whole)."""
        if series is not None and not series:
            return []
        h0, h1 = to_ms(start) // HOUR_MS, -(-to_ms(end) // HOUR_MS)
        where = _series_filter(series)
        rows = await self._all(
            f"SELECT bucket, sum(cost) FROM rollups WHERE level = 0 AND bucket >= ? AND bucket < ?{where}"
            " GROUP BY bucket ORDER BY bucket",
            (h0, h1),
        )
        return [(int(bucket) * HOUR_MS, self.d.pico(cost) or 0) for bucket, cost in rows]

    async def spend_steps(
        self, series: Sequence[int] | None, start: datetime, end: datetime, grain: str = "day"
    ) -> list[tuple[int, int, int]]:
        """Return the priced spend of ``series`` (None: all) in ``[start, end)`` as ``(first ms, last ms, cost)``
        steps, oldest first, that cover it once: one per event time in the raw edges and one per whole hour or UTC
        day bucket (``grain`` ``"day"``: as window sums split it; ``"hour"``: no day buckets; ``"raw"``: every
        event time). A bucket's spend happened somewhere between its first and last ms."""
        if series is not None and not series:
            return []
        where = _series_filter(series)
        start_ms, end_ms = to_ms(start), to_ms(end)
        parts = [("raw", start_ms, end_ms)] if grain == "raw" else plan(start_ms, end_ms, days=grain == "day")
        sql, params = [], []
        for kind, a, b in parts:
            if kind == "raw":
                sql.append(
                    "SELECT ts AS f, ts AS l, sum(cost) AS c FROM events"
                    f" WHERE ts >= ? AND ts < ? AND cost IS NOT NULL{where} GROUP BY ts"
                )
            else:
                level, size = (0, HOUR_MS) if kind == "hour" else (1, 24 * HOUR_MS)
                sql.append(
                    f"SELECT bucket * {size} AS f, bucket * {size} + {size - 1} AS l, sum(cost) AS c FROM rollups"
                    f" WHERE level = {level} AND bucket >= ? AND bucket < ?{where} GROUP BY bucket"
                )
            params += [a, b]
        if not sql:
            return []
        rows = await self._all(f"SELECT f, l, c FROM ({' UNION ALL '.join(sql)}) AS steps ORDER BY f, l", params)
        pico = self.d.pico
        return [(int(f), int(last), pico(c) or 0) for f, last, c in rows]

    async def quarantine_count(self) -> int:
        """Return how many ledger lines were set aside as unreadable or implausible."""
        rows = await self._all("SELECT count(*) FROM quarantine")
        return int(rows[0][0]) if rows else 0

    async def set_aside(self, since: datetime | None, limit: int) -> list[SetAside]:
        """Return up to ``limit`` lines set aside at or after ``since`` (None: ever), newest first."""
        rows = await self._all(
            f"SELECT path, {self.d.offset_column}, reason, excerpt, at FROM quarantine WHERE at >= ?"
            " ORDER BY at DESC, id DESC LIMIT ?",
            (self.d.time(since or _EPOCH), limit),
        )
        return [SetAside(r[0], int(r[1]), r[2], r[3], self.d.when(r[4]) or _EPOCH) for r in rows]

    async def set_aside_by_file(self, since: datetime) -> dict[str, int]:
        """Return how many lines each ledger file set aside at or after ``since``."""
        rows = await self._all(
            "SELECT path, count(*) FROM quarantine WHERE at >= ? GROUP BY path", (self.d.time(since),)
        )
        return {r[0]: int(r[1]) for r in rows}


def _series_filter(series: Sequence[int] | None) -> str:
    """An ``AND series IN (…)`` clause of integer literals (ids are 64-bit integers: nothing to escape)."""
    return "" if series is None else f" AND series IN ({','.join(str(int(s)) for s in series)})"

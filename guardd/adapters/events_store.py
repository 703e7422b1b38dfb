"""Usage events in the store: exactly-once batches, and window sums that stay fast at any history size.

Writing: :meth:`EventStore.write_batch` stores a batch of parsed events, its quarantined lines and (optionally) a
file checkpoint in **one** transaction, so a crash at any moment leaves either all of it or none. Events are
keyed for dedupe (same generation id → one event, the last line wins); a key already stored is a duplicate,
and if its line changed (a later streaming snapshot) the stored event and the rollups are corrected.

Reading: spend is kept in rollups — per series (a distinct model/key/provider/labels combination), per hour and
per UTC day. A window's sum is the full UTC days inside it, plus the full hours at its edges, plus the raw events
of the partial hours at the very edges (an index on ``ts``). So a month over ten million events reads a few
thousand rollup rows, and any window — local midnights in any zone, rolling minutes — is summed exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from guardd.adapters.store import Store
from guardd.core.budgets import Dimensions

T = TypeVar("T")
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(slots=True)
class EventRow:
    """A parsed event ready to store. ``series`` is a series signature until the store assigns its id."""

    k: str
    kh: int
    ts: int
    sig: str
    cost: int | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    ok: int

    def values(self, series: int) -> tuple[object, ...]:
        return (
            self.kh,
            self.k,
            self.ts,
            series,
            self.cost,
            self.prompt_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            self.cached_tokens,
            self.ok,
        )


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    source: str
    path: str
    offset: int
    reason: str
    excerpt: str


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
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unpriced: int = 0
    series: set[int] = field(default_factory=set)
    max_ts: int | None = None


@dataclass(frozen=True, slots=True)
class Sum:
    cost: int = 0
    events: int = 0
    unpriced: int = 0

    def __add__(self, other: Sum) -> Sum:
        return Sum(self.cost + other.cost, self.events + other.events, self.unpriced + other.unpriced)


def series_sig(model: str, key: str | None, provider: str | None, labels: dict[str, str]) -> str:
    return json.dumps([model, key, provider, sorted(labels.items())], separators=(",", ":"), ensure_ascii=False)


def dims_of(sig: str) -> Dimensions:
    model, key, provider, labels = json.loads(sig)
    return Dimensions(model, key, provider, tuple((k, v) for k, v in labels))


def plan(start_ms: int, end_ms: int) -> list[tuple[str, int, int]]:
    """Return how to sum ``[start_ms, end_ms)``: ``("raw", a, b)`` ms ranges and ``("hour"|"day", a, b)`` bucket
    ranges that together cover it exactly once."""
    if end_ms <= start_ms:
        return []
    h0, h1 = -(-start_ms // HOUR_MS), end_ms // HOUR_MS
    if h0 >= h1:
        return [("raw", start_ms, end_ms)]
    parts: list[tuple[str, int, int]] = []
    if start_ms < h0 * HOUR_MS:
        parts.append(("raw", start_ms, h0 * HOUR_MS))
    d0, d1 = -(-h0 // 24), h1 // 24
    if d0 < d1:
        if h0 < d0 * 24:
            parts.append(("hour", h0, d0 * 24))
        parts.append(("day", d0, d1))
        if d1 * 24 < h1:
            parts.append(("hour", d1 * 24, h1))
    else:
        parts.append(("hour", h0, h1))
    if h1 * HOUR_MS < end_ms:
        parts.append(("raw", h1 * HOUR_MS, end_ms))
    return parts


def to_ms(moment: datetime) -> int:
    """Return the aware ``moment`` as Unix milliseconds (exact integer arithmetic, floor)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


class EventStore:
    """Events, series, rollups, file checkpoints and quarantine of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._series: dict[str, int] = {}

    # ---- series -------------------------------------------------------------------------------------------
    async def load_series(self) -> dict[int, Dimensions]:
        rows = await self.store.fetchall("SELECT id, sig FROM series")
        self._series = {sig: sid for sid, sig in rows}
        return {sid: dims_of(sig) for sid, sig in rows}

    async def _series_ids(self, sigs: Iterable[str]) -> dict[str, int]:
        missing = [s for s in set(sigs) if s not in self._series]
        if missing:
            conn = self.store.conn
            await conn.executemany(
                "INSERT OR IGNORE INTO series(sig, model, key, provider, labels) VALUES (?, ?, ?, ?, ?)",
                [(s, *_sig_columns(s)) for s in missing],
            )
            for chunk in _chunks(missing, 500):
                marks = ",".join("?" * len(chunk))
                for sid, sig in await self.store.fetchall(f"SELECT id, sig FROM series WHERE sig IN ({marks})", chunk):
                    self._series[sig] = sid
        return self._series

    # ---- writing ------------------------------------------------------------------------------------------
    async def write_batch(
        self,
        rows: Sequence[EventRow],
        quarantined: Sequence[QuarantinedLine] = (),
        checkpoint: Checkpoint | None = None,
    ) -> BatchResult:
        """Store ``rows`` (in order; a later row with the same key wins), ``quarantined`` and ``checkpoint``
        in one transaction and return what happened."""
        result = BatchResult(quarantined=len(quarantined))
        latest: dict[str, EventRow] = {}
        for row in rows:
            if row.k in latest:
                result.duplicates += 1
            latest[row.k] = row
        async with self.store.transaction() as conn:
            ids = await self._series_ids({r.sig for r in latest.values()})
            async with conn.execute("SELECT coalesce(max(id), 0) FROM events") as cur:
                before = (await cur.fetchone() or (0,))[0]
            # Fast path: insert everything; the unique hash index ignores what is already there.
            changes = conn.total_changes
            await conn.executemany(
                "INSERT OR IGNORE INTO events(kh, k, ts, series, cost, prompt_tokens, completion_tokens,"
                " reasoning_tokens, cached_tokens, ok) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [r.values(ids[r.sig]) for r in latest.values()],
            )
            inserted = conn.total_changes - changes
            ignored = {} if inserted == len(latest) else await self._ignored(latest, before)
            # Roll up what was just inserted in SQL: one pass over a rowid range, no Python loop per row.
            await conn.execute(
                "INSERT INTO rollups(level, bucket, series, cost, events, unpriced) "
                f"SELECT 0, ts / {HOUR_MS}, series, coalesce(sum(cost), 0), count(*), count(*) - count(cost) "
                "FROM events WHERE id > ? GROUP BY 2, 3 ORDER BY 2, 3 "
                "ON CONFLICT(level, bucket, series) DO UPDATE SET cost = cost + excluded.cost, "
                "events = events + excluded.events, unpriced = unpriced + excluded.unpriced",
                (before,),
            )
            await conn.execute(
                "INSERT INTO rollups(level, bucket, series, cost, events, unpriced) "
                f"SELECT 1, ts / {DAY_MS}, series, coalesce(sum(cost), 0), count(*), count(*) - count(cost) "
                "FROM events WHERE id > ? GROUP BY 2, 3 ORDER BY 2, 3 "
                "ON CONFLICT(level, bucket, series) DO UPDATE SET cost = cost + excluded.cost, "
                "events = events + excluded.events, unpriced = unpriced + excluded.unpriced",
                (before,),
            )
            async with conn.execute(
                "SELECT series, count(*), count(*) - count(cost), max(ts) FROM events WHERE id > ? GROUP BY series",
                (before,),
            ) as cur:
                async for series, count, unpriced, max_ts in cur:
                    result.stored += count
                    result.unpriced += unpriced
                    result.series.add(series)
                    result.max_ts = max_ts if result.max_ts is None else max(result.max_ts, max_ts)
            hours: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
            updates = []
            for k, (eid, old_ts, old_series, old_cost) in ignored.items():
                row = latest[k]
                series = ids[row.sig]
                result.duplicates += 1
                if (old_ts, old_series, old_cost) != (row.ts, series, row.cost):
                    _add(hours, old_ts, old_series, old_cost, -1)
                    _add(hours, row.ts, series, row.cost, +1)
                    updates.append((*row.values(series)[2:], eid))
                    result.series.update((old_series, series))
            if updates:
                await conn.executemany(
                    "UPDATE events SET ts=?, series=?, cost=?, prompt_tokens=?, completion_tokens=?,"
                    " reasoning_tokens=?, cached_tokens=?, ok=? WHERE id=?",
                    updates,
                )
            await self._apply(hours)
            if quarantined:
                now = datetime.now(UTC).isoformat()
                await conn.executemany(
                    "INSERT OR IGNORE INTO quarantine(source, path, offset, reason, excerpt, at) VALUES (?,?,?,?,?,?)",
                    [(q.source, q.path, q.offset, q.reason, q.excerpt, now) for q in quarantined],
                )
            if checkpoint is not None:
                # The caller's checkpoint counts events before this batch; add what the batch stored.
                last = checkpoint.last_event_ms
                if result.max_ts is not None:
                    last = max(result.max_ts, last or 0)
                await self._save_checkpoint(
                    replace(checkpoint, events=checkpoint.events + result.stored, last_event_ms=last)
                )
        return result

    async def _ignored(self, latest: dict[str, EventRow], before: int) -> dict[str, tuple[int, int, int, int | None]]:
        """Return the rows of ``latest`` that the insert ignored, keyed by event key, with the stored event's
        ``(id, ts, series, cost)``. A hash shared by two *different* keys (a 64-bit collision) is resolved by
        re-hashing the newcomer until it inserts, so no event is ever merged with another."""
        conn = self.store.conn
        found: dict[int, tuple[str, int, int, int, int | None]] = {}
        hashes = [r.kh for r in latest.values()]
        for chunk in _chunks(hashes, 5000):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT kh, k, id, ts, series, cost FROM events WHERE id <= ? AND kh IN ({marks})"
            async with conn.execute(sql, [before, *chunk]) as cur:
                async for kh, k, eid, ts, series, cost in cur:
                    found[kh] = (k, eid, ts, series, cost)
        ignored: dict[str, tuple[int, int, int, int | None]] = {}
        for k, row in latest.items():
            hit = found.get(row.kh)
            if hit is None:
                continue
            if hit[0] == k:
                ignored[k] = hit[1:]
                continue
            salt = 0
            while True:  # a genuine collision: this key lives under a salted hash
                salt += 1
                row.kh = int.from_bytes(
                    hashlib.blake2b(f"{k}#{salt}".encode(), digest_size=8).digest(), "big", signed=True
                )
                async with conn.execute("SELECT k, id, ts, series, cost FROM events WHERE kh = ?", (row.kh,)) as cur:
                    other = await cur.fetchone()
                if other is None:
                    await conn.execute(
                        "INSERT INTO events(kh, k, ts, series, cost, prompt_tokens, completion_tokens,"
                        " reasoning_tokens, cached_tokens, ok) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        row.values(self._series[row.sig]),
                    )
                    break
                if other[0] == k and other[1] <= before:
                    ignored[k] = tuple(other[1:])
                    break
        return ignored

    async def _apply(self, hours: dict[tuple[int, int], list[int]]) -> None:
        """Add per-(hour, series) deltas ``[cost, events, unpriced]`` to the hour and UTC-day rollups."""
        deltas: dict[tuple[int, int, int], list[int]] = {}
        for (hour, series), (cost, events, unpriced) in hours.items():
            for key in ((0, hour, series), (1, hour // 24, series)):
                entry = deltas.setdefault(key, [0, 0, 0])
                entry[0] += cost
                entry[1] += events
                entry[2] += unpriced
        await self.store.conn.executemany(
            "INSERT INTO rollups(level, bucket, series, cost, events, unpriced) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(level, bucket, series) DO UPDATE SET cost = cost + excluded.cost, "
            "events = events + excluded.events, unpriced = unpriced + excluded.unpriced",
            [(lv, b, s, c, e, u) for (lv, b, s), (c, e, u) in deltas.items() if c or e or u],
        )

    async def _save_checkpoint(self, cp: Checkpoint) -> None:
        await self.store.conn.execute(
            "INSERT INTO files(ledger, path, dev, ino, fingerprint, offset, size, tail, events, quarantined,"
            " last_event_ms, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(dev, ino, fingerprint) DO UPDATE SET ledger=excluded.ledger, path=excluded.path,"
            " offset=excluded.offset, size=excluded.size, tail=excluded.tail, events=excluded.events,"
            " quarantined=excluded.quarantined, last_event_ms=excluded.last_event_ms, updated_at=excluded.updated_at",
            (
                cp.ledger,
                cp.path,
                cp.dev,
                cp.ino,
                cp.fingerprint,
                cp.offset,
                cp.size,
                cp.tail,
                cp.events,
                cp.quarantined,
                cp.last_event_ms,
                datetime.now(UTC).isoformat(),
            ),
        )

    async def set_cost(self, priced: Sequence[tuple[int, int]]) -> int:
        """Price unpriced events: ``(event id, cost)`` pairs; rollups follow. Return how many were priced."""
        if not priced:
            return 0
        hours: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        count = 0
        async with self.store.transaction() as conn:
            for chunk in _chunks(list(priced), 500):
                marks = ",".join("?" * len(chunk))
                costs = dict(chunk)
                sql = f"SELECT id, ts, series FROM events WHERE cost IS NULL AND id IN ({marks})"
                async with conn.execute(sql, [eid for eid, _ in chunk]) as cur:
                    found = list(await cur.fetchall())
                for eid, ts, series in found:
                    _add(hours, ts, series, None, -1)
                    _add(hours, ts, series, costs[eid], +1)
                    count += 1
                await conn.executemany(
                    "UPDATE events SET cost = ? WHERE id = ? AND cost IS NULL",
                    [(costs[eid], eid) for eid, _, _ in found],
                )
            await self._apply(hours)
        return count

    # ---- reading ------------------------------------------------------------------------------------------
    async def checkpoints(self) -> list[Checkpoint]:
        rows = await self.store.fetchall(
            "SELECT ledger, path, dev, ino, fingerprint, offset, size, tail, events, quarantined, last_event_ms"
            " FROM files ORDER BY id"
        )
        return [Checkpoint(*row) for row in rows]

    async def window_sum(self, series: Sequence[int] | None, start: datetime, end: datetime) -> Sum:
        """Return the spend of ``series`` (None: all) in ``[start, end)``."""
        totals = await self.grouped_sums(series, start, end)
        return sum(totals.values(), Sum())

    async def grouped_sums(self, series: Sequence[int] | None, start: datetime, end: datetime) -> dict[int, Sum]:
        """Return the spend per series in ``[start, end)``; ``series`` None means every series."""
        if series is not None and not series:
            return {}
        where = "" if series is None else f" AND series IN ({','.join(str(int(s)) for s in series)})"
        out: dict[int, Sum] = defaultdict(Sum)
        for kind, a, b in plan(to_ms(start), to_ms(end)):
            if kind == "raw":
                sql = (
                    "SELECT series, coalesce(sum(cost), 0), count(*), sum(cost IS NULL) FROM events"
                    f" WHERE ts >= ? AND ts < ?{where} GROUP BY series"
                )
            else:
                level = 0 if kind == "hour" else 1
                sql = (
                    "SELECT series, sum(cost), sum(events), sum(unpriced) FROM rollups"
                    f" WHERE level = {level} AND bucket >= ? AND bucket < ?{where} GROUP BY series"
                )
            for sid, cost, events, unpriced in await self.store.fetchall(sql, (a, b)):
                out[sid] = out[sid] + Sum(int(cost or 0), int(events or 0), int(unpriced or 0))
        return dict(out)

    async def unpriced_events(self, limit: int = 5000) -> list[tuple[int, str, int, int, int, int, str | None]]:
        """Return unpriced events: ``(id, model, prompt, completion, reasoning, cached, generation id)``."""
        rows = await self.store.fetchall(
            "SELECT e.id, s.model, e.prompt_tokens, e.completion_tokens, e.reasoning_tokens, e.cached_tokens,"
            " CASE WHEN e.k LIKE 'g:%' THEN substr(e.k, 3) END FROM events e JOIN series s ON s.id = e.series"
            " WHERE e.cost IS NULL LIMIT ?",
            (limit,),
        )
        return [tuple(r) for r in rows]

    async def quarantine_count(self) -> int:
        row = await self.store.fetchone("SELECT count(*) FROM quarantine")
        return int(row[0]) if row else 0


def _add(hours: dict[tuple[int, int], list[int]], ts: int, series: int, cost: int | None, sign: int) -> None:
    entry = hours[(ts // HOUR_MS, series)]
    entry[0] += sign * (cost or 0)
    entry[1] += sign
    entry[2] += sign * (cost is None)


def _sig_columns(sig: str) -> tuple[str, str | None, str | None, str]:
    model, key, provider, labels = json.loads(sig)
    return model, key, provider, json.dumps(dict(labels), sort_keys=True)


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

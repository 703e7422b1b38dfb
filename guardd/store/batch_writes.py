"""What both backends decide alike when they write a batch, as plain functions; each backend keeps only its SQL.

- :func:`count_new`: what a batch did if every row were new (the fast path's answer).
- :func:`correct`: the rows whose key was already stored (the insert skipped them). A duplicate counts once; a
  changed line (a later streaming snapshot, a re-priced line) replaces the stored event and its spend moves from
  the old line's hour and series to the new one's: the last line wins. It returns the rollup deltas and the
  events to update, and :meth:`Correction.settle` folds its counts into the batch's hours and result.
- :func:`advanced`: the file checkpoint after the batch; :func:`save_checkpoint` saves it, in either dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from guardd.core.batch import ENTRY, HOUR_MS, Parsed, Row, add_row_to_hours, add_to_hours
from guardd.store.api import BatchResult, Checkpoint
from guardd.store.dialect import Dialect

Hours = dict[tuple[int, int], list[int]]
"""Rollup deltas per ``(hour, series)``, each an :data:`~guardd.core.batch.ENTRY` list."""


@dataclass(frozen=True, slots=True)
class Stored:
    """An event stored before this batch under the key ``k`` of one of its rows. ``ref`` names the stored row for
    the backend's ``UPDATE`` (SQLite: its id; PostgreSQL: its key hash)."""

    k: str
    ref: int
    ts: int
    series: int
    cost: int | None


@dataclass(slots=True)
class Correction:
    """What the rows that met stored events change: ``hours`` (deltas to add to the batch's hours, which counted
    every row as new), ``updates`` (stored events to overwrite with the new line's ``ts``, ``series``, ``cost``,
    under their ``ref``), the keys ``seen`` (their stored health facts go: the batch's own follow), the keys
    ``priced`` (unpriced before, priced now: their waiting token counts go), the ``series`` the moved spend left,
    and how many ``duplicates`` there were, ``unpriced`` of them unpriced."""

    hours: Hours = field(default_factory=dict)
    updates: list[Stored] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    priced: list[str] = field(default_factory=list)
    series: set[int] = field(default_factory=set)
    duplicates: int = 0
    unpriced: int = 0

    def settle(self, hours: Hours, result: BatchResult) -> None:
        """Add :attr:`hours` into the batch's ``hours`` and the counts into ``result``."""
        for key, delta in self.hours.items():
            entry = hours.setdefault(key, [0] * ENTRY)
            for i, value in enumerate(delta):
                entry[i] += value
        result.duplicates += self.duplicates
        result.unpriced -= self.unpriced
        result.series |= self.series


def count_new(parsed: Parsed, inserted: int, result: BatchResult) -> None:
    """Fill ``result`` as if every row of ``parsed`` were new, ``inserted`` of them stored by the fast path."""
    hours = parsed.hours
    result.stored = inserted
    result.unpriced = sum(entry[2] for entry in hours.values())
    result.series = {sid for _hour, sid in hours}
    result.max_ts = parsed.max_ts


def correct(rows: Mapping[str, Row], found: Iterable[Stored]) -> Correction:
    """Return the :class:`Correction` of the batch ``rows`` whose keys were ``found`` stored already (each once).

    Token counts are not kept per stored event, so a changed line keeps the tokens of the line stored first (what
    ``guardd advise`` prices): the new line's are taken out of the deltas again."""
    out = Correction()
    hours = out.hours
    for old in found:
        row = rows[old.k]
        _, ts, series, cost = row[:4]
        out.duplicates += 1
        out.unpriced += cost is None
        out.seen.append(old.k)
        if (old.ts, old.series, old.cost) == (ts, series, cost):
            add_row_to_hours(hours, row, -1)  # already counted when it was stored
            continue
        add_to_hours(hours, old.ts, old.series, old.cost, -1)  # the new line replaces the old one
        entry = hours.setdefault((ts // HOUR_MS, series), [0] * ENTRY)  # the first line's tokens stay
        for i, count in enumerate(row[4:], 3):
            entry[i] -= count
        out.updates.append(Stored(old.k, old.ref, ts, series, cost))
        if cost is not None and old.cost is None:
            out.priced.append(old.k)
        out.series.add(old.series)
    return out


def advanced(checkpoint: Checkpoint, result: BatchResult) -> Checkpoint:
    """The caller's ``checkpoint`` (which counts the events before this batch) after the batch: plus what it
    stored, and its latest event time."""
    last = checkpoint.last_event_ms
    if result.max_ts is not None:
        last = max(result.max_ts, last or 0)
    return replace(checkpoint, events=checkpoint.events + result.stored, last_event_ms=last)


async def save_checkpoint(d: Dialect, conn: Any, cp: Checkpoint, instance: str | None, now: datetime) -> None:
    """Upsert the file checkpoint ``cp``, saved at ``now``, on ``conn`` (inside the batch's transaction) in ``d``.
    ``instance``: the owner column of a shared store (None: SQLite's, whose one instance owns every file)."""
    own = "" if instance is None else "instance, "
    off = d.offset_column
    columns = f"{own}ledger, path, dev, ino, fingerprint, {off}, size, tail, events, quarantined, last_event_ms"
    kept = ("ledger", "path", off, "size", "tail", "events", "quarantined", "last_event_ms", "updated_at")
    owner: tuple[Any, ...] = () if instance is None else (instance,)
    fields = (cp.ledger, cp.path, cp.dev, cp.ino, cp.fingerprint, cp.offset, cp.size, cp.tail, cp.events)
    params = (*owner, *fields, cp.quarantined, cp.last_event_ms, d.time(now))
    sql = (
        f"INSERT INTO files({columns}, updated_at) VALUES ({','.join('?' * len(params))})"
        f" ON CONFLICT({own}dev, ino, fingerprint) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in kept)
    )
    await d.execute(conn, sql, params)

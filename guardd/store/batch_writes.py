"""What both backends decide alike when they write a batch, as plain functions; each backend keeps only its SQL.

- :func:`count_new`: what a batch did if every row were new (the fast path's answer).
- :func:`correct`: the rows whose key was already stored (the insert skipped them). A duplicate counts once.
  **Who spent is fixed by the first arrival**: the stored event's series (model, key, provider, labels) never
  changes, whatever a later line with its key says; a changed cost or time (a later streaming snapshot, a
  re-priced line) replaces the stored one and its spend moves to the new hour, in the same series: the last line
  wins what it costs and when. Why: the same generation arrives from several sources (a ledger with its
  ``[[ledgers]] labels``, a Broadcast span with none, a ``guardd ingest`` of the file, another instance), and a
  later source rewriting the series moved the spend out of every budget matching the first one's labels, model
  or key, silently (review F9: a budget at 75% dropped to 0%, a tripped one would have released). Keeping the
  first series never takes spend out of a budget it was counted in. It returns the rollup deltas and the events
  to update, and :meth:`Correction.settle` folds its counts into the batch's hours and result.
- :func:`advanced`: the file checkpoint after the batch; :func:`save_checkpoint` saves it, in either dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from guardd.core.batch import ENTRY, Parsed, Row, add_row_to_hours, add_to_hours
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
    ``priced`` (unpriced before, priced now: their waiting token counts go), the ``series`` whose spend moved,
    the stored series ``kept`` for keys whose new line named another (the batch's health facts of those keys are
    stored under it), and how many ``duplicates`` there were, ``unpriced`` of them unpriced."""

    hours: Hours = field(default_factory=dict)
    updates: list[Stored] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    priced: list[str] = field(default_factory=list)
    series: set[int] = field(default_factory=set)
    kept: dict[str, int] = field(default_factory=dict)
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

    The event keeps the series it was stored in (see the module's docstring); token counts are not kept per
    stored event, so a changed line keeps the tokens of the line stored first too (what ``guardd advise``
    prices). The batch's hours counted the new line as new, in its own series: it is taken out whole, and only
    its cost and time go in, in the stored series."""
    out = Correction()
    hours = out.hours
    for old in found:
        row = rows[old.k]
        _, ts, series, cost = row[:4]
        out.duplicates += 1
        out.unpriced += cost is None
        out.seen.append(old.k)
        add_row_to_hours(hours, row, -1)  # counted as new by the parser
        if series != old.series:
            out.kept[old.k] = old.series
        if (old.ts, old.cost) == (ts, cost):
            continue  # counted already when it was stored
        add_to_hours(hours, old.ts, old.series, old.cost, -1)  # the new cost and time replace the old ones
        add_to_hours(hours, ts, old.series, cost, +1)
        out.updates.append(Stored(old.k, old.ref, ts, old.series, cost))
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

"""A parsed batch: what a ledger parser hands to the store, possibly from another process.

Plain data (tuples, dicts, ints, strings), so that it crosses a process boundary through :mod:`marshal`; the
parser (:mod:`guardd.ledger.parse`) builds it and :meth:`EventStore.write_batch
<guardd.store.sqlite.events.EventStore.write_batch>` stores it in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# Re-exported: the write path takes them with the batch; the reads import guardd.core.hours alone.
from guardd.core.hours import DAY_MS as DAY_MS
from guardd.core.hours import ENTRY as ENTRY
from guardd.core.hours import HOUR_MS as HOUR_MS


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    source: str
    path: str
    offset: int
    reason: str
    excerpt: str


Row = tuple[str, int, int, int | None, int, int, int, int]
"""A stored event: ``(key, ts in Unix ms, series id, cost in pico-dollars or None when unpriced, prompt,
completion, reasoning and cached tokens)``. The event table keeps the first four; the token counts go into the
rollups (what ``guardd advise`` prices), and travel with the row so that a duplicate can be taken out exactly."""
KeyedRow = tuple[int, str, int, int, int | None, int, int, int, int]
"""A :data:`Row` with its key hash in front (:func:`key_hash`): what the SQLite store inserts."""
Tokens = tuple[str, int, int, int, int]
"""Token counts of an unpriced event (what pricing it needs): ``(key, prompt, completion, reasoning, cached)``."""
Health = tuple[str, int, int, int, int | None, float | None, str | None]
"""What an event says about how its request went, stored only when it says anything beyond "ok" (contract §10):
``(key, ts, series id, ok as 0/1, HTTP status, latency in ms, error text)``."""


@dataclass(slots=True)
class Parsed:
    """A batch of parsed lines, ready for :meth:`EventStore.write_batch`. ``rows`` and ``tokens`` are keyed by
    event key: a later line with the same key replaced an earlier one (``duplicates`` counts those).

    Built by a parser, possibly in a worker process; :meth:`pack` and :meth:`unpack` carry it across. An
    unpacked batch keeps its rows packed (``packed_rows``) until the store's own thread iterates them, so that
    the writing process never has two threads busy in Python at once: SQLite releases the GIL on every row,
    and a second busy thread would make it wait for the GIL on every row.
    """

    start: int
    end: int
    lines: int = 0
    duplicates: int = 0
    rows: dict[str, Row] = field(default_factory=dict)
    tokens: dict[str, Tokens] = field(default_factory=dict)
    series: dict[int, str] = field(default_factory=dict)
    bad: list[QuarantinedLine] = field(default_factory=list)
    hours: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    """Spend of the rows per (hour, series) as ``[cost, events, unpriced, prompt, completion, reasoning,
    cached]`` (see :data:`ENTRY`), as if every row were new: summed by the parser, corrected by the store for
    keys it already had."""
    packed_rows: bytes | None = None
    count: int = 0
    max_ts: int | None = None
    health: dict[str, Health] = field(default_factory=dict)
    """Health facts of the rows that carry any (most ledgers carry none: nothing to store, nothing to slow)."""
    first_series: dict[str, int] = field(default_factory=dict)
    """The series of the first line of each key a later line replaced (:meth:`drop`): :meth:`close` puts the
    key's row back in it (who spent is fixed by the first arrival, in a batch as across batches)."""

    @classmethod
    def of(cls, events: Sequence[tuple[str, int, str, int | None, int, int]]) -> Parsed:
        """Build a batch from ``(key, ts, series signature, cost, prompt tokens, completion tokens)`` events
        that come from somewhere other than a ledger line (tests, tools). A later event with a key wins."""
        parsed = cls(0, 0, lines=len(events))
        for k, ts, sig, cost, prompt, completion in events:
            sid = series_id(sig)
            parsed.series[sid] = sig
            parsed.add((k, ts, sid, cost, prompt, completion, 0, 0), (k, prompt, completion, 0, 0))
        parsed.close()
        return parsed

    def add(self, row: Row, tokens: Tokens, health: Health | None = None) -> None:
        """Add ``row`` (``tokens`` are kept only if it is unpriced, ``health`` only if given); it replaces an
        earlier row with its key."""
        k = row[0]
        if k in self.rows:
            self.drop(k)
        self.rows[k] = row
        add_row_to_hours(self.hours, row, +1)
        if row[3] is None:
            self.tokens[k] = tokens
        if health is not None:
            self.health[k] = health

    def drop(self, k: str) -> None:
        """A later line has the key ``k`` of an earlier one: take the earlier one out (the last line wins its cost
        and time; the first line's series is kept for :meth:`close`)."""
        self.duplicates += 1
        row = self.rows.pop(k)
        self.first_series.setdefault(k, row[2])
        add_row_to_hours(self.hours, row, -1)
        self.tokens.pop(k, None)
        self.health.pop(k, None)

    def close(self) -> None:
        """Put each key a later line replaced back in its first line's series (the store's rule across batches,
        :func:`guardd.store.batch_writes.correct`, so that where batches end changes nothing); record the row
        count and the latest time (the parser calls this when the batch is complete)."""
        for k, sid in self.first_series.items():
            row = self.rows[k]
            if row[2] != sid:
                add_row_to_hours(self.hours, row, -1)
                row = self.rows[k] = (k, row[1], sid, *row[3:])
                add_row_to_hours(self.hours, row, +1)
                fact = self.health.get(k)
                if fact is not None:
                    self.health[k] = (k, fact[1], sid, *fact[3:])
        self.first_series.clear()
        self.count = len(self.rows)
        self.max_ts = max((row[1] for row in self.rows.values()), default=None)

    def row_iter(self) -> Iterator[Row]:
        """The rows, unpacked lazily: in whichever thread iterates them."""
        if self.packed_rows is None:
            yield from self.rows.values()
        else:
            yield from zip(*marshal.loads(self.packed_rows)[1:], strict=True)

    def keyed_rows(self) -> Iterator[KeyedRow]:
        """The rows as ``(key hash, *row)`` (:func:`key_hash`), sorted by the hash, unpacked lazily: what the
        SQLite store's unique index on the hash takes in one ordered sweep."""
        yield from zip(*self._columns(), strict=True)

    def insert_rows(self) -> Iterator[tuple[int, str, int, int, int | None]]:
        """``(key hash, key, ts, series, cost)`` of every row, sorted by the hash, unpacked lazily (in the
        thread that iterates them): exactly the columns the SQLite event table stores."""
        yield from zip(*self._columns()[:5], strict=True)

    def _columns(self) -> Columns:
        if self.packed_rows is not None:
            columns: Columns = marshal.loads(self.packed_rows)
            return columns
        return _columns(self.rows)

    def row_dict(self) -> dict[str, Row]:
        if self.packed_rows is not None:
            self.rows = {row[0]: row for row in self.row_iter()}
            self.packed_rows = None
        return self.rows

    def pack(self) -> bytes:
        """Serialise for another process: :mod:`marshal` (both ends are the same interpreter, which is all it
        requires) at version 2, which keeps no table of shared references — three times faster than version 4
        for a batch's hundred thousand distinct strings and ints. The rows go as columns (a list per field,
        cheaper to pack and to unpack than a tuple per row) with their key hash, sorted by it, so the store's
        unique index takes them in one ordered sweep, and the hashing is done here, in the parsing process, not
        by the writer."""
        bad = [(q.source, q.path, q.offset, q.reason, q.excerpt) for q in self.bad]
        rows = marshal.dumps(_columns(self.rows), PACK_VERSION)
        fields = (self.start, self.end, self.lines, self.duplicates, rows, self.tokens, self.series, bad)
        return marshal.dumps((*fields, self.hours, self.count, self.max_ts, self.health), PACK_VERSION)

    @classmethod
    def unpack(cls, data: bytes) -> Parsed:
        start, end, lines, dups, rows, tokens, series, bad, hours, count, max_ts, health = marshal.loads(data)
        bad = [QuarantinedLine(*q) for q in bad]
        return cls(start, end, lines, dups, {}, tokens, series, bad, hours, rows, count, max_ts, health)


Columns = tuple[list[Any], ...]
"""A batch's rows as nine lists, one per field of :data:`KeyedRow`, sorted by the key hash."""
PACK_VERSION = 2


def _columns(rows: dict[str, Row]) -> Columns:
    if not rows:
        return tuple([] for _ in range(9))
    hashes = key_hashes(rows)
    order = sorted(range(len(hashes)), key=hashes.__getitem__)
    values = list(rows.values())
    return ([hashes[i] for i in order], *map(list, zip(*[values[i] for i in order], strict=True)))


def series_sig(model: str, key: str | None, provider: str | None, labels: dict[str, str]) -> str:
    return json.dumps([model, key, provider, sorted(labels.items())], separators=(",", ":"), ensure_ascii=False)


def series_id(sig: str) -> int:
    """Return the id of the series with signature ``sig``: a signed 64-bit hash, the same in every process."""
    return int.from_bytes(hashlib.blake2b(sig.encode(), digest_size=8).digest(), "big", signed=True)


def key_hash(k: str, attempt: int = 0) -> int:
    """Return the signed 64-bit hash of the event key ``k`` that the SQLite store indexes (schema 4). Two keys
    with one hash are told apart by the key text stored beside it; the second is then stored under its
    ``attempt=1`` hash (see :class:`~guardd.store.sqlite.events.EventStore`)."""
    digest = hashlib.blake2b(k.encode(), digest_size=8, salt=b"%d" % attempt if attempt else b"").digest()
    return int.from_bytes(digest, "big", signed=True)


def key_hashes(keys: Iterable[str]) -> list[int]:
    """``[key_hash(k) for k in keys]``, a third faster (a batch hashes every key it carries)."""
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return [from_bytes(blake2b(k.encode(), digest_size=8).digest(), "big", signed=True) for k in keys]


def add_to_hours(
    hours: dict[tuple[int, int], list[int]],
    ts: int,
    series: int,
    cost: int | None,
    sign: int,
    tokens: Sequence[int] = (0, 0, 0, 0),
) -> None:
    """Add (``sign`` +1) or take out (-1) one event's spend and ``(prompt, completion, reasoning, cached)``."""
    entry = hours.setdefault((ts // HOUR_MS, series), [0] * ENTRY)
    entry[0] += sign * (cost or 0)
    entry[1] += sign
    entry[2] += sign * (cost is None)
    for i, count in enumerate(tokens, 3):
        entry[i] += sign * count


def add_row_to_hours(hours: dict[tuple[int, int], list[int]], row: Row, sign: int) -> None:
    add_to_hours(hours, row[1], row[2], row[3], sign, row[4:])

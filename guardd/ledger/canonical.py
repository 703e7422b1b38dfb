"""The canonical (``guardd``) ledger line as msgspec decodes it, for both parsing paths of
:mod:`guardd.ledger.parse`.

:class:`Canonical` is the line path's shape (any time form); :class:`Fast` (an RFC 3339 time, decoded to a datetime
in C) and :class:`FastRaw` (any other time form of contract §2, kept as its JSON text) are the batch path's, with the
labels kept raw. Each declares the other formats' marker fields so that such a line is never mistaken for a canonical
one. :func:`canonical_ms` reads a time on the line path exactly as the batch path does. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import msgspec

from guardd.core.usage import MAX_TOKENS, parse_ts, plausible_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
NULL = msgspec.Raw(b"null")
ABSENT = msgspec.Raw(b"")

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]  # above it: the line path says why
Latency = Annotated[float, msgspec.Meta(ge=0)]
Status = Annotated[int, msgspec.Meta(ge=100, le=599)]


class Fields(msgspec.Struct, kw_only=True):
    """The fields both decoders of a canonical line share, type-checked by msgspec in C."""

    id: str | None = None
    model: str | None = None
    cost: Decimal | None = None
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    reasoning_tokens: Count | None = None
    cached_tokens: Count | None = None
    key: str | None = None
    provider: str | None = None
    ok: bool | None = None
    latency_ms: Latency | None = None  # contract §10; an odd value sends the line to the line path, which
    status: Status | None = None  # drops it (a health field never costs a line its spend)
    error: str | None = None


class Canonical(Fields, kw_only=True):
    """A canonical (``guardd``) line for the line path: any time form, and the other formats' marker fields
    declared so that such lines are never mistaken for canonical ones."""

    ts: str | int
    labels: dict[str, str] | None = None
    usage: msgspec.Raw | None = None
    response: msgspec.Raw | None = None
    performance: msgspec.Raw | None = None
    sessionId: msgspec.Raw | None = None


class FastBase(Fields, kw_only=True, gc=False):
    """A canonical line for the batch path: the labels kept raw (they only name a series, and are checked once
    per distinct text). A line with one of the other formats' marker fields, even null (left ``ABSENT`` only
    when missing), is the line path's: it tells whether such a line is canonical."""

    labels: msgspec.Raw = NULL
    usage: msgspec.Raw = ABSENT
    response: msgspec.Raw = ABSENT
    performance: msgspec.Raw = ABSENT
    sessionId: msgspec.Raw = ABSENT


class Fast(FastBase, kw_only=True, gc=False):
    """The form most ledgers write: the time is RFC 3339 text, decoded to a datetime in C."""

    ts: datetime


class FastRaw(FastBase, kw_only=True, gc=False):
    """Any other time form of contract §2 (Unix seconds or milliseconds, with or without a fraction; an offset;
    no zone): the time is kept as its JSON text and read exactly by
    :func:`~guardd.ledger.times.raw_ms`, still without the line path. A block of such lines (or of
    mixed forms) is decoded with this struct."""

    ts: msgspec.Raw


def canonical_ms(ts: str | int) -> int:
    """Unix ms of a canonical line's time on the line path, accepting exactly what the batch path accepts."""
    if isinstance(ts, str):
        try:
            moment = msgspec.convert(ts, datetime)
        except msgspec.ValidationError:
            return parse_ts(ts)  # Unix time as digits, or a bad time with the reason
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return plausible_ms((moment - EPOCH) // MS, ts)
    return parse_ts(ts)

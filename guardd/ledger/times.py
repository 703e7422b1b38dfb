"""Reading a canonical line's time from its JSON text, for the batch path of :mod:`guardd.ledger.parse`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from guardd.core.usage import MAX_UNIX_MS, unix_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TIME = msgspec.json.Decoder(datetime)
_SECONDS_UNTIL = 100_000_000_000  # as parse_ts: a Unix time below this is in seconds, else in milliseconds


def raw_ms(raw: msgspec.Raw) -> int:
    """Unix ms of a canonical line's time given as its JSON text, exactly as the line path reads it
    (:func:`~guardd.core.usage.parse_ts`): RFC 3339 text (no zone = UTC), or a Unix time in seconds or
    milliseconds, a fraction read as a decimal (never a binary float). Raise for anything else (a time as
    digits in a string, a negative number, ``null``): the line path has the exact rule and reason."""
    text = bytes(raw)
    if text[:1] == b'"':
        moment = _TIME.decode(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // _MS
    if text.isdigit():
        whole = int(text)
        if whole > MAX_UNIX_MS:
            raise ValueError("beyond the store's integers")  # the line path quarantines it, with the reason
        return whole if whole >= _SECONDS_UNTIL else whole * 1000
    number = Decimal(text.decode())  # InvalidOperation for true, null, an object…
    if not number.is_finite() or number < 0:
        raise ValueError("not a Unix time")
    return unix_ms(number)

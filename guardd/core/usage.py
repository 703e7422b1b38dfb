"""Usage events and the three ledger line formats of contract §2.

:func:`event_from_record` turns one decoded JSON object (numbers as ``int``/``Decimal``, never ``float``) into a
:class:`UsageEvent`, or raises :class:`BadLine` with a reason fit for the quarantine table. JSON decoding itself
lives in the ledger adapter; this module is pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from guardd.core.money import Money, MoneyError, money_decimal, parse_money
from guardd.core.redact import clean_secret

FORMATS = ("auto", "guardd", "openrouter", "record")
# A ledger's integers must fit the store's 64-bit ones: larger token counts and times are quarantined (both parse
# paths; the C parser takes at most 18 digits and leaves the rest to the Python path, which says why).
MAX_TOKENS = 10**18 - 1
MAX_UNIX_MS = 10**18 - 1
_MILLI = Decimal("0.001")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# The plausible range of an event's time (contract §2), Unix ms, the end excluded. Fixed, not relative to now, so
# that a line reads the same whenever it is read (a backfill of an old ledger, a re-read after a crash, the C and
# Python paths). It refuses what is certainly a wrong unit or an unset clock — a Unix time in micro- or nanoseconds
# (read as milliseconds: years 31,970 on), 0 or "1970-01-01", the year 9999 — which would be stored where no
# window ever counts it; a skewed clock (minutes, days) stays well inside it.
TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_END_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_RANGE = "between 2000-01-01 and 2100-01-01 UTC"


class BadLine(ValueError):
    """A ledger line that cannot be counted; the message is the quarantine reason."""


@dataclass(slots=True)
class UsageEvent:
    """One request's usage as guardd counts it. ``cost`` None means unpriced (never silently $0).

    ``ts_ms`` is Unix milliseconds in UTC: integers sort, index and bucket cheaply in SQLite.
    """

    ts_ms: int
    model: str
    cost: Money | None
    id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    key: str | None = None
    provider: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ok: bool = True
    latency_ms: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def has_health(self) -> bool:
        """True when the event says anything about its request beyond "it went fine" (contract §10)."""
        return not self.ok or self.latency_ms is not None or self.status is not None or self.error is not None

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, UTC)


_HOUR_CACHE: dict[str, int] = {}


def _fast_utc(text: str) -> int | None:
    """Return Unix ms of ``YYYY-MM-DDTHH:MM:SS[.fff]Z`` (the form ledgers write) quickly, else None.

    The date and hour are parsed once per distinct hour and cached; minutes, seconds and milliseconds are
    added as integers. Any other shape returns None and takes the general path.
    """
    n = len(text)
    if text[-1:] != "Z" or n not in (20, 24) or text[13] != ":" or text[16] != ":":
        return None
    base = _HOUR_CACHE.get(text[:13])
    if base is None:
        try:
            base = (datetime.fromisoformat(text[:13] + ":00:00+00:00") - _EPOCH) // _MS
        except ValueError:
            return None
        if len(_HOUR_CACHE) > 10_000:
            _HOUR_CACHE.clear()
        _HOUR_CACHE[text[:13]] = base
    mm, ss = text[14:16], text[17:19]
    if not (mm.isdigit() and ss.isdigit()) or int(mm) > 59 or int(ss) > 59:
        return None
    millis = 0
    if n == 24:
        frac = text[20:23]
        if text[19] != "." or not frac.isdigit():
            return None
        millis = int(frac)
    return base + int(mm) * 60_000 + int(ss) * 1000 + millis


def unix_ms(number: Decimal) -> int:
    """Unix milliseconds of a finite, non-negative Unix time in seconds, or in milliseconds from 10^11 on (seconds
    until the year 5138), the fraction truncated — exactly: ``number * 1000`` would round to the context's 28
    digits (``1790817949.9999999999999999999`` read as the next second). Raise BadLine from ``MAX_UNIX_MS`` on: the
    store's integers end at 2^63.

    The work is bounded by the number's text, whatever its exponent: ``int()`` of ``9e9999999`` or the exact ratio
    of ``1e-9999999`` builds a ten-million-digit integer, minutes of CPU for one line. So the size is checked
    before ``int()``, and a time in seconds is truncated to the millisecond (``quantize``, exact: at most 14 digits
    remain) before it becomes an integer."""
    if number >= 100_000_000_000:
        if number > MAX_UNIX_MS:
            raise BadLine("ts is not a valid Unix time")
        return int(number)
    return int(number.quantize(_MILLI, rounding=ROUND_DOWN).scaleb(3))


def parse_ts(value: object) -> int:
    """Return Unix milliseconds for an RFC 3339 string (no zone = UTC) or a Unix time in s or ms, within
    :data:`TS_MIN_MS` … :data:`TS_END_MS`; raise :class:`BadLine` with the reason otherwise."""
    return plausible_ms(_parse_ts(value), value)


def plausible_ms(ms: int, value: object) -> int:
    """Return ``ms`` (read from the ledger's ``value``) when it lies in the plausible range, else raise
    :class:`BadLine` naming the value and the range."""
    if TS_MIN_MS <= ms < TS_END_MS:
        return ms
    raise _implausible(value)


def _implausible(value: object) -> BadLine:
    if isinstance(value, str) and not value.strip().isdigit():
        return BadLine(f"ts {value[:40]!r} is not a plausible time ({_RANGE})")
    return BadLine(
        f"ts {str(value).strip()[:40]} is not a plausible time (seconds, or milliseconds from 10^11 on, since 1970,"
        f" {_RANGE})"
    )


def _parse_ts(value: object) -> int:
    if isinstance(value, str):
        fast = _fast_utc(value)
        if fast is not None:
            return fast
    if isinstance(value, bool):
        raise BadLine("ts is not a time")
    if isinstance(value, int | Decimal | float):
        number = Decimal(value) if not isinstance(value, Decimal) else value
        if not number.is_finite() or number < 0:
            raise BadLine("ts is not a valid Unix time")
        if number > MAX_UNIX_MS:  # beyond the store's integers: far beyond the plausible range too, said as such
            raise _implausible(value)
        # Seconds until the year 5138; anything larger is milliseconds.
        return unix_ms(number)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _parse_ts(int(text))
        try:
            moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case "t" and "z"
        except ValueError:
            raise BadLine(f"ts is not an RFC 3339 time: {text[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // _MS
    raise BadLine("ts is missing" if value is None else "ts is not a time")


def parse_cost(value: object, max_event_cost: Money) -> Money | None:
    """Return a ledger cost in pico-dollars (None when absent); raise BadLine if negative or implausible.

    A cost whose size alone puts it beyond ``max_event_cost`` is refused before it becomes an integer: ``1e9999999``
    would be a ten-million-digit one, minutes of CPU for one line. The reason is the one the integer would give."""
    if value is None:
        return None
    if isinstance(value, Decimal) and value.is_finite():
        _refuse_beyond(value, max_event_cost)
        scaled = value.scaleb(12)
        cost = int(scaled)
        if cost != scaled:  # more than 12 decimal places: round half-to-even like parse_money
            cost = parse_money(value)
    else:
        try:
            if isinstance(value, str | float):
                _refuse_beyond(money_decimal(value), max_event_cost)
            cost = parse_money(value)
        except MoneyError as exc:
            raise BadLine(f"cost: {str(exc)[:80]}") from None
    if cost < 0:
        raise BadLine("cost is negative")
    if cost > max_event_cost:
        raise BadLine("cost is implausible (above max_event_cost)")
    return cost


def _refuse_beyond(dec: Decimal, max_event_cost: Money) -> None:
    """Raise BadLine (negative, else implausible) when ``|dec|`` USD is at least 10^k pico-dollars with 10^k above
    ``max_event_cost`` (a non-negative int of pico-dollars): rounded, it stays at least 10^k."""
    if dec and dec.adjusted() + 12 >= len(str(max_event_cost)):
        raise BadLine("cost is negative" if dec < 0 else "cost is implausible (above max_event_cost)")


def _tokens(value: object, name: str) -> int:
    """A token count: a whole, non-negative number up to ``MAX_TOKENS``. Its size is checked before ``int()``,
    which for ``1e9999999`` would build a ten-million-digit integer (minutes of CPU for one line)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise BadLine(f"{name} is not a whole number")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise BadLine(f"{name} is not a whole number")
    if value < 0:
        raise BadLine(f"{name} is negative")
    if value > MAX_TOKENS:
        raise BadLine(f"{name} is implausible (above {MAX_TOKENS})")
    return int(value)


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    raise BadLine(f"{name} is not a string")


def parse_labels(value: object) -> dict[str, str]:
    """Return ledger labels as text (scalars converted, nulls dropped); raise BadLine for anything nested."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadLine("labels is not an object")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, dict | list):
            raise BadLine(f"label {str(k)[:40]!r} is not a scalar")
        if v is not None:
            out[str(k)] = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return out


ERROR_CHARS = 200


def parse_latency(value: object) -> float | None:
    """Return a ``latency_ms`` as a float; anything but a finite non-negative number counts as absent (a health
    field never costs a line its spend)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if number >= 0 and number != float("inf") else None


def parse_status(value: object) -> int | None:
    """Return an HTTP ``status`` (an integer 100–599); anything else counts as absent."""
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        return None
    return value


def parse_error(value: object) -> str | None:
    """Return an ``error`` as text: strings as they are, anything else as compact JSON. Secrets are redacted and
    the text cut to :data:`ERROR_CHARS` where it is stored, not here."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))


def ok_of(explicit: object, status: int | None) -> bool:
    """Contract §10: an explicit boolean ``ok`` wins; else ``status < 400`` when there is a status; else True."""
    if isinstance(explicit, bool):
        return explicit
    return status < 400 if status is not None else True


def clean_key(value: object) -> str | None:
    """Return a ledger ``key`` as stored: a full secret key (also as ``Bearer <key>``, or inside a longer text)
    is kept only in redacted form."""
    key = _text(value, "key")
    return None if key is None else clean_secret(key)


def _obj(value: object, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadLine(f"{name} is not an object")
    return value


def detect_format(obj: dict[str, Any]) -> str:
    """Return the format of one decoded line: ``guardd``, ``openrouter`` or ``record``."""
    if "response" in obj and isinstance(obj["response"], dict):
        return "openrouter"
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if "totalCost" in usage or "promptTokens" in usage or "performance" in obj or "sessionId" in obj:
            return "record"
        if "created" in obj or "choices" in obj or "object" in obj or "prompt_tokens" in usage:
            return "openrouter"
    if "performance" in obj or "sessionId" in obj:
        return "record"
    return "guardd"


def _from_guardd(obj: dict[str, Any], max_cost: Money) -> UsageEvent:
    if "ts" not in obj:
        raise BadLine("ts is missing")
    status = parse_status(obj.get("status"))
    return UsageEvent(
        ts_ms=parse_ts(obj["ts"]),
        model=_text(obj.get("model"), "model") or "unknown",
        cost=parse_cost(obj.get("cost"), max_cost),
        id=_text(obj.get("id"), "id"),
        prompt_tokens=_tokens(obj.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=_tokens(obj.get("completion_tokens"), "completion_tokens"),
        reasoning_tokens=_tokens(obj.get("reasoning_tokens"), "reasoning_tokens"),
        cached_tokens=_tokens(obj.get("cached_tokens"), "cached_tokens"),
        key=clean_key(obj.get("key")),
        provider=_text(obj.get("provider"), "provider"),
        labels=parse_labels(obj.get("labels")),
        ok=ok_of(obj.get("ok"), status),
        latency_ms=parse_latency(obj.get("latency_ms")),
        status=status,
        error=parse_error(obj.get("error")),
    )


def _from_openrouter(obj: dict[str, Any], max_cost: Money) -> UsageEvent:
    wrapper: dict[str, Any] = {}
    if isinstance(obj.get("response"), dict):
        wrapper, obj = obj, obj["response"]
    usage = _obj(obj.get("usage"), "usage")
    ts = wrapper.get("ts", obj.get("created"))
    if ts is None:
        raise BadLine("ts is missing (neither ts nor created)")
    prompt_details = _obj(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    completion_details = _obj(usage.get("completion_tokens_details"), "usage.completion_tokens_details")
    choices = obj.get("choices")
    failed = isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") == "error" for c in choices
    )
    return UsageEvent(
        ts_ms=parse_ts(ts),
        model=_text(obj.get("model"), "model") or "unknown",
        cost=parse_cost(usage.get("cost"), max_cost),
        id=_text(obj.get("id"), "id"),
        prompt_tokens=_tokens(usage.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=_tokens(usage.get("completion_tokens"), "completion_tokens"),
        reasoning_tokens=_tokens(completion_details.get("reasoning_tokens"), "reasoning_tokens"),
        cached_tokens=_tokens(prompt_details.get("cached_tokens"), "cached_tokens"),
        key=clean_key(wrapper.get("key")),
        provider=_text(obj.get("provider"), "provider"),
        labels=parse_labels(wrapper.get("labels")),
        ok=not failed and "error" not in obj,
        latency_ms=parse_latency(wrapper.get("latency_ms")),
        error=parse_error(obj.get("error")),
    )


def _from_record(obj: dict[str, Any], max_cost: Money) -> UsageEvent:
    usage = _obj(obj.get("usage"), "usage")
    performance = _obj(obj.get("performance"), "performance")
    metadata = _obj(obj.get("metadata"), "metadata")
    ts = performance.get("timestamp", obj.get("ts"))
    if ts is None:
        raise BadLine("ts is missing (no performance.timestamp)")
    return UsageEvent(
        ts_ms=parse_ts(ts),
        model=_text(obj.get("model") or metadata.get("model"), "model") or "unknown",
        cost=parse_cost(usage.get("totalCost"), max_cost),
        id=_text(metadata.get("generationId"), "metadata.generationId"),
        prompt_tokens=_tokens(usage.get("promptTokens"), "promptTokens"),
        completion_tokens=_tokens(usage.get("completionTokens"), "completionTokens"),
        reasoning_tokens=_tokens(usage.get("reasoningTokens"), "reasoningTokens"),
        cached_tokens=_tokens(usage.get("cachedTokens"), "cachedTokens"),
        key=clean_key(obj.get("key")),
        provider=_text(metadata.get("provider"), "metadata.provider"),
        labels=parse_labels(obj.get("labels")),
        ok=performance.get("success") is not False,
        latency_ms=parse_latency(performance.get("latency")),
    )


_PARSERS = {"guardd": _from_guardd, "openrouter": _from_openrouter, "record": _from_record}


def event_from_record(
    obj: object, fmt: str, max_event_cost: Money, ledger_labels: dict[str, str] | None = None
) -> UsageEvent:
    """Return the usage event one decoded ledger line describes.

    ``fmt`` is one of :data:`FORMATS`; ``auto`` detects each line's form. ``ledger_labels`` are added to the
    event's labels, the event's own winning. Raise :class:`BadLine` when the line cannot be counted.
    """
    if not isinstance(obj, dict):
        raise BadLine("line is not a JSON object")
    form = detect_format(obj) if fmt == "auto" else fmt
    event = _PARSERS[form](obj, max_event_cost)
    if ledger_labels:
        event.labels = {**ledger_labels, **event.labels}
    return event

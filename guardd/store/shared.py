"""What both backends share beyond the interface: window arithmetic (how a window splits into raw edges, whole hours
and whole UTC days, so a month over millions of events reads a few thousand rollup rows), Unix milliseconds, a
series' dimensions, RFC 3339 times and the switch document's JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from guardd.core.budgets import Dimensions
from guardd.core.hours import HOUR_MS
from guardd.core.switch import Override, Scope, SwitchDoc


def dims_of(sig: str) -> Dimensions:
    """A series' dimensions from its signature (called once per series whenever the series are loaded: there may
    be one per conversation, so no Python-level loop over the labels)."""
    model, key, provider, labels = json.loads(sig)
    return Dimensions(model, key, provider, tuple(map(tuple, labels)))


def sig_columns(sig: str) -> tuple[str, str | None, str | None, str]:
    """The ``model, key, provider, labels`` columns of a series' table row, from its signature (labels as sorted
    JSON)."""
    model, key, provider, labels = json.loads(sig)
    return model, key, provider, json.dumps(dict(labels), sort_keys=True)


def plan(start_ms: int, end_ms: int, days: bool = True) -> list[tuple[str, int, int]]:
    """Return how to sum ``[start_ms, end_ms)``: ``("raw", a, b)`` ms ranges and ``("hour"|"day", a, b)`` bucket
    ranges that together cover it exactly once (``days`` False: no day buckets, whole hours instead)."""
    if end_ms <= start_ms:
        return []
    h0, h1 = -(-start_ms // HOUR_MS), end_ms // HOUR_MS
    if h0 >= h1:
        return [("raw", start_ms, end_ms)]
    parts: list[tuple[str, int, int]] = []
    if start_ms < h0 * HOUR_MS:
        parts.append(("raw", start_ms, h0 * HOUR_MS))
    d0, d1 = -(-h0 // 24), h1 // 24
    if days and d0 < d1:
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


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def doc_from_json(data: dict[str, object]) -> SwitchDoc:
    """Rebuild a :class:`SwitchDoc` from its JSON form (contract §3)."""
    from guardd.core.money import parse_money

    scopes: dict[str, Scope] = {}
    raw_scopes = data.get("scopes")
    for name, raw in raw_scopes.items() if isinstance(raw_scopes, dict) else []:
        ov = raw.get("override")
        override = None
        if isinstance(ov, dict):
            override = Override(
                name, ov["state"], ov.get("by") or "", ov.get("reason") or "", parse_iso(ov.get("until"))
            )
        scopes[name] = Scope(
            bool(raw.get("tripped")),
            raw.get("reason"),
            parse_iso(raw.get("since")),
            parse_iso(raw.get("until")),
            raw.get("window"),
            None if raw.get("spent") is None else parse_money(raw["spent"]),
            None if raw.get("limit") is None else parse_money(raw["limit"]),
            None if raw.get("headroom") is None else parse_money(raw["headroom"]),  # null: not known, never 0
            override,
        )
    updated = parse_iso(str(data.get("updated_at"))) or datetime.now(UTC)
    heartbeat = parse_iso(str(data.get("heartbeat_at"))) or updated
    expires = parse_iso(str(data.get("expires_at"))) if data.get("expires_at") else None
    if expires is not None and expires > heartbeat:
        return SwitchDoc(updated, heartbeat, scopes, expires - heartbeat)
    return SwitchDoc(updated, heartbeat, scopes)

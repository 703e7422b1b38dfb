"""``guardd report``: spend grouped by model, key, provider, local day or a label, over a time range."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guardd.adapters.events_store import EventStore, Sum
from guardd.core.budgets import Dimensions
from guardd.core.money import format_json
from guardd.core.periods import local_midnight, window_at
from guardd.errors import UsageError

_AGO = re.compile(r"^(\d+)([dhmw])$")
_AGO_UNIT = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}


def parse_when(text: str, tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """Return the instant a ``--since``/``--until`` value names (contract §4).

    Accepted: ``today`` and ``yesterday`` (local midnight in ``tz``), ``7d``/``12h``/``30m``/``2w`` ago, a date
    (local midnight) or an RFC 3339 time (a time without a zone is in ``tz``). Raise UsageError otherwise.
    """
    now = datetime.now(UTC) if now is None else now
    word = text.strip().lower()
    if word in {"today", "yesterday"}:
        day = now.astimezone(tz).date() - timedelta(days=1 if word == "yesterday" else 0)
        return local_midnight(day, tz)
    ago = _AGO.match(word)
    if ago:
        return now - timedelta(**{_AGO_UNIT[ago.group(2)]: int(ago.group(1))})
    try:
        if len(text) == 10:
            return local_midnight(date.fromisoformat(text), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"not a date: {text!r} (today, yesterday, 7d, 12h, 30m, 2026-11-01 or 2026-11-01T09:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _group_key(by: str, dims: Dimensions) -> str | None:
    if by.startswith("label:"):
        return dict(dims.labels).get(by.removeprefix("label:"))  # a label may be called "model" too
    return dims.get(by)


async def build(
    events: EventStore,
    by: str,
    since: datetime | None,
    until: datetime | None,
    tz: ZoneInfo,
    now: datetime,
    week_start: int = 0,
) -> dict[str, Any]:
    """Return the ``guardd report --json`` document (schema 1)."""
    if by not in ("model", "key", "provider", "day") and not by.startswith("label:"):
        raise UsageError(f"--by must be model, key, provider, day or label:NAME, not {by!r}")
    start = since or window_at("monthly", tz, now, week_start).start
    end = until or now
    if end <= start:
        raise UsageError("--until must be later than --since")
    series = await events.load_series()
    groups: dict[str | None, Sum] = {}
    if by == "day":
        day = start.astimezone(tz).date()
        while True:
            day_start = max(local_midnight(day, tz), start)
            if day_start >= end:
                break
            day_end = min(local_midnight(day + timedelta(days=1), tz), end)
            total = await events.window_sum(None, day_start, day_end)
            if total.events:
                groups[day.isoformat()] = total
            day += timedelta(days=1)
    else:
        for sid, total in (await events.grouped_sums(None, start, end)).items():
            dims = series.get(sid)
            key = _group_key(by, dims) if dims else None
            groups[key] = groups.get(key, Sum()) + total
    rows = sorted(groups.items(), key=lambda kv: (-kv[1].cost, str(kv[0])))
    if by == "day":
        rows = sorted(groups.items(), key=lambda kv: str(kv[0]))
    total = sum((s for _, s in rows), Sum())
    return {
        "schema": 1,
        "by": by,
        "since": start.astimezone(tz).isoformat(),
        "until": end.astimezone(tz).isoformat(),
        "timezone": tz.key,
        "total": format_json(total.cost, 6),
        "events": total.events,
        "unpriced_events": total.unpriced,
        "rows": [
            {"group": group, "spent": format_json(s.cost, 6), "events": s.events, "unpriced_events": s.unpriced}
            for group, s in rows
        ],
    }

"""``guardd report``: spend grouped by model, key, provider, local day or a label, over a time range."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guardd.core.budgets import Dimensions
from guardd.core.hours import iso_of_ms
from guardd.core.money import format_json
from guardd.core.periods import local_midnight, window_at
from guardd.errors import UsageError
from guardd.store.api import EventsAPI, RequestStatsAPI, Sum

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
    events: EventsAPI,
    stats: RequestStatsAPI,
    by: str,
    since: datetime | None,
    until: datetime | None,
    tz: ZoneInfo,
    now: datetime,
    week_start: int = 0,
    series: dict[int, Dimensions] | None = None,
) -> dict[str, Any]:
    """Return the ``guardd report --json`` document (schema 1). ``series``: the series table when the caller has
    loaded it already (every series is parsed once per load: there may be one per conversation); else it is
    loaded here when the grouping needs it."""
    if by not in ("model", "key", "provider", "day") and not by.startswith("label:"):
        raise UsageError(f"--by must be model, key, provider, day or label:NAME, not {by!r}")
    start = since or window_at("monthly", tz, now, week_start).start
    end = until or now
    if end <= start:
        raise UsageError("--until must be later than --since")
    groups: dict[str | None, Sum] = {}
    requests: dict[str | None, _Requests] = {}
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
                requests[day.isoformat()] = await _requests(stats, day_start, day_end, lambda _sid: None)
            day += timedelta(days=1)
    else:
        known = series if series is not None else await events.load_series()

        def group_of(sid: int) -> str | None:
            dims = known.get(sid)
            return _group_key(by, dims) if dims else None

        for sid, total in (await events.grouped_sums(None, start, end)).items():
            key = group_of(sid)
            groups[key] = groups.get(key, Sum()) + total
        requests = await _by_group(stats, start, end, group_of)
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
            {
                "group": group,
                "spent": format_json(s.cost, 6),
                "events": s.events,
                "unpriced_events": s.unpriced,
                **requests.get(group, _Requests()).to_json(tz),
            }
            for group, s in rows
        ],
    }


@dataclass(slots=True)
class _Requests:
    """Per-group request statistics (contract §11): events with ok = false, with status 429, the latest event."""

    errors: int = 0
    rate_limited: int = 0
    last_ms: int | None = None

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        last = None if self.last_ms is None else iso_of_ms(self.last_ms, tz)
        return {"errors": self.errors, "rate_limited": self.rate_limited, "last_at": last}


async def _by_group(
    stats: RequestStatsAPI, start: datetime, end: datetime, group_of: Callable[[int], str | None]
) -> dict[str | None, _Requests]:
    out: dict[str | None, _Requests] = {}
    for sid, counts in (await stats.request_stats(start, end)).items():
        entry = out.setdefault(group_of(sid), _Requests())
        entry.errors += counts.errors
        entry.rate_limited += counts.rate_limited
    for sid, last in (await stats.last_event_ms(start, end)).items():
        entry = out.setdefault(group_of(sid), _Requests())
        entry.last_ms = last if entry.last_ms is None else max(entry.last_ms, last)
    return out


async def _requests(
    stats: RequestStatsAPI, start: datetime, end: datetime, group_of: Callable[[int], str | None]
) -> _Requests:
    return (await _by_group(stats, start, end, group_of)).get(None, _Requests())

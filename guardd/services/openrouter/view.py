"""OpenRouter's figures as budgets use them: spend in any window of the configured zone, staleness, status.

Spend in ``[start, end)`` is the usage now minus the usage of the last snapshot at or before ``start``. When the
snapshots begin after the window started, OpenRouter's own UTC daily/weekly/monthly figures are used where they
coincide with the window (UTC zone, weeks from Monday); otherwise the figure covers only part of the window and
says so (``partial``) — never zero, and never below a UTC day, week or month that began inside the window.
A budget's keys are the ones its ``match.key`` names (:mod:`guardd.core.keys`); one that names none is stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guardd.config import Config
from guardd.core.budgets import Budget
from guardd.core.evaluate import Staleness
from guardd.core.keys import KnownKey, matching, merge, ref_of
from guardd.core.money import format_json
from guardd.core.periods import Window, window_at
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.state import parse_iso

_UTC = ZoneInfo("UTC")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RemoteView:
    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store

    async def known_keys(self) -> list[KnownKey]:
        """Every OpenRouter key guardd has seen: the polled ones (preview, label) joined with the ``/keys`` list
        (name, label, hash) on their handle."""
        polled = await self.store.fetchall("SELECT key, max(label) FROM or_usage GROUP BY key")
        listed = await self.store.fetchall("SELECT hash, name, label FROM or_keys")
        return merge(
            [KnownKey(ref, label=label) for ref, label in polled],
            [KnownKey(ref_of(label, key_hash), name, label, key_hash) for key_hash, name, label in listed],
        )

    async def _keys(self, budget: Budget) -> list[str]:
        return [k.ref for k in matching(budget.match.get("key"), await self.known_keys())]

    async def spend(self, budget: Budget, window: Window, now: datetime) -> tuple[int, bool] | None:
        """OpenRouter's spend of ``budget``'s keys in ``window``: ``(spent, partial)``, None when no key matches.

        Per key: usage now minus usage at the window's start (exact). Without a snapshot at or before the start,
        OpenRouter's own UTC figure when its period is the window (exact), else the usage since the first snapshot
        in the window — raised to what OpenRouter's UTC day, week or month proves when that period began inside
        the window — and marked partial.
        """
        total, partial, found = 0, False, False
        for key in await self._keys(budget):
            latest = await self.store.fetchone(
                "SELECT at, usage, usage_daily, usage_weekly, usage_monthly FROM or_usage WHERE key = ?"
                " ORDER BY at DESC LIMIT 1",
                (key,),
            )
            if latest is None or latest[1] is None:
                continue
            found = True
            exact, bound = self._utc_figures(window, latest)
            base = await self.store.fetchone(
                "SELECT usage FROM or_usage WHERE key = ? AND at <= ? ORDER BY at DESC LIMIT 1",
                (key, _ms(window.start)),
            )
            if base is not None and base[0] is not None:
                total += max(0, latest[1] - base[0], bound)
            elif exact is not None:
                total += exact
            else:
                first = await self.store.fetchone(
                    "SELECT usage FROM or_usage WHERE key = ? AND at >= ? ORDER BY at LIMIT 1", (key, _ms(window.start))
                )
                since_first = latest[1] - (first[0] if first and first[0] is not None else latest[1])
                total += max(0, since_first, bound)
                partial = True
        return (total, partial) if found else None

    def _utc_figures(self, window: Window, latest: Any) -> tuple[int | None, int]:
        """From a snapshot's UTC daily/weekly/monthly usage: the window's exact spend when one of those periods is
        the window, and the largest figure whose period began inside the window (a lower bound of its spend)."""
        at = datetime.fromtimestamp(latest[0] / 1000, _UTC)
        exact: int | None = None
        bound = 0
        weekday = self.config.settings.guardd.weekday
        for kind, figure in zip(("daily", "weekly", "monthly"), latest[2:5], strict=True):
            if figure is None:
                continue
            period = window_at(kind, _UTC, at, 0)
            if period.start >= window.start and at < window.end:
                bound = max(bound, figure)
            if kind == window.name and period == window and (kind != "weekly" or weekday == 0):
                exact = figure
        return exact, bound

    async def staleness(self, now: datetime, budget: Budget | None = None) -> Staleness:
        """Whether OpenRouter's figures are stale at ``now``; for ``budget``, also whether its key pattern matches
        any key at all (a budget that matches none knows nothing: stale, never $0 and OK)."""
        source = await self._source_staleness(now)
        if source.stale or budget is None:
            return source
        if not await self._keys(budget):
            pattern = budget.match.get("key")
            what = f"key {pattern!r}" if pattern else "budget"
            return Staleness(True, None, f"matches no OpenRouter key (the {what} names none of the keys guardd knows)")
        return source

    async def _source_staleness(self, now: datetime) -> Staleness:
        row = await self.store.fetchone("SELECT ok_at, failing_since, error FROM sources WHERE name = 'openrouter'")
        limit = self.config.settings.guardd.stale_after
        if row is None:
            return Staleness(True, None, "OpenRouter has not been polled yet")
        ok_at, failing_since, error = parse_iso(row[0]), parse_iso(row[1]), row[2]
        if failing_since is not None and now - failing_since > limit:
            return Staleness(True, failing_since, error or "polling fails")
        if ok_at is not None and now - ok_at > limit + timedelta(seconds=1):
            return Staleness(True, ok_at, f"no successful poll since {ok_at.isoformat()}")
        if ok_at is None and failing_since is None:
            return Staleness(True, None, "OpenRouter has not been polled yet")
        return Staleness()

    async def status(self, now: datetime) -> dict[str, Any]:
        credits = await self.store.fetchone(
            "SELECT at, total_credits, total_usage FROM or_credits ORDER BY at DESC LIMIT 1"
        )
        stale = await self._source_staleness(now)
        keys = []
        for (key,) in await self.store.fetchall("SELECT DISTINCT key FROM or_usage ORDER BY key"):
            row = await self.store.fetchone(
                "SELECT at, usage_daily, lim, limit_remaining, disabled, usage_weekly, usage_monthly, usage"
                " FROM or_usage WHERE key = ? ORDER BY at DESC"
                " LIMIT 1",
                (key,),
            )
            if row:
                keys.append(
                    {
                        "key": key,
                        "usage_daily": _fmt(row[1]),
                        "limit": _fmt(row[2]),
                        "limit_remaining": _fmt(row[3]),
                        "disabled": bool(row[4]),
                        "usage_weekly": _fmt(row[5]),
                        "usage_monthly": _fmt(row[6]),
                        "usage_total": _fmt(row[7]),
                    }
                )
        fetched = await self.store.fetchone("SELECT ok_at, error FROM sources WHERE name = 'openrouter'")
        return {
            "balance": _fmt(credits[1] - credits[2]) if credits else None,
            "total_credits": _fmt(credits[1]) if credits else None,
            "total_usage": _fmt(credits[2]) if credits else None,
            "fetched_at": fetched[0] if fetched else None,
            "stale": stale.stale,
            "error": fetched[1] if fetched else None,
            "keys": keys,
        }


def unmatched_keys(budgets: list[Budget], known: list[KnownKey]) -> list[str]:
    """One warning per OpenRouter-sourced budget whose ``match.key`` matches none of the ``known`` keys (none
    known: nothing can be said offline, so no warning)."""
    if not known:
        return []
    names = ", ".join(k.name or k.label or k.ref for k in known)
    return [
        f"budgets[{i}].match.key: {b.match['key']!r} matches no OpenRouter key guardd knows ({names}); "
        "the budget will be stale"
        for i, b in enumerate(budgets)
        if b.source != "ledger" and "key" in b.match and not matching(b.match["key"], known)
    ]


def _fmt(value: int | None) -> str | None:
    return None if value is None else format_json(value)

"""OpenRouter's figures as budgets use them: spend in any window of the configured zone, staleness, status.

Spend in ``[start, end)`` is the usage now minus the usage of the last snapshot at or before ``start``. When the
snapshots begin after the window started, OpenRouter's own UTC daily/weekly/monthly figures are used where they
coincide with the window (UTC zone, weeks from Monday); otherwise the figure covers only part of the window and
says so (``partial``) — never zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guardd.adapters.state_store import parse_iso
from guardd.adapters.store import Store
from guardd.config import Config
from guardd.core.budgets import Budget
from guardd.core.evaluate import Staleness
from guardd.core.money import format_json
from guardd.core.periods import Window, window_at

_UTC = ZoneInfo("UTC")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RemoteView:
    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store

    async def _keys(self, budget: Budget) -> list[str]:
        from fnmatch import fnmatchcase

        rows = await self.store.fetchall("SELECT key, max(label) FROM or_usage GROUP BY key")
        pattern = budget.match.get("key")
        if pattern is None:
            return [k for k, _ in rows]
        return [k for k, label in rows if fnmatchcase(k, pattern) or (label and fnmatchcase(label, pattern))]

    async def spend(self, budget: Budget, window: Window, now: datetime) -> tuple[int, bool] | None:
        total, partial, found = 0, False, False
        column = {"daily": "usage_daily", "weekly": "usage_weekly", "monthly": "usage_monthly"}.get(window.name)
        settings = self.config.settings.guardd
        aligned = (
            column is not None
            and window_at(window.name, _UTC, now, 0) == window
            and (window.name != "weekly" or settings.weekday == 0)
        )
        for key in await self._keys(budget):
            latest = await self.store.fetchone(
                f"SELECT usage, {column or 'NULL'} FROM or_usage WHERE key = ? ORDER BY at DESC LIMIT 1", (key,)
            )
            if latest is None or latest[0] is None:
                continue
            found = True
            base = await self.store.fetchone(
                "SELECT usage FROM or_usage WHERE key = ? AND at <= ? ORDER BY at DESC LIMIT 1",
                (key, _ms(window.start)),
            )
            if base is not None and base[0] is not None:
                total += max(0, latest[0] - base[0])
            elif aligned and latest[1] is not None:
                total += latest[1]
            else:
                first = await self.store.fetchone(
                    "SELECT usage FROM or_usage WHERE key = ? AND at >= ? ORDER BY at LIMIT 1", (key, _ms(window.start))
                )
                total += max(0, latest[0] - (first[0] if first and first[0] is not None else latest[0]))
                partial = True
        return (total, partial) if found else None

    async def staleness(self, now: datetime) -> Staleness:
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
        stale = await self.staleness(now)
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


def _fmt(value: int | None) -> str | None:
    return None if value is None else format_json(value)

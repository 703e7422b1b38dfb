"""OpenRouter's figures as budgets use them: spend in any window of the configured zone, staleness, status.

Spend in ``[start, end)`` is the usage now minus the usage of the last snapshot at or before ``start``. When the
snapshots begin after the window started, OpenRouter's own UTC daily/weekly/monthly figures are used where they
coincide with the window (UTC zone, weeks from Monday); otherwise the figure covers only part of the window and
says so (``partial``) — never zero, and never below a UTC day, week or month that began inside the window.
A budget's keys are the ones its ``match.key`` names (:mod:`guardd.core.keys`); one that names none is stale.

A budget that names no key is the whole account's (contract §1). Only a management key lists every key of the
account; without one guardd knows the keys it polls and nothing else, so their sum is a lower bound of the
account's spend, and is said to be one (:func:`account_gap`), never shown as the account's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from guardd.config.view import ConfigView
from guardd.core.budgets import Budget
from guardd.core.evaluate import Staleness
from guardd.core.freshness import source_staleness
from guardd.core.keys import KnownKey, matching, merge, ref_of
from guardd.core.money import format_json
from guardd.core.periods import Window, window_at
from guardd.store.api import KeyUsage, ListedKey, RemoteAPI, StateAPI

_UTC = ZoneInfo("UTC")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RemoteView:
    def __init__(self, config: ConfigView, remote: RemoteAPI) -> None:
        self.config, self.remote = config, remote

    async def known_keys(self) -> list[KnownKey]:
        """Every OpenRouter key guardd has seen: the polled ones (preview, label) joined with the ``/keys`` list
        (name, label, hash) on their handle."""
        polled = await self.remote.polled_keys()
        listed = await self.remote.listed_keys()
        return merge(
            [KnownKey(ref, label=label) for ref, label in polled.items()],
            [KnownKey(ref_of(k.label, k.hash), k.name, k.label, k.hash) for k in listed],
        )

    async def _keys(self, budget: Budget) -> list[str]:
        return [k.ref for k in matching(budget.match.get("key"), await self.known_keys())]

    async def spend(self, budget: Budget, window: Window, now: datetime) -> tuple[int, str | None] | None:
        """OpenRouter's spend of ``budget``'s keys in ``window``: ``(spent, why)``, None when no key matches.

        ``why`` is None when ``spent`` is the whole spend, else why it is only a lower bound (``partial``): the
        account without a management key (:func:`account_gap`), or a key guardd has not watched since the window
        began. Per key: usage now minus usage at the window's start (exact). Without a snapshot at or before the
        start, OpenRouter's own UTC figure when its period is the window (exact), else the usage since the first
        snapshot in the window — raised to what OpenRouter's UTC day, week or month proves when that period
        began inside the window — and partial.
        """
        total, counted, why = 0, [], []
        for key in await self._keys(budget):
            snapshots = await self.remote.latest_usage(key)
            latest = snapshots[0] if snapshots else None
            if latest is None or latest.usage is None:
                continue
            counted.append(key)
            exact, bound = self._utc_figures(window, latest)
            base = await self.remote.usage_before(key, _ms(window.start))
            if base is not None:
                total += max(0, latest.usage - base, bound)
            elif exact is not None:
                total += exact
            else:
                first = await self.remote.usage_after(key, _ms(window.start))
                since_first = latest.usage - (first if first is not None else latest.usage)
                total += max(0, since_first, bound)
                why.append(_unwatched(key, window, latest))
        if not counted:
            return None
        account = account_gap(budget, self.config.has_management_key, counted)
        return total, "; ".join([account, *why] if account else why) or None

    def _utc_figures(self, window: Window, latest: KeyUsage) -> tuple[int | None, int]:
        """From a snapshot's UTC daily/weekly/monthly usage: the window's exact spend when one of those periods is
        the window, and the largest figure whose period began inside the window (a lower bound of its spend)."""
        at = datetime.fromtimestamp(latest.at / 1000, _UTC)
        exact: int | None = None
        bound = 0
        weekday = self.config.weekday
        for kind, figure in zip(
            ("daily", "weekly", "monthly"), (latest.usage_daily, latest.usage_weekly, latest.usage_monthly), strict=True
        ):
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
        any key at all (a budget that matches none knows nothing: stale, never $0 and OK).

        "Matches no key" is said only of keys guardd has fetched: before OpenRouter answered a poll (never
        reached, or every poll failed) nobody knows which keys exist, and the budget is stale for that reason.
        """
        source = await self._source_staleness(now)
        if source.stale or budget is None:
            return source
        if not await self._keys(budget):
            polled = await self.remote.source("openrouter")
            if polled is None or polled.ok_at is None or not await self.known_keys():
                why = f"OpenRouter has not answered a poll yet: {polled.error}" if polled and polled.error else None
                why = why or "no key has been fetched from OpenRouter yet"
                return Staleness(True, None, f"which OpenRouter keys exist is unknown ({why})")
            pattern = budget.match.get("key")
            what = f"key {pattern!r}" if pattern else "budget"
            return Staleness(True, None, f"matches no OpenRouter key (the {what} names none of the keys guardd knows)")
        return source

    async def _source_staleness(self, now: datetime) -> Staleness:
        """The ``openrouter`` source's staleness (:func:`guardd.core.freshness.source_staleness`): stale at once
        until a poll has succeeded."""
        source = await self.remote.source("openrouter")
        if source is None:
            return source_staleness("OpenRouter", None, None, None, now, self.config.stale_after, polled=False)
        return source_staleness(
            "OpenRouter", source.ok_at, source.failing_since, source.error, now, self.config.stale_after
        )

    async def status(self, now: datetime, state: StateAPI | None = None) -> dict[str, Any]:
        """The ``openrouter`` section of ``status --json``. A key's ``disabled`` is what guardd last knew of it —
        its own switch included, not only the last poll's snapshot; ``disabled_by_guardd`` says whose doing it
        is. With ``state``, ``key_warnings`` lists the keys that are not as the committed switch wants them
        (:func:`guardd.services.openrouter.keys.key_warnings`)."""
        credits = await self.remote.latest_credits()
        stale = await self._source_staleness(now)
        listed = await self.remote.listed_keys()
        switched = {ref_of(k.label, k.hash): k for k in listed}
        keys = [
            {
                "key": u.key,
                "usage_daily": _fmt(u.usage_daily),
                "limit": _fmt(u.limit),
                "limit_remaining": _fmt(u.limit_remaining),
                "disabled": switched[u.key].disabled if u.key in switched else u.disabled,
                "disabled_by_guardd": switched[u.key].disabled_by_guardd if u.key in switched else False,
                "usage_weekly": _fmt(u.usage_weekly),
                "usage_monthly": _fmt(u.usage_monthly),
                "usage_total": _fmt(u.usage),
            }
            for u in await self.remote.latest_usage()
        ]
        source = await self.remote.source("openrouter")
        ok_at = source.ok_at if source is not None else None
        fetched_at = ok_at.astimezone(self.config.zone).isoformat() if ok_at else None  # as every time in status
        return {
            "balance": _fmt(credits.balance) if credits else None,
            "total_credits": _fmt(credits.total_credits) if credits else None,
            "total_usage": _fmt(credits.total_usage) if credits else None,
            "fetched_at": fetched_at,
            "stale": stale.stale,
            "error": source.error if source else None,
            "keys": keys,
            "key_warnings": await _key_warnings(self.config, state, listed) if state is not None else [],
        }


async def _key_warnings(config: ConfigView, state: StateAPI, listed: list[ListedKey]) -> list[str]:
    from guardd.services.openrouter.keys import key_warnings, stored_errors

    return key_warnings(config, listed, await state.switch_doc(), await stored_errors(state))


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


def account_gap(budget: Budget, has_management_key: bool, counted: list[str]) -> str | None:
    """Why ``budget``'s OpenRouter figure is not the account's, or None: it names a key (``match.key``), or a
    management key lists the account's every key. ``counted``: the keys whose spend the figure holds."""
    if "key" in budget.match or has_management_key:
        return None
    keys = ", ".join(counted) or "none"
    what = f"the polled key {keys} is" if len(counted) == 1 else f"the polled keys {keys} are"
    return f"account-wide spend needs [openrouter] management_key: only {what} counted, not the account's others"


def account_warnings(budgets: list[Budget], has_management_key: bool, polled: list[str]) -> list[str]:
    """``config check``'s warning for each ``source = "openrouter"`` budget that reads the whole account but
    would count only the ``polled`` keys (:func:`account_gap`). A ``max`` budget is left out, as in ``check``:
    its ledger half covers the account's spend as far as the ledgers record it."""
    return [
        f"budgets[{i}]: {gap} (set management_key, or name the key in match.key to budget that key alone)"
        for i, b in enumerate(budgets)
        if b.source == "openrouter" and (gap := account_gap(b, has_management_key, polled)) is not None
    ]


def _unwatched(key: str, window: Window, latest: KeyUsage) -> str:
    """Why ``key``'s spend in ``window`` is a lower bound when guardd has no reading of it from before the window
    began: OpenRouter's answer has no figure for the window's period, or its figure covers another period."""
    part = f"guardd has no reading of key {key} from before this window began"
    figures = {"daily": latest.usage_daily, "weekly": latest.usage_weekly, "monthly": latest.usage_monthly}
    if window.name not in figures:  # rolling: OpenRouter has no figure for a sliding window
        return part
    if figures[window.name] is None:
        return f"{part}, and OpenRouter's answer has no usage_{window.name} figure"
    period = {"daily": "UTC day", "weekly": "UTC week from Monday", "monthly": "UTC month"}[window.name]
    return f"{part}, and OpenRouter's usage_{window.name} covers the {period}, not this window"


def _fmt(value: int | None) -> str | None:
    return None if value is None else format_json(value)

"""Read side of budgets: the spend of every window of every budget, from the store, evaluated by the core.

Read-only (``guardd status`` and ``check`` use it as they are); :mod:`guardd.services.jobs` adds the writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from guardd.config.view import ConfigView
from guardd.core.budgets import Budget, Dimensions, Matcher
from guardd.core.evaluate import BudgetEvaluation, Staleness, WindowSpend, evaluate
from guardd.core.forecast import lookback_start, project
from guardd.core.hours import HOUR_MS
from guardd.core.keys import KnownKey
from guardd.core.money import at_percent
from guardd.core.periods import Window, rolling_window, window_at
from guardd.core.rolling import crossing, from_ms, leaves_at, must_leave
from guardd.store.api import EventsAPI, RequestStatsAPI, Sum

if TYPE_CHECKING:
    from guardd.core.never_matched import MatchGap

RemoteSpend = Callable[[Budget, Window, datetime], Awaitable[tuple[int, str | None] | None]]
"""OpenRouter's spend for a budget in a window: ``(spent, why)`` — ``why`` None when that is the whole spend, else
why it is a lower bound — or None when it cannot say."""
RemoteStale = Callable[[datetime, Budget], Awaitable[Staleness]]
"""Whether OpenRouter's figures for a budget are stale (failing polls, or keys the budget matches: none)."""
KnownKeys = Callable[[], Awaitable[list[KnownKey]]]


Sums = dict[tuple[datetime, datetime], dict[int, Sum]]
"""Per-series sums of the ranges one evaluation pass has read; owned by that pass and never shared."""


class Evaluator:
    """Computes every window's spend of a budget from committed events and evaluates it with the core.

    Safe to call concurrently: the only state it keeps between calls is the series table and the budget matches
    (replaced whole by :meth:`refresh_series`); the sums one pass reuses live in that pass alone.
    """

    def __init__(
        self,
        config: ConfigView,
        events: EventsAPI,
        stats: RequestStatsAPI,
        remote_spend: RemoteSpend | None = None,
        remote_staleness: RemoteStale | None = None,
        known_keys: KnownKeys | None = None,
    ) -> None:
        self.config = config
        self.events = events
        self.stats = stats
        """What events say beyond their cost (health facts, token sums), for health rules and advice."""
        self.remote_spend = remote_spend
        self.remote_staleness = remote_staleness
        self.known_keys = known_keys
        self.series: dict[int, Dimensions] = {}
        self._keys: list[KnownKey] = []
        self._matches: dict[str, list[int]] = {}

    async def refresh_series(self) -> None:
        """Reload the series table and the known keys; every budget is matched again on its next use.

        One row per distinct dimension set — one per conversation with a ``session`` label, so matching is left
        to the budgets a command evaluates (``report`` evaluates none)."""
        series = await self.events.load_series()
        keys = await self.known_keys() if self.known_keys is not None else []
        self.series, self._keys, self._matches = series, keys, {}

    def series_of(self, budget: Budget) -> list[int] | None:
        """Series ids a budget matches (None = all spend, so no filter is needed); matched on first use after
        :meth:`refresh_series`, against the series and keys it loaded."""
        if not budget.match:
            return None
        matched = self._matches.get(budget.name)
        if matched is None:
            configured = self.config.budget(budget.name)
            if configured is None:
                return []  # not a budget of this configuration: it matches nothing
            matcher = Matcher(configured.match, self._keys)
            matched = sorted(sid for sid, dims in self.series.items() if matcher.matches(dims))
            self._matches[budget.name] = matched
        return matched

    def never_matched(self, budget: Budget) -> MatchGap | None:
        """Why ``budget``'s match selects none of the series ever stored (:mod:`guardd.core.never_matched`), or
        None: it selects one, there is none yet, or the budget reads only OpenRouter (whose keys
        :func:`guardd.services.openrouter.view.unmatched_keys` and its staleness check). Computed from the
        series already loaded, and only for a budget that matched none of them (one more pass over them)."""
        if not budget.match or self.series_of(budget):
            return None
        from guardd.core.never_matched import never_matched  # here: only a budget that matched nothing needs it

        return never_matched(budget.match, list(self.series.values()), self._keys, budget.source)

    def gaps(self, budgets: list[Budget] | None = None) -> dict[str, MatchGap | None]:
        """:meth:`never_matched` by budget name, for ``budgets`` (default: every budget)."""
        return {b.name: self.never_matched(b) for b in (budgets if budgets is not None else self.config.budgets)}

    def budgets_touching(self, series: set[int]) -> list[Budget]:
        """Budgets whose spend includes any of ``series`` (to re-evaluate after new events)."""
        out = []
        for budget in self.config.budgets:
            matched = self.series_of(budget)
            if matched is None or series.intersection(matched):
                out.append(budget)
        return out

    async def evaluate(self, budget: Budget, now: datetime, sums: Sums | None = None) -> BudgetEvaluation:
        """Evaluate ``budget`` at ``now``; ``sums`` (when given) caches range sums across one pass's budgets."""
        spends: list[WindowSpend] = []
        series = self.series_of(budget)
        for kind, limit in budget.calendar_limits():
            window = window_at(kind, self.config.zone, now, self.config.weekday)
            spends.append(await self._spend(budget, series, window, limit, now, budget.forecast, sums))
        for rolling in budget.rolling:
            window = rolling_window(rolling.window, now)
            spends.append(await self._spend(budget, series, window, rolling.limit, now, False, sums))
        staleness = Staleness()
        if budget.source != "ledger" and self.remote_staleness is not None:
            staleness = await self.remote_staleness(now, budget)
        spike = None
        if budget.spike is not None:  # from the ledgers, whatever the budget's source
            from guardd.core.spike import evaluate_spike  # here: only a budget with a spike rule needs it

            (r0, r1), (b0, b1) = budget.spike.ranges(now)
            recent, baseline = await self._sum(sums, series, r0, r1), await self._sum(sums, series, b0, b1)
            spike = evaluate_spike(budget.spike, recent.cost, baseline.cost)
        return evaluate(budget, spends, now, staleness, spike)

    async def evaluate_all(self, now: datetime, only: list[Budget] | None = None) -> list[BudgetEvaluation]:
        """Evaluate ``only`` (default: every budget) at ``now``.

        All budgets share the same window instants and differ only in the series they match, so within one
        call each distinct range is summed once, per series, and every budget adds up its own series from that.
        """
        sums: Sums = {}
        return [await self.evaluate(b, now, sums) for b in (only if only is not None else self.config.budgets)]

    async def _sum(self, sums: Sums | None, series: list[int] | None, start: datetime, end: datetime) -> Sum:
        if sums is None:
            return await self.events.window_sum(series, start, end)
        per_series = sums.get((start, end))
        if per_series is None:
            per_series = await self.events.grouped_sums(None, start, end)
            sums[(start, end)] = per_series
        if series is None:
            return Sum.total(per_series.values())
        return Sum.total(per_series[s] for s in series if s in per_series)

    async def _spend(
        self,
        budget: Budget,
        series: list[int] | None,
        window: Window,
        limit: int,
        now: datetime,
        forecast: bool,
        sums: Sums | None,
    ) -> WindowSpend:
        # The whole window, not just up to `now`: an event stamped a moment ahead by a client's clock counts.
        # OpenRouter's figure unknown: None for `openrouter` (never $0), the ledger's as a lower bound for `max`.
        spent: int | None = None
        unknown: tuple[str, ...] = ()
        unpriced = 0
        partial_why: str | None = None  # why OpenRouter's figure is only a lower bound
        if budget.source in ("ledger", "max"):
            total = await self._sum(sums, series, window.start, window.end)
            spent, unpriced = total.cost, total.unpriced
        if budget.source in ("openrouter", "max"):
            remote = await self.remote_spend(budget, window, now) if self.remote_spend else None
            if remote is None:
                unknown = ("openrouter",)
            else:
                remote_spent, why = remote
                partial_why = why if budget.source == "openrouter" else None  # max: the ledger covers the window
                spent = remote_spent if spent is None else max(spent, remote_spent)
        projection = None
        if forecast and budget.source != "openrouter" and spent is not None:
            start = lookback_start(window, now)
            recent = await self._sum(sums, series, start, now)
            projection = project(window, now, spent, recent.cost, recent.events, limit)
        releases_at = None
        trip = at_percent(limit, budget.trip_at) if budget.trip_at is not None else None
        if (
            budget.source == "ledger"
            and window.resets is None
            and trip is not None
            and spent is not None
            and spent >= trip
        ):
            releases_at = await self._release(series, window, must_leave(spent, trip))
        partial = partial_why is not None
        return WindowSpend(window, limit, spent, unpriced, projection, partial, releases_at, unknown, partial_why)

    async def _release(self, series: list[int] | None, window: Window, need: int) -> datetime | None:
        """When ``need`` of a tripped rolling window's spend will have left it (:mod:`guardd.core.rolling`): the
        window's spend read as steps, oldest first, then the bucket where enough has left read again in finer
        steps (hours, then event times), so a month-long window costs a few rollup rows and one hour of events.
        None when the steps do not hold ``need`` (events stored between the two reads): not known, not guessed."""
        start, end, grain = window.start, window.end, "day"
        while True:
            found = crossing(await self.events.spend_steps(series, start, end, grain), need)
            if found is None:
                return None
            if found.exact or grain == "raw":
                return leaves_at(found.last_ms, window.length)
            start, end = from_ms(found.first_ms), from_ms(found.last_ms + 1)
            grain, need = "hour" if found.last_ms - found.first_ms >= HOUR_MS else "raw", found.need

    async def top_spend(self, budget: Budget, window: Window, now: datetime, n: int = 3) -> list[tuple[str, int]]:
        """Return the ``n`` models/keys with the most spend in ``window`` for ``budget``."""
        sums = await self.events.grouped_sums(self.series_of(budget), window.start, window.end)
        by_name: dict[str, int] = {}
        for sid, total in sums.items():
            dims = self.series.get(sid)
            if dims is None:
                continue
            name = dims.model + (f" (key {dims.key})" if dims.key else "")
            by_name[name] = by_name.get(name, 0) + total.cost
        return sorted(by_name.items(), key=lambda kv: -kv[1])[:n]

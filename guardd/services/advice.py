"""Advice against the store: a budget's spend per model and its tokens, priced on the budget's ``suggest`` models
with the OpenRouter catalog the poller stored (contract §11). Read-only; used by ``guardd advise`` and by the
messages of budgets that have ``suggest``."""

from __future__ import annotations

from datetime import datetime

from guardd.core.advice import AdviceRow, ModelUsage, advice_line, advise
from guardd.core.budgets import Budget
from guardd.core.pricing import ModelPrice, model_price
from guardd.services.evaluation import Evaluator
from guardd.store.api import RequestStatsAPI


async def usage_by_model(
    evaluator: Evaluator, stats: RequestStatsAPI, budget: Budget, start: datetime, end: datetime
) -> list[ModelUsage]:
    """Return the budget's spend and tokens per model over the whole UTC hours ``[start, end)`` touches."""
    wanted = evaluator.series_of(budget)
    totals: dict[str, list[int]] = {}
    for sid, t in (await stats.token_sums(start, end)).items():
        dims = evaluator.series.get(sid)
        if dims is None or (wanted is not None and sid not in wanted):
            continue
        entry = totals.setdefault(dims.model, [0] * 7)
        for i, value in enumerate((t.cost, t.events, t.unpriced, t.prompt, t.completion, t.reasoning, t.cached)):
            entry[i] += value
    return [ModelUsage(model, *values) for model, values in totals.items() if values[1]]


async def catalog(stats: RequestStatsAPI, models: tuple[str, ...]) -> dict[str, ModelPrice | None]:
    """Return the catalog price of each of ``models`` (None: not in the catalog, or not priceable)."""
    pricing = await stats.catalog()
    return {m: model_price(pricing[m]) if isinstance(pricing.get(m), dict) else None for m in models}


async def budget_advice(
    evaluator: Evaluator, stats: RequestStatsAPI, budget: Budget, start: datetime, end: datetime
) -> list[AdviceRow]:
    """Return the advice table of ``budget`` over ``[start, end)``: every model it used, most spent first."""
    usages = await usage_by_model(evaluator, stats, budget, start, end)
    return advise(usages, budget.suggest, await catalog(stats, budget.suggest))


async def top_line(
    evaluator: Evaluator, stats: RequestStatsAPI, budget: Budget, start: datetime, end: datetime
) -> str | None:
    """The one advice line for the model that spent most in ``[start, end)``, or None (no ``suggest``, no spend)."""
    if not budget.suggest:
        return None
    rows = await budget_advice(evaluator, stats, budget, start, end)
    return advice_line(rows[0]) if rows and rows[0].usage.spent > 0 else None

"""Advice (contract §11 ``budgets[].suggest``): what the same tokens would have cost on cheaper models.

Prices come from the OpenRouter catalog (per-token pico-dollars, :class:`~guardd.core.pricing.ModelPrice`).
Token accounting follows OpenRouter's usage object, as pricing does: cached tokens are part of the prompt tokens
and are priced at the catalog's cache-read price where it has one; reasoning tokens are part of the completion
tokens and are priced as completion. A request price counts once per event; a catalog discount applies as in
pricing. A suggested model the catalog does not price is **unpriced** — its cost and saving are unknown, never $0.
Everything is exact: integer pico-dollars, the discount rounded half-to-even. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from guardd.core.money import Money, format_human
from guardd.core.pricing import ModelPrice


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """A model's spend and token counts over a range."""

    model: str
    spent: Money
    events: int = 0
    unpriced: int = 0
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    cached: int = 0


@dataclass(frozen=True, slots=True)
class Alternative:
    """The same usage on another model. ``cost``/``saving`` None (and ``unpriced``) when it cannot be priced."""

    model: str
    cost: Money | None
    saving: Money | None
    saving_percent: float | None
    unpriced: bool


@dataclass(frozen=True, slots=True)
class AdviceRow:
    usage: ModelUsage
    alternatives: tuple[Alternative, ...]


def cost_on(usage: ModelUsage, price: ModelPrice) -> Money:
    """Return what ``usage`` would cost at ``price``, exactly."""
    cached = min(usage.cached, usage.prompt)
    cache_rate = price.input_cache_read if price.input_cache_read is not None else price.prompt
    total = (
        (usage.prompt - cached) * price.prompt
        + cached * cache_rate
        + usage.completion * price.completion
        + usage.events * price.request
    )
    if price.discount:
        total = int((Decimal(total) * (1 - price.discount)).to_integral_value(ROUND_HALF_EVEN))
    return total


def alternative(usage: ModelUsage, model: str, price: ModelPrice | None) -> Alternative:
    """``usage`` priced on ``model`` (``price`` None: not in the catalog, or no usable price there)."""
    if price is None:
        return Alternative(model, None, None, None, True)
    cost = cost_on(usage, price)
    saving = usage.spent - cost
    percent = None
    if usage.spent:
        percent = float((Decimal(saving) * 100 / Decimal(usage.spent)).quantize(Decimal("0.1"), ROUND_HALF_EVEN))
    return Alternative(model, cost, saving, percent, False)


def advise(
    usages: list[ModelUsage], suggest: tuple[str, ...], catalog: dict[str, ModelPrice | None]
) -> list[AdviceRow]:
    """Return one row per used model (most spent first), each priced on every suggested model."""
    rows = [
        AdviceRow(u, tuple(alternative(u, model, catalog.get(model)) for model in suggest))
        for u in sorted(usages, key=lambda u: (-u.spent, u.model))
    ]
    return rows


def advice_line(row: AdviceRow) -> str:
    """One line for messages: ``anthropic/claude-sonnet-4: $4.80; on anthropic/claude-3.5-haiku $0.41 (-91%)``."""
    parts = [f"{row.usage.model}: {format_human(row.usage.spent)}"]
    for alt in row.alternatives:
        if alt.unpriced or alt.cost is None:
            parts.append(f"on {alt.model} unpriced (not in the OpenRouter catalog)")
        elif alt.saving_percent is None:
            parts.append(f"on {alt.model} {format_human(alt.cost)}")
        else:
            parts.append(f"on {alt.model} {format_human(alt.cost)} ({-alt.saving_percent:+.0f}%)")
    return "; ".join(parts)

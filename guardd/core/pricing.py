"""Pricing a usage event from the OpenRouter model catalog when its ledger line carried no cost.

Catalog prices are USD per token (``request`` per request) as decimal strings; ``"-1"`` (variable-price routers
such as ``openrouter/auto``) or a missing ``prompt``/``completion`` price means the model cannot be priced, and the
event stays **unpriced** rather than becoming $0. Token accounting follows OpenRouter's usage object: cached
tokens are part of the prompt tokens and reasoning tokens are part of the completion tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from guardd.core.money import Money, MoneyError, parse_money
from guardd.core.usage import UsageEvent


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Per-token prices in pico-dollars; None where the catalog gives none."""

    prompt: Money
    completion: Money
    request: Money = 0
    input_cache_read: Money | None = None
    internal_reasoning: Money | None = None
    discount: Decimal = Decimal(0)


def _price(value: object) -> Money | None:
    if value is None:
        return None
    try:
        amount = parse_money(value)
    except MoneyError:
        return None
    return None if amount < 0 else amount


def model_price(pricing: dict[str, object]) -> ModelPrice | None:
    """Return the prices of one catalog entry's ``pricing`` object, or None when the model cannot be priced."""
    prompt, completion = _price(pricing.get("prompt")), _price(pricing.get("completion"))
    if prompt is None or completion is None:
        return None
    try:
        discount = Decimal(str(pricing.get("discount") or 0))
    except InvalidOperation:
        discount = Decimal(0)
    if not discount.is_finite() or not 0 <= discount < 1:
        discount = Decimal(0)
    return ModelPrice(
        prompt=prompt,
        completion=completion,
        request=_price(pricing.get("request")) or 0,
        input_cache_read=_price(pricing.get("input_cache_read")),
        internal_reasoning=_price(pricing.get("internal_reasoning")),
        discount=discount,
    )


def price_event(event: UsageEvent, price: ModelPrice) -> Money:
    """Return what ``event`` cost at ``price`` (exact in pico-dollars, the discount rounded half-to-even)."""
    cached = min(event.cached_tokens, event.prompt_tokens)
    reasoning = min(event.reasoning_tokens, event.completion_tokens)
    cache_rate = price.input_cache_read if price.input_cache_read is not None else price.prompt
    reasoning_rate = price.internal_reasoning if price.internal_reasoning is not None else price.completion
    total = (
        (event.prompt_tokens - cached) * price.prompt
        + cached * cache_rate
        + (event.completion_tokens - reasoning) * price.completion
        + reasoning * reasoning_rate
        + price.request
    )
    if price.discount:
        total = int((Decimal(total) * (1 - price.discount)).to_integral_value())
    return total

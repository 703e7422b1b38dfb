"""Advice (contract §11): usage priced on suggested models with the stand-in's catalog, exactly."""

from __future__ import annotations

from decimal import Decimal

from guardd.core.advice import ModelUsage, advice_line, advise, cost_on
from guardd.core.money import parse_money, to_decimal
from guardd.core.pricing import model_price
from tests.support.fake_openrouter import DEFAULT_MODELS

CATALOG = {m["id"]: model_price(m["pricing"]) for m in DEFAULT_MODELS}  # type: ignore[arg-type]
SONNET = ModelUsage(
    "anthropic/claude-3.5-sonnet",
    spent=parse_money("4.80"),
    events=10,
    prompt=1_000_000,
    completion=100_000,
    reasoning=10_000,
    cached=200_000,
)


def test_cached_prompt_tokens_are_priced_at_the_cache_read_price_and_reasoning_as_completion():
    price = CATALOG["anthropic/claude-3.5-sonnet"]
    assert price is not None
    # 800k x $0.000003 + 200k x $0.0000003 + 100k (reasoning included) x $0.000015
    assert to_decimal(cost_on(SONNET, price)) == Decimal("2.4") + Decimal("0.06") + Decimal("1.5")


def test_without_a_cache_price_cached_tokens_cost_the_prompt_price():
    price = CATALOG["openai/gpt-4o-mini"]
    assert price is not None
    assert to_decimal(cost_on(SONNET, price)) == Decimal("0.15") + Decimal("0.06")


def test_the_saving_and_its_percent_are_exact():
    (row,) = advise([SONNET], ("openai/gpt-4o-mini",), CATALOG)
    (alt,) = row.alternatives
    assert (to_decimal(alt.cost), to_decimal(alt.saving)) == (Decimal("0.21"), Decimal("4.59"))
    assert alt.saving_percent == 95.6 and not alt.unpriced  # 95.625 rounded half-even


def test_a_model_missing_from_the_catalog_is_unpriced_never_zero():
    (row,) = advise([SONNET], ("moonshotai/kimi-k2", "openrouter/auto"), CATALOG)
    for alt in row.alternatives:
        assert (alt.cost, alt.saving, alt.saving_percent, alt.unpriced) == (None, None, None, True)


def test_rows_are_most_spent_first_and_the_line_names_each_alternative():
    small = ModelUsage("openai/gpt-4o-mini", spent=parse_money("0.01"), events=1, prompt=10, completion=10)
    rows = advise([small, SONNET], ("openai/gpt-4o-mini", "moonshotai/kimi-k2"), CATALOG)
    assert [r.usage.model for r in rows] == ["anthropic/claude-3.5-sonnet", "openai/gpt-4o-mini"]
    assert advice_line(rows[0]) == (
        "anthropic/claude-3.5-sonnet: $4.80; on openai/gpt-4o-mini $0.21 (-96%);"
        " on moonshotai/kimi-k2 unpriced (not in the OpenRouter catalog)"
    )


def test_a_request_price_counts_once_per_event_and_a_discount_applies():
    price = model_price({"prompt": "0.000001", "completion": "0.000002", "request": "0.001", "discount": 0.5})
    assert price is not None
    usage = ModelUsage("m", spent=parse_money(1), events=3, prompt=1000, completion=500)
    # (1000 x 0.000001 + 500 x 0.000002 + 3 x 0.001) x 0.5 = (0.001 + 0.001 + 0.003) / 2
    assert to_decimal(cost_on(usage, price)) == Decimal("0.0025")

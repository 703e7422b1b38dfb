from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardd.core.money import (
    UNITS_PER_USD,
    MoneyError,
    format_human,
    format_json,
    format_perf,
    parse_money,
    percent,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5 * UNITS_PER_USD),
        ("0.00123", 1_230_000_000),
        (Decimal("0.1015644762"), 101_564_476_200),
        (3, 3 * UNITS_PER_USD),
        ("1e-5", 10_000_000),
        (0.1, UNITS_PER_USD // 10),
    ],
    ids=["string", "small", "ten-decimals", "int", "exponent", "float-repr"],
)
def test_parse_money_is_exact(value, expected):
    assert parse_money(value) == expected


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", True, None, [1]])
def test_parse_money_rejects_what_is_not_an_amount(bad):
    with pytest.raises(MoneyError):
        parse_money(bad)


def test_a_million_micro_dollars_make_exactly_one_dollar():
    micro = parse_money("0.000001")
    assert format_json(sum(micro for _ in range(1_000_000))) == "1.00"


@given(st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False))
def test_json_format_round_trips_every_amount(amount):
    assert parse_money(format_json(parse_money(amount))) == parse_money(amount)


def test_human_format_keeps_small_amounts_readable():
    assert format_human(parse_money("1234.5")) == "$1,234.50"
    assert format_human(parse_money("0.00123")) == "$0.00123"
    assert format_human(parse_money("0.00123456")) == "$0.001235"


def test_perfdata_money_has_at_most_six_places():
    assert format_perf(parse_money("0.0000001234567")) == "0"
    assert format_perf(parse_money("1.2345675")) == "1.234568"
    assert format_perf(parse_money("5.00")) == "5"


def test_percent_of_the_limit_is_exact_at_the_limit():
    assert percent(parse_money("5.00"), parse_money("5")) == 100.0

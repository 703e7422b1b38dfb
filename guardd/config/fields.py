"""The value types of the configuration's keys: money, durations, percentages, names — each a pydantic
annotated type that parses the forms contract §1 allows and says in one line what is wrong otherwise."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from guardd.core.money import Money, MoneyError, format_json, parse_money
from guardd.core.periods import format_duration, parse_duration

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _money(value: Any) -> Money:
    try:
        return parse_money(value)
    except MoneyError as exc:
        raise ValueError(f'{exc} (give USD as a number or a decimal string such as "5.00")') from None


def _positive_money(value: Any) -> Money:
    amount = _money(value)
    if amount <= 0:
        raise ValueError("must be greater than 0")
    return amount


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    return parse_duration(value)


def _positive_duration(value: Any) -> timedelta:
    delta = _duration(value)
    if delta <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return delta


PositiveMoney = Annotated[int, BeforeValidator(_positive_money), PlainSerializer(format_json, return_type=str)]
AnyMoney = Annotated[int, BeforeValidator(_money), PlainSerializer(format_json, return_type=str)]
Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_positive_duration), PlainSerializer(format_duration, return_type=str)
]
Percent = Annotated[float, Field(gt=0, le=1000)]


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} may contain only letters, digits, '-' and '_'")
    return value


Name = Annotated[str, AfterValidator(_name)]
"""A budget's or a health rule's name: it becomes a scope, a metric label and a CLI argument."""


def _some_tags(value: list[str]) -> list[str]:
    if not value:
        raise ValueError(
            "an empty list sends these alerts to no notifier: leave `notify` out to notify every notifier,"
            " or name the tags of the notifiers that should hear"
        )
    return value


NotifyTags = Annotated[list[str], AfterValidator(_some_tags)]
"""A budget's or a health rule's ``notify``: absent means every notifier (contract §1); an empty list would mean
none, so its alerts would go nowhere in silence — a reference that leads nowhere, hence a configuration error."""

"""Budgets as the core sees them, and matching a budget against the dimensions of spend.

A budget's ``match`` maps a dimension (``model``, ``key``, ``provider`` or any label name) to a glob; every
entry must match, and an empty match takes all spend. A dimension the spend does not carry never matches a
pattern other than ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import translate
from typing import TYPE_CHECKING

from guardd.core.keys import KnownKey, key_matches, resolve
from guardd.core.money import Money

if TYPE_CHECKING:  # a spike's rule and maths only when a budget has one (pickle imports it then)
    from guardd.core.spike import Spike

SOURCES = ("ledger", "openrouter", "max")
BUILTIN_DIMENSIONS = ("model", "key", "provider")


@dataclass(frozen=True, slots=True)
class RollingLimit:
    """A burn-rate cap: at most ``limit`` over any sliding ``window``."""

    window: timedelta
    limit: Money


@dataclass(frozen=True, slots=True)
class Budget:
    """A named limit on a slice of spend (contract §1 ``[[budgets]]``)."""

    name: str
    match: dict[str, str] = field(default_factory=dict)
    source: str = "ledger"
    daily: Money | None = None
    weekly: Money | None = None
    monthly: Money | None = None
    rolling: tuple[RollingLimit, ...] = ()
    warn_at: tuple[float, ...] = (80.0,)
    trip_at: float | None = 100.0
    forecast: bool = True
    notify: tuple[str, ...] | None = None
    on_stale: str = "open"
    spike: Spike | None = None
    suggest: tuple[str, ...] = ()

    def calendar_limits(self) -> list[tuple[str, Money]]:
        """Return ``(kind, limit)`` for every calendar window the budget sets, shortest first."""
        pairs = (("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))
        return [(kind, limit) for kind, limit in pairs if limit is not None]


@dataclass(frozen=True, slots=True)
class Dimensions:
    """What a slice of spend is: its model, key, provider and labels."""

    model: str
    key: str | None = None
    provider: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        if name == "model":
            return self.model
        if name == "key":
            return self.key
        if name == "provider":
            return self.provider
        return dict(self.labels).get(name)


class Matcher:
    """A compiled ``match`` table. ``Matcher({}).matches(d)`` is always True.

    The ``key`` entry is matched by :func:`guardd.core.keys.key_matches` against every name the spend's key is
    known by (``keys``: the OpenRouter keys guardd knows), so ``key = "prod*"`` takes a ledger line that names
    the key by its preview ``…1c96`` as well as one that names it ``prod-api``.
    """

    __slots__ = ("_key", "_keys", "_rules")

    def __init__(self, match: dict[str, str], keys: Sequence[KnownKey] = ()) -> None:
        self._key = match.get("key")
        self._keys = tuple(keys)
        self._rules = [
            (name, re.compile(translate(pattern))) for name, pattern in sorted(match.items()) if name != "key"
        ]

    def matches(self, dims: Dimensions) -> bool:
        if self._key is not None:
            if dims.key is None:
                if self._key != "*":
                    return False
            elif not key_matches(self._key, resolve(dims.key, self._keys)):
                return False
        for name, pattern in self._rules:
            value = dims.get(name)
            if value is None:
                if pattern.pattern != translate("*"):
                    return False
                continue
            if not pattern.match(value):
                return False
        return True


def matches(match: dict[str, str], dims: Dimensions) -> bool:
    """Return True when every entry of ``match`` matches ``dims`` (glob, case-sensitive)."""
    return Matcher(match).matches(dims)

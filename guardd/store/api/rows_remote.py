"""Rows of what guardd stored of OpenRouter (:class:`~guardd.store.api.RemoteAPI`): key usage snapshots, credits,
the ``/keys`` list and how polling stands. Imported only where a store builds them or a service uses them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One OpenRouter key's figures at one poll (``/key`` of a polled secret, or its ``/keys`` entry): money in
    pico-dollars, None where OpenRouter gave none. ``key`` is the handle (:func:`guardd.core.keys.ref_of`), never
    the secret; ``at`` is Unix ms."""

    at: int
    key: str
    label: str | None = None
    usage: int | None = None
    usage_daily: int | None = None
    usage_weekly: int | None = None
    usage_monthly: int | None = None
    limit: int | None = None
    limit_remaining: int | None = None
    limit_reset: str | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Credits:
    """The account's credits at one poll (``/credits``, management key): pico-dollars; ``at`` is Unix ms."""

    at: int
    total_credits: int
    total_usage: int

    @property
    def balance(self) -> int:
        return self.total_credits - self.total_usage


@dataclass(frozen=True, slots=True)
class ListedKey:
    """An entry of OpenRouter's ``/keys`` list as guardd last stored it (or recorded switching it).
    ``disabled_by_guardd``: guardd disabled it (so guardd may re-enable it)."""

    hash: str
    name: str | None = None
    label: str | None = None
    disabled: bool = False
    disabled_by_guardd: bool = False
    usage_daily: int | None = None
    limit: int | None = None
    limit_remaining: int | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """How polling a source (``openrouter``) stands: the last success, since when it fails, the last error and
    whether every failure was permanent (a rejected key)."""

    ok_at: datetime | None
    failing_since: datetime | None
    error: str | None
    permanent: bool

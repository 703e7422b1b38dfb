"""OpenRouter keys and the one rule that matches a budget's ``match.key`` against them.

A key is known by several names (contract §1): its **name** and 64-hex **hash** (only the management ``/keys``
list has them), its **label** (OpenRouter's masked form ``sk-or-v1-0e6...1c96``, from ``/key`` and ``/keys``) and
its **preview** (``…1c96``, the redacted form guardd stores and ledgers carry). :func:`key_matches` is the only
place a ``match.key`` glob is compared with a key: ledger events (their ``key`` resolved to the key it names),
OpenRouter spend and the key switch all use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

_MASKED = re.compile(r"^sk-or-[A-Za-z0-9-]*\.\.\.([A-Za-z0-9]{4})$")


@dataclass(frozen=True, slots=True)
class KnownKey:
    """An OpenRouter key and every name it is known by. ``ref`` is guardd's handle for its usage snapshots."""

    ref: str
    name: str | None = None
    label: str | None = None
    hash: str | None = None

    def aliases(self) -> tuple[str, ...]:
        return tuple(v for v in (self.ref, self.name, self.label, self.hash) if v)


def ref_of(label: str | None, key_hash: str | None) -> str:
    """guardd's handle for a key listed by ``/keys``: the preview its masked label ends in (``…1c96``, the same
    handle as the configured secret's), else ``#`` and the start of its hash."""
    masked = _MASKED.match(label or "")
    if masked:
        return f"…{masked.group(1)}"
    return f"#{(key_hash or '?')[:12]}"


def key_matches(pattern: str | None, key: KnownKey) -> bool:
    """Return True when the glob ``pattern`` (None: every key) matches any name ``key`` is known by."""
    if pattern is None:
        return True
    return any(fnmatchcase(alias, pattern) for alias in key.aliases())


def matching(pattern: str | None, keys: Iterable[KnownKey]) -> list[KnownKey]:
    """The keys ``pattern`` matches."""
    return [k for k in keys if key_matches(pattern, k)]


def resolve(value: str, keys: Iterable[KnownKey]) -> KnownKey:
    """The key a ledger line's ``key`` (a name, label, hash or preview) names; a key of its own when unknown."""
    for key in keys:
        if value in key.aliases():
            return key
    return KnownKey(ref=value)


def merge(configured: Iterable[KnownKey], listed: Iterable[KnownKey]) -> list[KnownKey]:
    """Join the keys polled with ``/key`` (ref and label) with the ``/keys`` list (name, label, hash) on their
    handle, so that a configured key is also known by its name and hash."""
    by_ref: dict[str, KnownKey] = {k.ref: k for k in configured}
    for key in listed:
        known = by_ref.get(key.ref)
        if known is None:
            by_ref[key.ref] = key
        else:
            by_ref[key.ref] = KnownKey(
                known.ref, key.name or known.name, known.label or key.label, key.hash or known.hash
            )
    return sorted(by_ref.values(), key=lambda k: k.ref)

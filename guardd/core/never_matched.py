"""A budget's ``match`` that selects none of the series ever stored: what part of it matched nothing.

A typo in a match (``teem = "search"`` for ``team``, ``model = "anthropc/*"``) makes a ledger budget $0 and OK
forever, with nothing said (review finding F7; contract §1: "a reference that leads nowhere is an error too").
The store's series table holds every (model, key, provider, labels) combination any event ever carried, so once
one exists guardd can tell a match that never selected anything — over all stored series, not the budget's
window: a budget that simply spent nothing today is not this.

How strong the signal is, and so what ``guardd check`` makes of it (``level``):

- ``warning`` — a name the events never carry: a label key no event ever had (``teem``), or ``provider`` /
  ``key`` when no event ever carried one; or a ``model``, ``provider`` or ``key`` glob that matched none of the
  values seen. Label keys are the ledger's schema and models, providers and keys come from the provider's own
  vocabulary: once events flow, matching none of them is nearly always a typo.
- ``notice`` — every name was seen but a label's glob matched none of its values (``team = "serch"``), or each
  entry matches some series but never all in one. Label values are the operator's own vocabulary and a budget is
  often set up ahead for a team or project that has not spent yet: said in ``status``, not a WARNING.

Pure: the series and the known OpenRouter keys come in; the one matcher (:class:`guardd.core.budgets.Matcher`)
decides what matches, entry by entry, exactly as budgets are evaluated.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from guardd.core.budgets import BUILTIN_DIMENSIONS, Dimensions, Matcher
from guardd.core.keys import KnownKey

SHOWN = 10
"""How many seen names or values a message lists before "and N more"."""


@dataclass(frozen=True, slots=True)
class UnseenPart:
    """One entry of a match that, alone, selects no stored series.

    ``unseen`` is ``key`` when no series carries the dimension ``name`` at all (``seen``: the label keys seen),
    ``value`` when some do but none has a value ``pattern`` matches (``seen``: the values of ``name`` seen).
    """

    name: str
    pattern: str
    unseen: str
    seen: tuple[str, ...]

    @property
    def level(self) -> str:
        return "notice" if self.unseen == "value" and self.name not in BUILTIN_DIMENSIONS else "warning"

    def describe(self) -> str:
        if self.unseen == "key" and self.name in BUILTIN_DIMENSIONS:
            return f"no event ever carried a {self.name} (match {self.name} = {self.pattern!r})"
        if self.unseen == "key":
            return f"label key {self.name!r} was never seen; seen keys: {_listed(self.seen)}"
        if self.name in BUILTIN_DIMENSIONS:
            return f"{self.name} {self.pattern!r} matched no {self.name} seen; seen: {_listed(self.seen)}"
        return f"label {self.name} = {self.pattern!r} matched no value seen; seen: {_listed(self.seen)}"


@dataclass(frozen=True, slots=True)
class MatchGap:
    """Why a budget's match selects no stored series. ``parts`` is empty when every entry matches some series
    alone, but no series matches them all."""

    match: tuple[tuple[str, str], ...]
    level: str
    parts: tuple[UnseenPart, ...]

    @property
    def message(self) -> str:
        if not self.parts:
            entries = ", ".join(f"{name} = {pattern!r}" for name, pattern in self.match)
            return f"no series ever carried all of {entries} together"
        return "; ".join(part.describe() for part in self.parts)

    def to_json(self) -> dict[str, object]:
        """A budget's ``never_matched`` in ``status --json``: ``level``, ``message`` and, per entry of the match
        that alone selects nothing, ``{name, pattern, unseen: "key" | "value", seen}`` (every name seen)."""
        parts = [{"name": p.name, "pattern": p.pattern, "unseen": p.unseen, "seen": list(p.seen)} for p in self.parts]
        return {"level": self.level, "message": self.message, "parts": parts}


def never_matched(
    match: dict[str, str], series: Collection[Dimensions], keys: Sequence[KnownKey] = (), source: str = "ledger"
) -> MatchGap | None:
    """Return why ``match`` selects none of ``series`` (every series ever stored), or None when it selects one,
    when it is empty (all spend), or when there is no series yet (nothing can be said before any event).

    ``keys`` are the OpenRouter keys guardd knows, so ``key`` globs match every name a key is known by, as when
    a budget is evaluated. A ``max`` budget (``source``) still counts OpenRouter's figure when its ledger half
    counts nothing, so it is never more than a ``notice``; an ``openrouter`` one reads no series (None).
    """
    if source == "openrouter":
        return None
    if not match or not series:
        return None
    # One pass over the series: does the whole match select one, and which values does each entry's dimension
    # take (None: a series without it)? Then each entry alone is matched against its distinct values only.
    whole = Matcher(match, keys)
    values: dict[str, set[str | None]] = {name: set() for name in match}
    for dims in series:
        if whole.matches(dims):
            return None
        for name, taken in values.items():
            taken.add(dims.get(name))
    parts = []
    for name, pattern in sorted(match.items()):
        alone = Matcher({name: pattern}, keys)
        if any(alone.matches(_carrying(name, value)) for value in values[name]):
            continue
        seen = tuple(sorted(v for v in values[name] if v is not None))
        if seen:
            parts.append(UnseenPart(name, pattern, "value", seen))
        elif name in BUILTIN_DIMENSIONS:
            parts.append(UnseenPart(name, pattern, "key", ()))
        else:
            label_keys = tuple(sorted({k for dims in series for k, _ in dims.labels}))
            parts.append(UnseenPart(name, pattern, "key", label_keys))
    parts.sort(key=lambda p: (p.level != "warning", p.name))  # the strongest signal first
    strong = source == "ledger" and any(p.level == "warning" for p in parts)
    level = "warning" if strong else "notice"
    return MatchGap(tuple(sorted(match.items())), level, tuple(parts))


def _carrying(name: str, value: str | None) -> Dimensions:
    """A series that carries ``value`` (None: nothing) as its dimension ``name``: to an entry of a match on
    ``name`` alone, every series with that value is this one."""
    if name == "model":
        return Dimensions(value or "")
    if name == "key":
        return Dimensions("", key=value)
    if name == "provider":
        return Dimensions("", provider=value)
    return Dimensions("", labels=() if value is None else ((name, value),))


def _listed(names: tuple[str, ...]) -> str:
    if not names:
        return "none"
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")

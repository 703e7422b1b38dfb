"""Token sums per series over whole hours (:meth:`~guardd.store.api.RequestStatsAPI.token_sums`), what
``guardd advise`` prices. Not imported by the read commands (:mod:`guardd.store.api.rows`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenSums:
    """Spend and token counts of a series over whole hours (for advice)."""

    cost: int = 0
    events: int = 0
    unpriced: int = 0
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    cached: int = 0

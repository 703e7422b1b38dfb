"""One open store, whichever backend: :class:`Stores` bundles every interface guardd asks of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from guardd.errors import StoreError
from guardd.store.api.cluster import ClusterAPI
from guardd.store.api.events import EventsAPI, RequestStatsAPI
from guardd.store.api.remote import RemoteAPI
from guardd.store.api.state import StateAPI


class StoreHealth(Protocol):
    """Whether writing fails: the error of a kind of write whose last transaction failed, None while every
    kind's last one committed (:class:`~guardd.store.health.WriteHealth`). Store health for ``status``."""

    @property
    def write_error(self) -> StoreError | None: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """One open store, whichever backend: every interface guardd asks of it. Built by :mod:`guardd.app` from
    ``[store] url`` (absent: SQLite in ``state_dir``; ``postgresql://``: the shared store)."""

    events: EventsAPI
    state: StateAPI
    stats: RequestStatsAPI
    remote: RemoteAPI
    health: StoreHealth
    kind: str
    """``sqlite`` or ``postgresql``."""
    where: str
    """The database file, or the shared store's URL without its password (for messages)."""
    cluster: ClusterAPI | None = None
    """The shared store's side of many instances (leader lease, membership, switch wake-ups); None on SQLite."""

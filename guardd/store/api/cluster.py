"""The shared store's side of many instances (contract §9): :class:`ClusterAPI` (membership, the leader lease,
fenced state, wake-ups)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the rows are imported where they are built
    from collections.abc import Sequence

    from guardd.store.api.rows_cluster import CommittedSwitch, FileIdentity, Forgotten, InstanceInfo, Term
    from guardd.store.api.state import StateAPI


class ClusterAPI(Protocol):
    """The shared store's side of many instances: membership, the leader lease, fenced state and the switch's
    wake-ups (:mod:`guardd.store.postgres.cluster`). Each call is bounded in time and raises StoreError when the
    store cannot be reached; the control calls share one connection of their own (never the pool's)."""

    async def register(self, me: InstanceInfo, alive_within: timedelta) -> None:
        """Enter ``me``; raise InstanceTaken when a live guardd (seen within ``alive_within``) has its name."""
        ...

    async def beat(self, me: InstanceInfo, ttl: timedelta, lead: bool) -> tuple[bool, Term | None]:
        """Refresh ``me``'s row and (with ``lead``) take or renew the lease for ``ttl``, in one transaction.
        Return (``me`` still owns its name, the term it holds or None)."""
        ...

    async def retire(self, me: InstanceInfo, epoch: int | None) -> None:
        """Mark ``me`` stopped and end its term ``epoch`` now (a clean stop)."""
        ...

    async def read_switch(self) -> CommittedSwitch:
        """The switch document the leader last committed, and how long ago (by the store's clock) a leader last
        reached the store as leader: one statement, so the two are of one moment."""
        ...

    def wakeups(self) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Listen for committed changes: an iterator yielding ``"switch"`` (the switch document), ``"events"``
        (a batch of events, stored by any instance) or ``"overrides"`` (:meth:`wake_leader`) per change;
        StoreError when the listening is lost."""
        ...

    async def wake_leader(self) -> None:
        """Ask the leader to evaluate everything now (an instance that does not lead recorded an override): a
        notification to every instance listening (:meth:`wakeups` yields ``"overrides"``)."""
        ...

    def fenced_state(self, term: Callable[[], int | None]) -> StateAPI:
        """The state for leader steps: every write transaction first re-checks the term ``term()`` names
        (NotLeader, writing nothing, when it is None or over); claims last until the term ends plus a send."""
        ...

    async def previous_readers(
        self, me: str, files: Sequence[FileIdentity], alive_within: timedelta
    ) -> list[tuple[str, str]]:
        """``(instance, path)`` of each of ``files`` read by another instance name, not running (not seen within
        ``alive_within``), that ``me`` never read: this host's files under an old name."""
        ...

    async def status(self) -> dict[str, object]:
        """The ``cluster`` section of ``status --json``."""
        ...

    async def forget(self, name: str) -> Forgotten:
        """Count instance ``name``, which died without a clean stop and will not return, as stopped (no longer
        warned of); refused while it reaches the store (``guardd store forget``)."""
        ...

    async def close(self) -> None: ...

"""What guardd stored of OpenRouter: :class:`RemoteAPI` (usage snapshots, credits, the keys list, polling state,
the catalog)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the rows are imported where they are built
    from guardd.store.api.rows_remote import Credits, KeyUsage, ListedKey, SourceState


class RemoteAPI(Protocol):
    """What guardd stored of OpenRouter: usage snapshots per key, account credits, the ``/keys`` list, how polling
    stands, and the model catalog. Each method that writes is one transaction; safe for concurrent callers."""

    async def save_poll(
        self, usage: Sequence[KeyUsage], credits: Credits | None, error: str | None, permanent: bool, now: datetime
    ) -> None:
        """Store one poll's snapshots (a snapshot of a key at the same ``at`` replaces it) and its credits, and
        record the source ``openrouter`` as polled at ``now`` (``error`` None) or failing since its first failure
        with ``error`` (``permanent``: every failure was a rejection), all in one transaction."""
        ...

    async def save_keys(self, keys: Sequence[ListedKey], now: datetime) -> None:
        """Store the ``/keys`` list fetched at ``now``. A key listed enabled is no longer guardd's to re-enable;
        a list fetched before guardd last recorded switching a key leaves that key's record as it is."""
        ...

    async def listed_keys(self) -> list[ListedKey]:
        """Every key of the stored ``/keys`` list, by hash."""
        ...

    async def polled_keys(self) -> dict[str, str | None]:
        """Every key handle with snapshots, with the (greatest) label OpenRouter gave it."""
        ...

    async def latest_usage(self, key: str | None = None) -> list[KeyUsage]:
        """The latest snapshot of ``key`` (None: of every key, by handle), as a list of at most one per key."""
        ...

    async def usage_before(self, key: str, at: int) -> int | None:
        """The total usage of ``key``'s last snapshot at or before ``at`` (Unix ms); None when none says."""
        ...

    async def usage_after(self, key: str, at: int) -> int | None:
        """The total usage of ``key``'s first snapshot at or after ``at`` (Unix ms); None when none says."""
        ...

    async def latest_credits(self) -> Credits | None: ...

    async def first_credits_since(self, at: int) -> Credits | None:
        """The first credits snapshot at or after ``at`` (Unix ms)."""
        ...

    async def source(self, name: str) -> SourceState | None: ...

    async def save_prices(self, pricing: dict[str, dict[str, object]], now: datetime) -> None:
        """Store the catalog's ``pricing`` objects by model id (replacing what each model had)."""
        ...

    async def priced_models(self) -> set[str]:
        """The model ids of the stored catalog."""
        ...

    async def catalog(self) -> dict[str, dict[str, object]]:
        """The stored catalog's ``pricing`` objects by model id."""
        ...

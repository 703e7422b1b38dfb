"""Whether a store can be written, per kind of write: the store health that ``status`` and ``check`` show
(contract §7)."""

from __future__ import annotations

from guardd.errors import StoreError


class WriteHealth:
    """The failing kinds of write of one store, each with its last error.

    A kind (``events``, ``state``, ``openrouter``, …) is failing from a transaction of that kind that failed
    until one of that kind commits: a write of another kind that commits meanwhile proves nothing about it (on a
    full disk a small write may fit where a batch of events does not). Not thread-safe; one event loop.
    """

    def __init__(self) -> None:
        self._failing: dict[str, StoreError] = {}

    @property
    def error(self) -> StoreError | None:
        """The error of the kind that has been failing longest, None while every kind's last write committed."""
        return next(iter(self._failing.values()), None)

    def failed(self, kind: str, error: StoreError) -> StoreError:
        """Record that a write of ``kind`` failed with ``error`` (it keeps its place if it was failing already);
        return ``error``."""
        self._failing[kind] = error
        return error

    def committed(self, kind: str) -> None:
        """Record that a write of ``kind`` committed."""
        self._failing.pop(kind, None)

"""The SQLite side of :class:`guardd.store.state.StateStore` (the state rows, written once for both backends)."""

from __future__ import annotations

from guardd.store import state
from guardd.store.dialect import SQLITE
from guardd.store.sqlite.db import Store

__all__ = ["StateStore"]


class StateStore(state.StateStore):
    """Alert state, the outbox, channel health, overrides, silences, history, the switch document, markers and the
    key switch's records in one SQLite :class:`Store`."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, SQLITE)
        self.store = store

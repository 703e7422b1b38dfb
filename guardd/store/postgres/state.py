"""The PostgreSQL side of :class:`guardd.store.state.StateStore` (the state rows, written once for both backends),
shared by every instance: outbox claims skip rows another instance is claiming (``FOR UPDATE SKIP LOCKED``), and the
switch document and the pending key changes are row-locked while a decision is taken."""

from __future__ import annotations

from guardd.store import state
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.dialect import PG

__all__ = ["PgStateStore"]


class PgStateStore(state.StateStore):
    """The state rows of one :class:`PgStore`, shared by every instance. Safe for concurrent callers."""

    def __init__(self, store: PgStore) -> None:
        super().__init__(store, PG)
        self.store = store

"""A static proof, checked by mypy, that every storage backend satisfies :mod:`guardd.store.api`.

Nothing here runs: a backend that drifts from the interface fails ``mypy`` here, naming the method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardd.store.api import EventsAPI, StateAPI
    from guardd.store.sqlite.db import Store
    from guardd.store.sqlite.events import EventStore
    from guardd.store.sqlite.state import StateStore

    def _sqlite(store: Store) -> tuple[EventsAPI, StateAPI]:
        return EventStore(store), StateStore(store)

    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore
    from guardd.store.postgres.state import PgStateStore

    def _postgresql(store: PgStore) -> tuple[EventsAPI, StateAPI]:
        return PgEventStore(store), PgStateStore(store)

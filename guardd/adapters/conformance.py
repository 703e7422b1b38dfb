"""A static proof, checked by mypy, that every storage backend satisfies :mod:`guardd.adapters.store_api`.

Nothing here runs: a backend that drifts from the interface fails ``mypy`` here, naming the method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardd.adapters.events_store import EventStore
    from guardd.adapters.state_store import StateStore
    from guardd.adapters.store import Store
    from guardd.adapters.store_api import EventsAPI, StateAPI

    def _sqlite(store: Store) -> tuple[EventsAPI, StateAPI]:
        return EventStore(store), StateStore(store)

    from guardd.adapters.pg.db import PgStore
    from guardd.adapters.pg.events import PgEventStore
    from guardd.adapters.pg.state import PgStateStore

    def _postgresql(store: PgStore) -> tuple[EventsAPI, StateAPI]:
        return PgEventStore(store), PgStateStore(store)

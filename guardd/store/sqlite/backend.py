"""The embedded backend: every storage interface over one SQLite file in ``state_dir`` (the default, contract §9:
``[store] url`` absent)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from guardd.store.api import Stores
from guardd.store.dialect import SQLITE
from guardd.store.remote import RemoteStore
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from guardd.store.sqlite.state import StateStore
from guardd.store.stats import RequestStats


@asynccontextmanager
async def open_stores(path: Path, readonly: bool = False) -> AsyncIterator[Stores]:
    """Open (creating and migrating unless ``readonly``) the state database at ``path``; closed on every way out."""
    async with Store.open(path, readonly=readonly) as store:
        events = EventStore(store)
        yield Stores(
            events, StateStore(store), RequestStats(events, store, SQLITE), RemoteStore(store, SQLITE), store,
            "sqlite", str(path),
        )  # fmt: skip

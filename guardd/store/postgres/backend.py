"""The shared backend: every storage interface over one PostgreSQL database (contract §9: ``[store] url =
"postgresql://…"``), for the instance named ``instance``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from guardd.core.redact import store_url as redacted
from guardd.store.api import Stores
from guardd.store.postgres.cluster import PgCluster
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.dialect import PG
from guardd.store.postgres.events import PgEventStore
from guardd.store.postgres.state import PgStateStore
from guardd.store.remote import RemoteStore
from guardd.store.stats import RequestStats


@asynccontextmanager
async def open_stores(url: str, instance: str, readonly: bool = False) -> AsyncIterator[Stores]:
    """Connect to the existing database at ``url`` (creating and migrating guardd's tables) as ``instance``;
    closed on every way out. ``readonly``: a command that only reads, over one connection rather than a pool.
    StoreError when it cannot be reached (the password never in its text)."""
    async with PgStore.open(url, instance, single=readonly) as pg:
        events = PgEventStore(pg)
        yield Stores(
            events, PgStateStore(pg), RequestStats(events, pg, PG), RemoteStore(pg, PG), pg, "postgresql",
            redacted(url), PgCluster(pg),
        )  # fmt: skip

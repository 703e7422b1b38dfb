"""Open either storage backend for the contract suite: SQLite in a temporary folder, or PostgreSQL in a database
of the test's own (``pg_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from guardd.core.batch import Parsed, QuarantinedLine, series_sig
from guardd.store.api import EventsAPI, StateAPI, Stores
from guardd.store.postgres import backend as postgresql
from guardd.store.sqlite import backend as sqlite

BACKENDS = ["sqlite", "postgresql"]
T0 = datetime(2026, 11, 2, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
USD = 10**12


@dataclass
class Backend:
    """Where a backend's state lives; :meth:`events` opens a handle on it (several may be open at once)."""

    kind: str
    where: str

    @asynccontextmanager
    async def stores(self, instance: str = "host-a") -> AsyncIterator[Stores]:
        """Every interface of the backend, opened as the composition root opens it (:func:`guardd.app.open_stores`)."""
        if self.kind == "sqlite":
            async with sqlite.open_stores(Path(self.where)) as stores:
                yield stores
        else:
            async with postgresql.open_stores(self.where, instance) as stores:
                yield stores

    @asynccontextmanager
    async def events(self, instance: str = "host-a") -> AsyncIterator[EventsAPI]:
        async with self.stores(instance) as stores:
            yield stores.events

    @asynccontextmanager
    async def state(self, instance: str = "host-a") -> AsyncIterator[StateAPI]:
        async with self.stores(instance) as stores:
            yield stores.state


def make_backend(kind: str, tmp_path: Path, pg_url: str | None) -> Backend:
    return Backend("sqlite", str(tmp_path / "guardd.db")) if kind == "sqlite" else Backend(kind, pg_url or "")


def sig(model: str = "m", team: str = "search") -> str:
    return series_sig(model, None, None, {"team": team})


def batch(*events: tuple[str, int, int | None], model: str = "m", bad: int = 0) -> Parsed:
    """A batch of ``(key, ms after T0, cost in pico-dollars or None)`` events of one series, with ``bad``
    quarantined lines."""
    parsed = Parsed.of([(k, T0_MS + at, sig(model), cost, 10, 5) for k, at, cost in events])
    parsed.bad.extend(QuarantinedLine("ledger", "/l.jsonl", i * 100, "not JSON", "{oops") for i in range(bad))
    return parsed

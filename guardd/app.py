"""The one composition root: from a configuration to guardd's working parts, whichever backend holds the state.

The daemon (:mod:`guardd.daemon.server`), every command of the CLI and the tests build guardd here and nowhere
else::

    async with open_app(config, dry_run=False, readonly=False) as app:
        await app.evaluator.evaluate_all(now)      # app.stores.events / .state / .stats / .remote, app.engine, …

- :func:`open_stores` chooses the backend from ``[store] url`` (contract §9): absent, SQLite in ``state_dir``
  (:mod:`guardd.store.sqlite`); ``postgresql://…``, the shared store (:mod:`guardd.store.postgres`) as this
  host's ``instance``. Each backend is imported only when chosen, so a command on SQLite never loads psycopg.
- :func:`build` wires the services over an open store (no I/O): the evaluator with OpenRouter's view when
  ``[openrouter]`` is set, and, on first use, the engine, the tailer and the OpenRouter poller, checks and key
  switch. The daemon builds again on a reload; the open store stays.

Nothing here holds SQL or a driver: code above the store sees only :class:`guardd.store.api.Stores`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guardd.config import Config, ConfigView
    from guardd.ledger.tailer import Tailer
    from guardd.ledger.tracked import LedgerSpec
    from guardd.services.evaluation import Evaluator
    from guardd.services.jobs import Engine
    from guardd.services.openrouter.view import RemoteView
    from guardd.store.api import EventsAPI, RemoteAPI, RequestStatsAPI, StateAPI, Stores


@asynccontextmanager
async def open_stores(config: ConfigView, readonly: bool = False) -> AsyncIterator[Stores]:
    """Open the store ``config`` names (closed on every way out). ``readonly``: a command that only reads, so it
    works on a SQLite state this user may not write (the shared store is read through the same connection).

    ``config`` may be a read-only command's view (:func:`guardd.config.load_view`): a view never holds the store's
    URL (a secret), only where it comes from, and reads it there now (:meth:`ConfigView.store_url`)."""
    if not config.shared_store:
        from guardd.store.sqlite.backend import open_stores as open_sqlite

        async with open_sqlite(config.db_path, readonly) as stores:
            yield stores
    else:
        from guardd.store.postgres.backend import open_stores as open_postgresql

        async with open_postgresql(config.store_url(), config.instance, readonly) as stores:
            yield stores


def _full(config: ConfigView) -> Config:
    """``config`` as the whole configuration; TypeError for a bare view (a read-only command's)."""
    from guardd.config import Config

    if not isinstance(config, Config):
        raise TypeError("this part of guardd needs the whole configuration, not a read-only command's view")
    return config


class App:
    """guardd's parts for one configuration over one open store. Built by :func:`build`; cheap to build again."""

    def __init__(
        self, config: ConfigView, stores: Stores, dry_run: bool = False, leader_state: StateAPI | None = None
    ) -> None:
        from guardd.services.evaluation import Evaluator

        self.config = config
        self.stores = stores
        self.dry_run = dry_run
        self.leader_state = leader_state
        """On a shared store, the daemon's fenced state (:meth:`guardd.daemon.cluster.Cluster.state`): what the
        engine and the key switch write through, so that only the leader's term writes decisions."""
        self.view: RemoteView | None = None
        if config.has_openrouter:
            from guardd.services.openrouter.view import RemoteView

            self.view = RemoteView(config, stores.remote)
        view = self.view
        self.evaluator: Evaluator = Evaluator(
            config,
            stores.events,
            stores.stats,
            view.spend if view else None,
            view.staleness if view else None,
            view.known_keys if view else None,
        )

    @property
    def full(self) -> Config:
        """The whole configuration, for the parts that change or send something (the engine, the tailer,
        OpenRouter's poller); a read-only command builds over a view and never reaches them."""
        return _full(self.config)

    # The store's interfaces, for brevity.
    @property
    def events(self) -> EventsAPI:
        return self.stores.events

    @property
    def state(self) -> StateAPI:
        return self.stores.state

    @property
    def stats(self) -> RequestStatsAPI:
        return self.stores.stats

    @property
    def remote(self) -> RemoteAPI:
        return self.stores.remote

    @cached_property
    def engine(self) -> Engine:
        """The engine that evaluates, announces, writes the switch and delivers (one per App)."""
        from guardd.services.jobs import Engine

        return Engine(self.full, self.leader_state or self.stores.state, self.evaluator, dry_run=self.dry_run)

    def ledger_specs(self) -> list[LedgerSpec]:
        """The ``[[ledgers]]`` entries with their paths resolved, in the configuration's order: what the tailer
        follows, and what ``guardd ingest`` reads a file it is given as."""
        from guardd.ledger.tracked import LedgerSpec

        return [
            LedgerSpec(path, lg.format, dict(lg.labels))
            for path, lg in zip(self.config.ledger_paths, self.full.settings.ledgers, strict=True)
        ]

    def tailer(self) -> Tailer:
        """A tailer of the configuration's ledgers into this store (the daemon's one reader of the ledgers)."""
        from guardd.ledger.tailer import Tailer

        specs = self.ledger_specs()
        return Tailer(specs, self.stores.events, self.config.max_event_cost, self.full.settings.guardd.ingest_workers)

    def openrouter(self, poller: Any = None) -> tuple[Any, Any] | None:
        """The OpenRouter poller (``poller``, kept across reloads, else a new one), its checks, and the key switch
        set on :attr:`engine`; None without ``[openrouter]``. Returns ``(poller, checks)``."""
        if self.view is None:
            return None
        from guardd.services.openrouter.checks import RemoteChecks
        from guardd.services.openrouter.keys import KeySwitch
        from guardd.services.openrouter.poll import RemotePoller

        stores = self.stores
        if poller is None:
            poller = RemotePoller(self.full, stores.remote, stores.events, dry_run=self.dry_run)
        checks = RemoteChecks(self.full, stores.remote, stores.events, self.engine, self.view)
        self.engine.key_switch = KeySwitch(self.full, self.engine.state, stores.remote, poller.client)
        return poller, checks


def build(config: ConfigView, stores: Stores, dry_run: bool = False, leader_state: StateAPI | None = None) -> App:
    """Wire guardd's parts for ``config`` over the open ``stores`` (no I/O); ``leader_state``: see :class:`App`."""
    return App(config, stores, dry_run, leader_state)


@asynccontextmanager
async def open_app(config: ConfigView, dry_run: bool = False, readonly: bool = False) -> AsyncIterator[App]:
    """Open the configured store and build guardd over it; the series are loaded and budgets matched."""
    async with open_stores(config, readonly) as stores:
        app = build(config, stores, dry_run)
        await app.evaluator.refresh_series()
        yield app

"""The daemon's cycle wiring: the parts built for a configuration and the worker's steps over them.

:class:`Cycle` owns the one :class:`~guardd.services.worker.Worker` and gives it its steps — ingest →
OpenRouter → evaluate → deliver → digest → rollover — and the ways for anything else to ask for work:
:meth:`Cycle.request_evaluation`, :meth:`Cycle.run_exclusive` (any work, serialised with every step) and
:meth:`Cycle.ingest_pushed` (a batch pushed over HTTP). :meth:`Cycle.once` runs one whole cycle inline
(``guardd run --once``). On a shared store only the leader evaluates, polls OpenRouter, delivers and sends the
digest (:mod:`guardd.daemon.cluster`).

It starts nothing and handles no signal: the lifecycle — startup, serving, signals, reload and shutdown — is
:class:`guardd.daemon.server.Daemon`, built on this class. Not thread-safe: every method runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from guardd.adapters.instance_lock import InstanceLock
from guardd.adapters.systemd import Notifier
from guardd.app import App, build
from guardd.config import Config
from guardd.core.batch import Parsed
from guardd.daemon.cluster import Cluster
from guardd.daemon.schedule import Timetable
from guardd.services.openrouter.steps import OpenRouterSteps
from guardd.services.worker import Step, Worker
from guardd.store.api import BatchResult, Stores

log = logging.getLogger("guardd.daemon.server")

POLL_BACKSTOP = 2.0
INGEST_SLICE = 1.0  # seconds of backlog per turn before the other due steps get theirs
STUCK_AFTER = 60.0  # seconds one step may run before a leader on a shared store makes way for another

T = TypeVar("T")


class Cycle:
    """The parts of one configuration and the worker's steps over them (see the module's docstring)."""

    def __init__(
        self, config: Config, stores: Stores, dry_run: bool, config_arg: str | None, cluster: Cluster | None = None
    ) -> None:
        self.config = config
        self.cluster = cluster  # on a shared store: this instance's membership (leader steps only while it leads)
        self._new_term = False
        self.stores = stores
        self.dry_run = dry_run
        self.config_arg = config_arg
        self.events = stores.events
        self.state = stores.state
        self.stop = asyncio.Event()
        self.sd = Notifier()
        self.timetable: Timetable | None = None
        self.web: Any = None  # guardd.daemon.webservice.WebService while [http] is configured
        self.lock: InstanceLock | None = None
        self._eval_full = False
        self._eval_series: set[int] = set()
        self.worker = Worker(
            {
                Step.INGEST: self._ingest_step,
                Step.OPENROUTER: self._leader_step(lambda: self.openrouter.step()),
                Step.EVALUATE: self._leader_step(self._evaluate_step),
                Step.DELIVER: self._leader_step(self._deliver),
                Step.DIGEST: self._leader_step(self._digest),
                Step.ROLLOVER: self._rollover,
            },
            self.stop,
            self._after_step,
            POLL_BACKSTOP,
        )
        self.openrouter = OpenRouterSteps(self.worker, self.request_evaluation)
        self._build(config)

    def _build(self, config: Config) -> None:
        """Wire the parts for ``config`` through the composition root (:mod:`guardd.app`), on the open store."""
        self.config = config
        cluster = self.cluster
        self.app: App = build(config, self.stores, self.dry_run, cluster.state() if cluster else None)
        self.evaluator = self.app.evaluator
        self.engine = self.app.engine
        self.engine.on_switch = self._publish_switch
        self.tailer = self.app.tailer()
        if cluster is not None:
            cluster.attach(self.engine)
            cluster.reconfigure(config)
            cluster.on_elected = self._elected
            cluster.healthy = self._not_stuck
            cluster.on_events = self.request_evaluation  # a batch stored by any instance: evaluate everything
            if cluster.epoch is not None:  # it took the lease when it joined, before this daemon was built
                self._elected(cluster.epoch)

    # ---- a shared store: only the leader evaluates, polls OpenRouter and delivers (guardd.daemon.cluster) -------
    def leads(self) -> bool:
        return self.cluster is None or self.cluster.leading

    def _leader_step(self, step: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self.leads():
                await step()

        return run

    def _not_stuck(self) -> bool:
        """False while one step has run for longer than :data:`STUCK_AFTER` (then another instance should lead)."""
        since = self.worker.busy_since
        return since is None or time.monotonic() - since < STUCK_AFTER

    def _elected(self, epoch: int) -> None:
        """A new term: everything is read from the store again, evaluated, polled and delivered."""
        self._new_term = True
        self.request_evaluation()
        self.worker.request(Step.OPENROUTER)

    # ---- one cycle --------------------------------------------------------------------------------------
    async def ingest(self, keep_going: Callable[[], bool] | None = None) -> set[int]:
        """Read whatever the ledgers hold now (until ``keep_going`` says stop, between two batches); return the
        series that got new or changed events."""
        touched: set[int] = set()
        for result in await self.tailer.poll(keep_going):
            touched |= result.series
        if touched and not touched.issubset(self.evaluator.series):
            await self.evaluator.refresh_series()
        return touched

    async def evaluate(self, touched: set[int] | None = None) -> None:
        now = datetime.now(UTC)
        only = None if touched is None else self.evaluator.budgets_touching(touched)
        if only == []:
            return
        await self.engine.cycle(now, only)
        self.sd.send(f"STATUS={self._summary()}")

    # ---- the worker's steps ---------------------------------------------------------------------------------
    def request_evaluation(self, series: set[int] | None = None) -> None:
        """Ask the worker to evaluate the budgets touching ``series`` (None: every budget)."""
        if series is None:
            self._eval_full = True
        else:
            self._eval_series |= series
        self.worker.request(Step.EVALUATE)

    async def _ingest_step(self) -> None:
        deadline = time.monotonic() + INGEST_SLICE
        touched = await self.ingest(lambda: not self.stop.is_set() and time.monotonic() < deadline)
        if touched:
            self.request_evaluation(touched)
        if self.tailer.behind and not self.stop.is_set():
            self.worker.request(Step.INGEST)  # the rest of a backlog, after this turn's other steps

    async def _evaluate_step(self) -> None:
        if self._new_term:
            self._new_term = False
            self.engine.new_term()
        full, series = self._eval_full or not self._eval_series, self._eval_series
        if full and self.cluster is not None:  # series first stored by other instances count for the budgets too
            await self.evaluator.refresh_series()
        self._eval_full, self._eval_series = False, set()
        try:
            await self.evaluate(None if full else series)
        except BaseException:
            self._eval_full |= full  # kept for the retry
            self._eval_series |= series
            raise
        self.worker.request(Step.DELIVER)  # what it announced goes out in this turn

    async def _rollover(self) -> None:
        if self.timetable is not None:
            self.timetable.schedule_rollover(self.config)

    def _after_step(self) -> None:
        if self.lock is not None:
            # A switch file that cannot be written is a failed write too (contract §8): status and check say so.
            error = self.stores.health.write_error
            store_error = str(error) if error is not None else self.engine.switch_error
            self.lock.record(store_error, ledger_errors=self.tailer.unreadable, ledger_warnings=self.tailer.missed)

    async def run_exclusive(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` in the worker, serialised with every other step, and return its result.

        The one way for anything outside the worker (the HTTP service, a reload) to change state. Raise
        :class:`GuarddError` when the daemon is stopping."""
        return await self.worker.run_exclusive(work)

    async def ingest_pushed(self, parsed: Parsed) -> BatchResult:
        """Store a batch pushed from outside (``POST /v1/events``), serialised with everything else, and evaluate
        the budgets it touches before returning; delivery of what that announces follows in the same turn."""

        async def work() -> BatchResult:
            result = await self.events.write_batch(parsed)
            if result.series and self.leads():
                if not result.series.issubset(self.evaluator.series):
                    await self.evaluator.refresh_series()
                await self.evaluate(result.series)
                self.worker.request(Step.DELIVER)
            return result

        return await self.worker.run_exclusive(work)

    def _publish_switch(self, doc: Any) -> None:
        if self.web is not None:
            self.web.publish(doc)

    def _summary(self) -> str:
        doc = self.engine.doc
        tripped = [n for n, s in (doc.scopes.items() if doc else []) if s.tripped]
        state = f"TRIPPED: {', '.join(tripped)}" if tripped else "open"
        return f"{len(self.config.budgets)} budget(s); switch {state}"

    def setup_remote(self) -> None:
        """Create the OpenRouter poller, its checks and the key switch (when ``[openrouter]`` is configured)."""
        self.openrouter.setup(self.app.openrouter(self.openrouter.remote))

    async def poll_openrouter(self) -> None:
        """Poll OpenRouter and run the checks, inline (``run --once``)."""
        await self.openrouter.poll_inline()

    async def once(self) -> None:
        await self.evaluator.refresh_series()
        await self.ingest()
        if not self.leads():
            log.info("another instance leads the shared store: this run only ingested")
            return
        await self.poll_openrouter()
        await self.evaluate()
        await self.engine.deliver(datetime.now(UTC))

    def _schedule(self) -> None:
        """(Re)build the periodic jobs from the configuration (and the OpenRouter poller they drive)."""
        if self.config.settings.openrouter is not None:
            self.setup_remote()
        if self.timetable is not None:
            self.timetable.build(self.config)

    async def _deliver(self) -> None:
        await self.engine.deliver(datetime.now(UTC))

    async def _digest(self) -> None:
        from guardd.services.digest import send_digest

        await send_digest(self.config, self.engine, self.state, datetime.now(UTC))

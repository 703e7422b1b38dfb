"""``guardd run``: startup → serve → bounded graceful shutdown, in uvicorn's shape.

**Execution model: one worker.** The daemon's work never overlaps on shared state. Everything that changes state —
reading the ledgers, polling OpenRouter, evaluating budgets, delivering the outbox, the digest, a window rollover, a
configuration reload, and the HTTP service's pushed batches and manual switch changes — runs in the one
:class:`~guardd.services.worker.Worker`, one step at a time, in the order ingest → poll → evaluate → deliver → digest →
rollover (see :mod:`guardd.services.worker`).
The scheduler's jobs, inotify wake-ups, the 2 s stat backstop and signals only
*request* steps. So there is exactly one reader of the ledgers, start-up included; every decision is made on
committed data; and a failing step is logged once with its cause and retried without taking another step down.
Outside writers use :meth:`Daemon.run_exclusive` (any work) or :meth:`Daemon.ingest_pushed` (a parsed batch).

- New ledger lines wake the worker through inotify (watchfiles) within milliseconds. A large backlog is read in
  slices of about :data:`INGEST_SLICE` seconds, each followed by the other due steps, so the heartbeat stays fresh;
  positions are committed batch by batch, so any stop is safe.
- APScheduler only times the periodic requests, each job with an explicit zone: full evaluation, outbox delivery,
  OpenRouter polling, the daily digest (idempotent per local date) and a date job at the next window boundary so a
  rollover releases the switch at that instant.
- Signals only set flags: SIGTERM/SIGINT request the stop, honoured between two batches or steps (a step still
  running after :data:`STOP_GRACE` seconds is cancelled, its transaction rolled back); a second SIGINT exits at
  once. SIGHUP reloads the configuration through the worker, keeping the old one when the new one is invalid.
- One daemon per state: ``state_dir/guardd.lock`` is held for the daemon's life (:mod:`guardd.adapters.instance_lock`)
  and also records whether the state database can be written, for ``status`` and ``check``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from guardd.adapters.instance_lock import InstanceLock
from guardd.adapters.systemd import Notifier
from guardd.app import App, build, open_stores
from guardd.config import Config, load_config
from guardd.core.batch import Parsed
from guardd.daemon.cluster import Cluster
from guardd.daemon.schedule import Timetable
from guardd.errors import ConfigError, GuarddError
from guardd.services.openrouter.steps import OpenRouterSteps
from guardd.services.worker import Step, Worker
from guardd.store.api import BatchResult, Stores

log = logging.getLogger("guardd.daemon.server")

SHUTDOWN_TIMEOUT = 10.0
POLL_BACKSTOP = 2.0
INGEST_SLICE = 1.0  # seconds of backlog per turn before the other due steps get theirs
STUCK_AFTER = 60.0  # seconds one step may run before a leader on a shared store makes way for another
STOP_GRACE = 1.5  # seconds the running step gets to finish after SIGTERM before it is cancelled

T = TypeVar("T")


class Daemon:
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
        self.stopped_by: signal.Signals | None = None  # SIGINT (Ctrl-C) makes the exit code 130
        self.worker_error: BaseException | None = None  # set when the worker ends without being asked to
        self.sd = Notifier()
        self.timetable: Timetable | None = None
        self.watch_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
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
            self.lock.record(store_error, ledger_errors=self.tailer.unreadable)

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

    # ---- serving ----------------------------------------------------------------------------------------
    async def serve(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        await self.evaluator.refresh_series()
        freed = await self.state.release_dead_leases(self.config.instance)
        if freed:
            log.info("took over %d notification(s) left mid-delivery by a previous run", freed)
        loop = asyncio.get_running_loop()
        self._signals(loop)
        if self.config.settings.http is not None:
            from guardd.daemon.webservice import WebService

            self.web = WebService(self)
            try:
                await self.web.start()
            except OSError as exc:
                self.web = None
                raise GuarddError(str(exc)) from exc
        scheduler = AsyncIOScheduler(timezone=self.config.zone)
        self.timetable = Timetable(scheduler, self.worker.request, self.request_evaluation)
        self._schedule()
        scheduler.start()
        self.watch_task = asyncio.create_task(self._watch(), name="watch")
        worker = asyncio.create_task(self.worker.run(), name="worker")
        worker.add_done_callback(self._worker_ended)
        tasks: list[asyncio.Task[Any]] = []
        interval = self.sd.watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(self._watchdog(interval), name="watchdog"))
        if self.cluster is not None:
            tasks.append(asyncio.create_task(self._name_kept(self.cluster), name="instance name"))
        # The start-up backlog is read by the worker like any other change: one reader of the ledgers.
        self.worker.request(Step.INGEST)
        self.request_evaluation()
        first = asyncio.create_task(self.worker.turned.wait())
        await asyncio.wait({first, asyncio.create_task(self.stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if not self.stop.is_set():
            self.sd.send("READY=1", f"STATUS={self._summary()}")
            log.info(
                "guardd is running",
                extra={
                    "ctx": {
                        "budgets": len(self.config.budgets),
                        "ledgers": len(self.config.settings.ledgers),
                        "dry_run": self.dry_run,
                    }
                },
            )
        await self.stop.wait()
        self.sd.send("STOPPING=1")
        log.info("stopping")
        self.timetable.shutdown()
        _done, running = await asyncio.wait({worker}, timeout=STOP_GRACE)
        if running:
            log.info("stopping the running step (its open transaction rolls back; nothing committed is lost)")
            worker.cancel()
        await self.openrouter.stop_fetch()
        if self.web is not None:
            await self.web.stop()
        tasks += [worker, self.watch_task, first]
        for task in tasks:
            task.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        if pending:
            log.warning("shutdown timed out; %d task(s) abandoned", len(pending))
        await self.tailer.aclose()
        if self.worker_error is not None:
            raise GuarddError(f"the worker stopped unexpectedly: {self.worker_error}") from self.worker_error

    async def _name_kept(self, cluster: Cluster) -> None:
        """Stop (exit 1) when another guardd took this instance's name on the shared store."""
        await cluster.name_lost.wait()
        self.worker_error = GuarddError(f"another guardd took the instance name {cluster.me.name!r}")
        self.stop.set()

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """The worker ends only when asked to. If it ends otherwise (a bug), nothing would be ingested, evaluated
        or sent while the process, its watchdog pings and its HTTP service looked alive: stop the daemon instead,
        so that it exits 1 and the service manager restarts it."""
        if self.stop.is_set() or task.cancelled():
            return
        self.worker_error = task.exception() or RuntimeError("it returned")
        log.critical("the worker stopped unexpectedly (%r); stopping guardd", self.worker_error)
        self.stop.set()

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

    async def _watch(self) -> None:
        folders = [f for f in self.tailer.folders() if _exists(f)]
        if not folders:
            return
        from watchfiles import awatch

        # awatch sets its stop_event when cancelled (to stop its watcher thread): give it its own, or cancelling
        # this watch on a reload would stop the whole daemon.
        own_stop = asyncio.Event()
        try:
            async for _changes in awatch(
                *folders, debounce=20, step=20, recursive=True, watch_filter=None, stop_event=own_stop
            ):
                self.worker.request(Step.INGEST)
        except (OSError, RuntimeError) as exc:
            log.warning("file notifications unavailable (%s); polling every %ss", exc, POLL_BACKSTOP)

    async def _watchdog(self, interval: float) -> None:
        while self.worker_error is None:
            self.sd.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _signals(self, loop: asyncio.AbstractEventLoop) -> None:
        interrupts = 0

        def on_stop(sig: signal.Signals) -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts > 1 and sig == signal.SIGINT:
                log.warning("second interrupt: exiting now")
                raise SystemExit(130)
            self.stopped_by = sig
            self.stop.set()
            self.worker.request()  # wake it: it stops between two batches or steps

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop, sig)

        def on_reload() -> None:
            task = loop.create_task(self._reload_exclusive())
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

        loop.add_signal_handler(signal.SIGHUP, on_reload)

    async def _reload_exclusive(self) -> None:
        try:
            await self.run_exclusive(self.reload)
        except GuarddError as exc:
            log.warning("reload not done: %s", exc)

    async def reload(self) -> None:
        """Load the configuration again and rebuild everything from it (run it through :meth:`run_exclusive`)."""
        self.sd.send("RELOADING=1")
        try:
            config = load_config(self.config_arg)
        except ConfigError as exc:
            log.error("reload rejected; keeping the running configuration:\n%s", "\n".join(exc.problems))
            self.sd.send("READY=1")
            return
        if config.settings.store.url != self.config.settings.store.url:
            log.error("reload rejected: [store] url changed; that takes a restart")
            self.sd.send("READY=1")
            return
        if config.db_path != self.config.db_path:
            log.error(
                "reload rejected: state_dir changed (%s -> %s); that takes a restart",
                self.config.db_path,
                config.db_path,
            )
            self.sd.send("READY=1")
            return
        if config.settings.http != self.config.settings.http and self.web is not None:
            http = config.settings.http
            if http is None or http.listen != self.config.settings.http.listen:  # type: ignore[union-attr]
                log.warning("[http] listen changed or was removed: that takes a restart (the token applies now)")
        await self.tailer.aclose()
        await self.openrouter.aclose()  # keys, base_url or timeout may have changed
        self._build(config)
        self._schedule()
        if self.watch_task is not None:  # watched folders follow the new ledgers
            self.watch_task.cancel()
            self.watch_task = asyncio.create_task(self._watch(), name="watch")
        await self.evaluator.refresh_series()
        await self.evaluate()
        self.sd.send("READY=1", f"STATUS={self._summary()}")
        log.info("configuration reloaded")


def _exists(folder: str) -> bool:
    import os

    return os.path.isdir(folder)


async def run(config: Config, once: bool = False, dry_run: bool = False, config_arg: str | None = None) -> int:
    """Run the daemon (or one cycle with ``once``); return the exit code."""
    for warning in config.hygiene_warnings():
        log.warning("%s", warning)
    lock = InstanceLock.acquire(config.state_dir, daemon=not once)
    try:
        return await _run_locked(lock, config, once, dry_run, config_arg)
    finally:
        lock.release()


async def _run_locked(lock: InstanceLock, config: Config, once: bool, dry_run: bool, config_arg: str | None) -> int:
    async with open_stores(config) as stores:
        cluster = None
        if stores.cluster is not None:
            cluster = Cluster(stores.cluster, config, lead=not dry_run, write_file=not dry_run)
            await cluster.join()  # InstanceTaken (exit 1) when a live guardd has this instance name
        daemon = Daemon(config, stores, dry_run, config_arg, cluster)
        daemon.lock = lock
        if dry_run:
            log.info("dry run: deciding everything, writing no switch file, sending nothing")
        try:
            if once:
                daemon.setup_remote()
                await daemon.once()
            else:
                await daemon.serve()
        finally:
            await daemon.tailer.aclose()
            await daemon.openrouter.aclose()
            if cluster is not None:
                await cluster.leave()
    return 130 if daemon.stopped_by == signal.SIGINT else 0

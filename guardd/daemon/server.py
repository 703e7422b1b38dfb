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
  slices of about :data:`~guardd.daemon.cycle.INGEST_SLICE` seconds, each followed by the other due steps, so the
  heartbeat stays fresh; positions are committed batch by batch, so any stop is safe.
- APScheduler only times the periodic requests, each job with an explicit zone: full evaluation, outbox delivery,
  OpenRouter polling, the daily digest (idempotent per local date) and a date job at the next window boundary so a
  rollover releases the switch at that instant.
- Signals only set flags: SIGTERM/SIGINT request the stop, honoured between two batches or steps (a step still
  running after :data:`STOP_GRACE` seconds is cancelled, its transaction rolled back); a second SIGINT exits at
  once. SIGHUP reloads the configuration through the worker, keeping the old one when the new one is invalid.
- One daemon per state: ``state_dir/guardd.lock`` is held for the daemon's life (:mod:`guardd.adapters.instance_lock`)
  and also records whether the state database can be written, for ``status`` and ``check``.

This module is the lifecycle: :class:`Daemon` adds startup, serving, shutdown and reload to the cycle wiring of
:class:`guardd.daemon.cycle.Cycle`; :func:`run` holds the instance lock and the stores around it. The signal handlers
are :mod:`guardd.daemon.signals`, the file notifications :mod:`guardd.daemon.watch`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from guardd.adapters.instance_lock import InstanceLock
from guardd.app import open_stores
from guardd.config import Config, load_config
from guardd.daemon import signals
from guardd.daemon.cluster import Cluster
from guardd.daemon.cycle import POLL_BACKSTOP, Cycle
from guardd.daemon.schedule import Timetable
from guardd.daemon.watch import watch
from guardd.errors import ConfigError, GuarddError
from guardd.services.worker import Step
from guardd.store.api import Stores

log = logging.getLogger("guardd.daemon.server")

SHUTDOWN_TIMEOUT = 10.0
STOP_GRACE = 1.5  # seconds the running step gets to finish after SIGTERM before it is cancelled


class Daemon(Cycle):
    """One running guardd: the cycle wiring of :class:`~guardd.daemon.cycle.Cycle` with its lifecycle —
    :meth:`serve` (startup, serving until a stop is requested, bounded shutdown) and :meth:`reload`. One per
    process; every method runs on the event loop."""

    def __init__(
        self, config: Config, stores: Stores, dry_run: bool, config_arg: str | None, cluster: Cluster | None = None
    ) -> None:
        super().__init__(config, stores, dry_run, config_arg, cluster)
        self.stopped_by: signal.Signals | None = None  # SIGINT (Ctrl-C) makes the exit code 130
        self.worker_error: BaseException | None = None  # set when the worker ends without being asked to
        self.watch_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ---- serving ----------------------------------------------------------------------------------------
    async def serve(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        await self.evaluator.refresh_series()
        freed = await self.state.release_dead_leases(self.engine.claimant)
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

    async def _watch(self) -> None:
        await watch(self.tailer.folders(), lambda: self.worker.request(Step.INGEST), POLL_BACKSTOP)

    async def _watchdog(self, interval: float) -> None:
        while self.worker_error is None:
            self.sd.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def on_stop(sig: signal.Signals) -> None:
            self.stopped_by = sig
            self.stop.set()
            self.worker.request()  # wake it: it stops between two batches or steps

        def on_reload() -> None:
            task = loop.create_task(self._reload_exclusive())
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

        signals.install(loop, on_stop, on_reload)

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
        if self.lock is not None:
            self.lock.configured(config.config_digest)  # status and check stop saying "reload it"
        self._schedule()
        if self.watch_task is not None:  # watched folders follow the new ledgers
            self.watch_task.cancel()
            self.watch_task = asyncio.create_task(self._watch(), name="watch")
        await self.evaluator.refresh_series()
        await self.evaluate()
        self.sd.send("READY=1", f"STATUS={self._summary()}")
        log.info("configuration reloaded")


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
        lock.configured(config.config_digest)
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

"""``guardd run``: startup → serve → bounded graceful shutdown, in uvicorn's shape.

- New ledger lines wake the tailer through inotify (watchfiles) within milliseconds; a 2 s stat poll stays as the
  correctness backstop. Stored events trigger, debounced, the evaluation of just the budgets they touch.
- APScheduler runs the periodic work, each job with an explicit zone, ``max_instances=1``, ``coalesce`` and a
  generous ``misfire_grace_time``: full evaluation, outbox delivery, OpenRouter polling, price refresh, the
  daily digest (idempotent per local date) and a date job at the next window boundary so a rollover releases
  the switch at that instant.
- Signals only set flags: SIGTERM/SIGINT request the stop (a second SIGINT exits at once); SIGHUP reloads the
  configuration, keeping the old one when the new one is invalid; a reload rebuilds every job, the file watch and
  the OpenRouter poller from the new configuration (a new ``state_dir`` takes a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

from guardd.adapters.events_store import EventStore
from guardd.adapters.ledger import LedgerSpec, Tailer
from guardd.adapters.state_store import StateStore
from guardd.adapters.store import Store
from guardd.adapters.systemd import Notifier
from guardd.config import Config, load_config
from guardd.core.periods import window_at
from guardd.errors import ConfigError, GuarddError
from guardd.evaluation import Evaluator
from guardd.jobs import Engine

log = logging.getLogger("guardd.daemon")

SHUTDOWN_TIMEOUT = 10.0
DEBOUNCE = 0.005
POLL_BACKSTOP = 2.0


def _specs(config: Config) -> list[LedgerSpec]:
    return [
        LedgerSpec(path, lg.format, dict(lg.labels))
        for path, lg in zip(config.ledger_paths, config.settings.ledgers, strict=True)
    ]


class Daemon:
    def __init__(self, config: Config, store: Store, dry_run: bool, config_arg: str | None) -> None:
        self.config = config
        self.store = store
        self.dry_run = dry_run
        self.config_arg = config_arg
        self.events = EventStore(store)
        self.state = StateStore(store)
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        self.sd = Notifier()
        self.remote: Any = None
        self.checks: Any = None
        self.scheduler: Any = None
        self.watch_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.web: Any = None  # guardd.webservice.WebService while [http] is configured
        self._build(config)

    def _build(self, config: Config) -> None:
        self.config = config
        remote_spend = remote_stale = None
        if config.settings.openrouter is not None:
            from guardd.openrouter_view import RemoteView

            view = RemoteView(config, self.store)
            remote_spend, remote_stale = view.spend, view.staleness
        self.evaluator = Evaluator(config, self.events, remote_spend, remote_stale)
        self.engine = Engine(config, self.state, self.evaluator, dry_run=self.dry_run)
        self.engine.on_switch = self._publish_switch
        self.tailer = Tailer(_specs(config), self.events, config.settings.guardd.max_event_cost)

    # ---- one cycle --------------------------------------------------------------------------------------
    async def ingest(self) -> set[int]:
        """Read whatever the ledgers hold now; return the series that got new or changed events."""
        touched: set[int] = set()
        for result in await self.tailer.poll():
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
        if self.config.settings.openrouter is None:
            return
        from guardd.openrouter_checks import RemoteChecks
        from guardd.openrouter_keys import KeySwitch
        from guardd.openrouter_poll import RemotePoller

        if self.remote is None:
            self.remote = RemotePoller(self.config, self.store, self.events, dry_run=self.dry_run)
        self.checks = RemoteChecks(self.config, self.store, self.events, self.engine)
        self.engine.key_switch = KeySwitch(self.config, self.store, self.remote.client)

    async def poll_openrouter(self) -> None:
        if self.remote is not None:
            now = datetime.now(UTC)
            await self.remote.poll(now)
            await self.checks.run(now)

    async def once(self) -> None:
        await self.evaluator.refresh_series()
        await self.ingest()
        await self.poll_openrouter()
        await self.evaluate()
        await self.engine.deliver(datetime.now(UTC))

    # ---- serving ----------------------------------------------------------------------------------------
    async def serve(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        await self.evaluator.refresh_series()
        freed = await self.state.release_dead_leases(self.engine.owner.rsplit(":", 1)[0])
        if freed:
            log.info("took over %d notification(s) left mid-delivery by a previous run", freed)
        loop = asyncio.get_running_loop()
        self._signals(loop)
        if self.config.settings.http is not None:
            from guardd.webservice import WebService

            self.web = WebService(self)
            try:
                await self.web.start()
            except OSError as exc:
                self.web = None
                raise GuarddError(str(exc)) from exc
        scheduler = self.scheduler = AsyncIOScheduler(timezone=self.config.zone)
        self._schedule(scheduler)
        scheduler.start()
        self.watch_task = asyncio.create_task(self._watch(), name="watch")
        tasks = [asyncio.create_task(self._tail_loop(), name="tail")]
        interval = self.sd.watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(self._watchdog(interval), name="watchdog"))
        await self.ingest()
        await self.evaluate()
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
        if self.web is not None:
            await self.web.stop()
        scheduler.shutdown(wait=False)
        tasks.append(self.watch_task)
        for task in tasks:
            task.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        if pending:
            log.warning("shutdown timed out; %d task(s) abandoned", len(pending))
        self.tailer.close()

    def _schedule(self, scheduler: Any) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        tz = self.config.zone
        common: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": 300,
            "replace_existing": True,
        }
        every = self.config.settings.guardd.evaluate_every.total_seconds()
        scheduler.add_job(
            self._guard(self.evaluate), IntervalTrigger(seconds=every, timezone=tz), id="evaluate", **common
        )
        scheduler.add_job(self._guard(self._deliver), IntervalTrigger(seconds=2, timezone=tz), id="deliver", **common)
        for optional in ("openrouter", "digest"):  # a reload may have removed them
            if scheduler.get_job(optional) is not None:
                scheduler.remove_job(optional)
        orr = self.config.settings.openrouter
        if orr is not None:
            self.setup_remote()
            scheduler.add_job(
                self._guard(self.poll_openrouter),
                IntervalTrigger(seconds=orr.poll_every.total_seconds(), timezone=tz),
                id="openrouter",
                next_run_time=datetime.now(tz),
                **common,
            )
        if self.config.settings.alerts.digest_at:
            from apscheduler.triggers.cron import CronTrigger

            hour, minute = map(int, self.config.settings.alerts.digest_at.split(":"))
            scheduler.add_job(
                self._guard(self._digest), CronTrigger(hour=hour, minute=minute, timezone=tz), id="digest", **common
            )
        self._schedule_rollover(scheduler)

    def _schedule_rollover(self, scheduler: Any) -> None:
        from apscheduler.triggers.date import DateTrigger

        now = datetime.now(UTC)
        settings = self.config.settings.guardd
        ends = [
            window_at(kind, settings.zone, now, settings.weekday).end
            for b in self.config.budgets
            for kind, _ in b.calendar_limits()
        ]
        if not ends:
            return

        async def rollover() -> None:
            await self.evaluate()
            await self._deliver()
            self._schedule_rollover(scheduler)

        # A hair after the boundary so the new window is the current one.
        at = min(ends) + timedelta(milliseconds=50)
        scheduler.add_job(
            self._guard(rollover),
            DateTrigger(run_date=at, timezone=UTC),
            id="rollover",
            replace_existing=True,
            misfire_grace_time=3600,
        )

    def _guard(self, job: Any) -> Any:
        async def run() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except GuarddError as exc:
                log.error("%s failed: %s", getattr(job, "__name__", "job"), exc)
            except Exception:
                log.exception("%s failed unexpectedly", getattr(job, "__name__", "job"))

        run.__name__ = getattr(job, "__name__", "job")
        return run

    async def _deliver(self) -> None:
        await self.engine.deliver(datetime.now(UTC))

    async def _digest(self) -> None:
        from guardd.digest import send_digest

        await send_digest(self.config, self.engine, self.state, datetime.now(UTC))

    async def _tail_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=POLL_BACKSTOP)
            await asyncio.sleep(DEBOUNCE)  # let a burst of appends land; one evaluation covers them
            self.wake.clear()
            try:
                touched = await self.ingest()
                if touched:
                    await self.evaluate(touched)
                    await self._deliver()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingestion failed; retrying on the next change")
                await asyncio.sleep(POLL_BACKSTOP)

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
                self.wake.set()
        except (OSError, RuntimeError) as exc:
            log.warning("file notifications unavailable (%s); polling every %ss", exc, POLL_BACKSTOP)

    async def _watchdog(self, interval: float) -> None:
        while True:
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
            self.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop, sig)

        def on_reload() -> None:
            task = loop.create_task(self.reload())
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

        loop.add_signal_handler(signal.SIGHUP, on_reload)

    async def reload(self) -> None:
        self.sd.send("RELOADING=1")
        try:
            config = load_config(self.config_arg)
        except ConfigError as exc:
            log.error("reload rejected; keeping the running configuration:\n%s", "\n".join(exc.problems))
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
        self.tailer.close()
        if self.remote is not None:
            await self.remote.aclose()  # keys, base_url or timeout may have changed
            self.remote = None
        self._build(config)
        if self.scheduler is not None:
            self._schedule(self.scheduler)
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
    async with Store.open(config.db_path) as store:
        daemon = Daemon(config, store, dry_run, config_arg)
        if dry_run:
            log.info("dry run: deciding everything, writing no switch file, sending nothing")
        try:
            if once:
                daemon.setup_remote()
                await daemon.once()
            else:
                await daemon.serve()
        finally:
            daemon.tailer.close()
            if daemon.remote is not None:
                await daemon.remote.aclose()
    return 0

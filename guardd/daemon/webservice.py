"""The daemon's side of the HTTP service: :class:`DaemonBackend` implements :class:`guardd.http.backend.Backend`
over a running :class:`guardd.daemon.server.Daemon`, and :func:`start` brings the service up beside it.

Writes go through the daemon's one worker (its execution model, :mod:`guardd.services.worker`), never a second writer: a
pushed batch through :meth:`Daemon.ingest_pushed` (stored, then the budgets it touches evaluated, serialised with
every other step); a manual trip/release through :meth:`Daemon.run_exclusive`, so the switch file has one writer.
On a shared store, an instance that does not lead records a manual trip/release and leaves the decision to the
leader (the one writer of the switch), answering once the leader committed it (:meth:`DaemonBackend.manual`).
A response is sent only once the batch is committed and evaluated. Delivery of the resulting notifications
follows in the worker's same turn.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from guardd.config import Config
from guardd.core.batch import Parsed
from guardd.core.periods import local_midnight, window_at
from guardd.core.switch import SwitchDoc
from guardd.daemon.cluster import Cluster
from guardd.errors import NotLeader
from guardd.http.backend import Charts, KeyUsage, LedgerCount, MetricsSnapshot, NotificationCount
from guardd.services import status
from guardd.services.follower import not_applied
from guardd.services.overrides import ManualNotApplied, ManualRequest, Recorded, apply_manual, request_manual, requested
from guardd.services.worker import Step
from guardd.store.api import BatchResult

if TYPE_CHECKING:
    from guardd.daemon.server import Daemon
    from guardd.http.feed import SwitchFeed
    from guardd.http.server import HttpServer

log = logging.getLogger("guardd.http")

CHART_DAYS = 30


class DaemonBackend:
    """:class:`~guardd.http.backend.Backend` over a running daemon. Use from the daemon's event loop."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    @property
    def config(self) -> Config:
        return self.daemon.config

    async def status(self, now: datetime) -> dict[str, Any]:
        d = self.daemon
        return await status.document(d.config, d.stores, d.evaluator, now)

    async def ingest(self, parsed: Parsed) -> BatchResult:
        return await self.daemon.ingest_pushed(parsed)

    async def manual(
        self, action: Literal["trip", "release"], scope: str, until: datetime | None, reason: str, by: str
    ) -> dict[str, Any]:
        d = self.daemon
        if d.cluster is not None and not d.leads():
            return await self._requested(d.cluster, action, scope, until, reason, by)
        engine = d.engine
        try:
            result = await d.run_exclusive(
                lambda: apply_manual(engine, action, scope, until, reason, by, datetime.now(UTC))
            )
        except ManualNotApplied as lost:  # recorded, then the term ended: the next leader applies it
            if d.cluster is None:
                raise
            return await self._requested(d.cluster, action, scope, until, reason, by, lost.recorded)
        except NotLeader:  # the term ended before anything was recorded
            if d.cluster is None:
                raise
            return await self._requested(d.cluster, action, scope, until, reason, by)
        for note in result.notes:
            log.info("%s", note, extra={"ctx": {"budget": scope}})
        d.worker.request(Step.DELIVER)
        return result.doc.to_json()

    async def _requested(
        self,
        cluster: Cluster,
        action: Literal["trip", "release"],
        scope: str,
        until: datetime | None,
        reason: str,
        by: str,
        recorded: Recorded | None = None,
    ) -> dict[str, Any]:
        """On an instance that does not lead a shared store: record the overrides and the message through the
        plain state (any instance may), then wait for the leader to apply them; its committed switch answers.
        NotApplied (503) when no leader does in time — the overrides stay recorded and apply once one leads.
        ``recorded``: the overrides are written already (this instance's term ended after writing them): only
        the message is queued."""
        from guardd.services.jobs import Engine

        d = self.daemon
        engine = Engine(d.config, d.stores.state, d.evaluator, d.dry_run)

        async def record() -> ManualRequest:
            if recorded is not None:
                return await requested(engine, recorded, datetime.now(UTC))
            await d.evaluator.refresh_series()  # series other instances stored count for a release's hold
            return await request_manual(engine, action, scope, until, reason, by, datetime.now(UTC))

        request = await d.run_exclusive(record)
        for note in request.notes:
            log.info("%s", note, extra={"ctx": {"budget": scope}})
        doc = await cluster.until_applied(request.applied)
        if doc is None:
            raise not_applied(action, scope)
        return doc.to_json()

    def store_error(self) -> str | None:
        error = self.daemon.stores.health.write_error
        return str(error) if error is not None else self.daemon.engine.switch_error

    async def metrics(self, now: datetime) -> MetricsSnapshot:
        d = self.daemon
        engine = d.engine
        last = [engine.last[b.name] for b in d.config.budgets if b.name in engine.last]
        evaluations = await status.with_overrides(last, d.state)  # a budget released by hand is not tripped
        doc = engine.written  # what the file says: its heartbeat and trips, not a decision that failed to reach it
        configured = {path: lg.path for path, lg in zip(d.config.ledger_paths, d.config.settings.ledgers, strict=True)}
        counts = {path: [0, 0] for path in configured.values()}
        for cp in await d.events.checkpoints():
            name = configured.get(cp.ledger)
            if name is not None:
                counts[name][0] += cp.events
                counts[name][1] += cp.quarantined
        notifications: list[NotificationCount] = []
        for count in await d.state.notification_counts():
            notifications.append(NotificationCount(count.url, "delivered", count.delivered))
            notifications.append(NotificationCount(count.url, "failed", count.failed))
        # A ledger file the daemon cannot read (status's ledger_errors) leaves its spend uncounted: the source is
        # as untrustworthy as a silent one, so it is stale here too.
        ledger_stale = bool(d.tailer.unreadable) or any(
            ev.state == "stale" and ev.budget.source == "ledger" for ev in evaluations
        )
        snap = MetricsSnapshot(
            heartbeat_at=doc.heartbeat_at if doc else None,
            evaluations=evaluations,
            switch={name: scope.tripped for name, scope in (doc.scopes.items() if doc else [])},
            ledgers=[LedgerCount(name, c[0], c[1]) for name, c in counts.items()],
            outbox_pending=await d.state.pending_count(),
            notifications=notifications,
            stale={"ledger": ledger_stale},
        )
        if d.config.settings.openrouter is not None:
            from guardd.core.money import parse_money
            from guardd.services.openrouter.view import RemoteView

            remote = await RemoteView(d.config, d.stores.remote).status(now)
            snap.stale["openrouter"] = bool(remote.get("stale"))
            if remote.get("balance") is not None:
                snap.balance = parse_money(remote["balance"])
            for key in remote.get("keys") or []:
                for window in ("daily", "weekly", "monthly", "total"):
                    usage = key.get(f"usage_{window}")
                    if usage is not None:
                        snap.keys.append(KeyUsage(key["key"], window, parse_money(usage)))
        return snap

    async def charts(self, now: datetime) -> Charts:
        d = self.daemon
        settings = d.config.settings.guardd
        cumulative: dict[str, list[tuple[int, int]]] = {}
        for budget in d.config.budgets:
            kinds = budget.calendar_limits()
            if kinds:
                window = window_at(kinds[0][0], settings.zone, now, settings.weekday)
                cumulative[budget.name] = await d.events.hourly_costs(
                    d.evaluator.series_of(budget), window.start, window.end
                )
        daily: list[tuple[Any, str, int]] = []
        today = now.astimezone(settings.zone).date()
        for back in range(CHART_DAYS - 1, -1, -1):
            day = today - timedelta(days=back)
            start, end = local_midnight(day, settings.zone), local_midnight(day + timedelta(days=1), settings.zone)
            for sid, total in (await d.events.grouped_sums(None, start, end)).items():
                dims = d.evaluator.series.get(sid)
                if total.cost:
                    daily.append((day, dims.model if dims else "unknown", total.cost))
        return Charts(cumulative, daily)


class WebService:
    """The HTTP service of one daemon: the switch feed, the app and its server."""

    def __init__(self, daemon: Daemon) -> None:
        from guardd.http.app import create_app
        from guardd.http.feed import SwitchFeed
        from guardd.http.server import HttpServer

        http = daemon.config.settings.http
        assert http is not None
        self.backend = DaemonBackend(daemon)
        self.feed: SwitchFeed = SwitchFeed(daemon.config.settings.guardd.stale_after)
        self.server: HttpServer = HttpServer(create_app(self.backend, self.feed), http)

    def publish(self, doc: SwitchDoc) -> None:
        self.feed.publish(doc.to_json())

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        self.feed.wake_all()
        await self.server.stop()

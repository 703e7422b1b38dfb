"""``/metrics``: a Prometheus collector over a :class:`~.backend.MetricsSnapshot` taken at scrape time.

No global gauges: each scrape builds a registry around one snapshot of the current evaluation, so a budget
removed by a reload disappears at once and label values are bounded by the configuration (budgets, windows,
ledgers, notifiers, keys). Names and label sets follow contract §8. Money is exposed in USD (exposition values
are floats by nature; the exact figures are in ``/v1/status``). A window whose spend is not wholly known has no
``guardd_budget_spend_usd`` sample (never a made-up 0, nor a lower bound that reads as the figure); its budget's
``guardd_budget_state`` says ``stale``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from guardd.core.money import format_json
from guardd.http.backend import MetricsSnapshot

STATES = ("ok", "warning", "critical", "tripped", "stale")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def usd(pico: int) -> float:
    """Pico-dollars as a float of USD, through the exact decimal text (for exposition only)."""
    return float(Decimal(format_json(pico)))


class SnapshotCollector(Collector):
    def __init__(self, snap: MetricsSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        up = GaugeMetricFamily("guardd_up", "1 while the guardd daemon serves this endpoint.")
        up.add_metric([], 1)
        yield up
        if snap.heartbeat_at is not None:
            hb = GaugeMetricFamily(
                "guardd_heartbeat_timestamp_seconds", "When the daemon last evaluated (Unix seconds)."
            )
            hb.add_metric([], snap.heartbeat_at.timestamp())
            yield hb
        yield from self._budgets()
        switch = GaugeMetricFamily("guardd_killswitch_tripped", "1 when the scope is tripped.", labels=["scope"])
        for scope, tripped in sorted(snap.switch.items()):
            switch.add_metric([scope], int(tripped))
        yield switch
        events = CounterMetricFamily("guardd_ledger_events", "Events stored from the ledger.", labels=["ledger"])
        bad = CounterMetricFamily(
            "guardd_ledger_quarantined", "Ledger lines set aside (quarantined).", labels=["ledger"]
        )
        for ledger in snap.ledgers:
            events.add_metric([ledger.ledger], ledger.events)
            bad.add_metric([ledger.ledger], ledger.quarantined)
        yield events
        yield bad
        if snap.balance is not None:
            balance = GaugeMetricFamily("guardd_openrouter_balance_usd", "OpenRouter credits left, in USD.")
            balance.add_metric([], usd(snap.balance))
            yield balance
        keys = GaugeMetricFamily(
            "guardd_openrouter_key_usage_usd", "Usage of an OpenRouter key, in USD.", labels=["key", "window"]
        )
        for k in snap.keys:
            keys.add_metric([k.key, k.window], usd(k.usage))
        yield keys
        stale = GaugeMetricFamily("guardd_source_stale", "1 when the source is stale.", labels=["source"])
        for source, is_stale in sorted(snap.stale.items()):
            stale.add_metric([source], int(is_stale))
        yield stale
        pending = GaugeMetricFamily("guardd_outbox_pending", "Notifications waiting to be delivered.")
        pending.add_metric([], snap.outbox_pending)
        yield pending
        sent = CounterMetricFamily(
            "guardd_notifications", "Notification attempts by result.", labels=["notifier", "result"]
        )
        for n in snap.notifications:
            sent.add_metric([n.notifier, n.result], n.count)
        yield sent

    def _budgets(self) -> Iterator[Metric]:
        labels = ["budget", "window"]
        spend = GaugeMetricFamily("guardd_budget_spend_usd", "Spent in the current window, in USD.", labels=labels)
        limit = GaugeMetricFamily("guardd_budget_limit_usd", "The window's limit, in USD.", labels=labels)
        forecast = GaugeMetricFamily(
            "guardd_budget_forecast_usd", "Projected spend at the window's end, in USD.", labels=labels
        )
        end = GaugeMetricFamily(
            "guardd_budget_window_end_timestamp_seconds", "When the current window ends (Unix seconds).", labels=labels
        )
        state = GaugeMetricFamily(
            "guardd_budget_state", "1 for the budget's current state, 0 for the others.", labels=["budget", "state"]
        )
        for ev in self.snap.evaluations:
            for w in ev.windows:
                key = [ev.name, w.window.name]
                if w.known and w.spent is not None:
                    spend.add_metric(key, usd(w.spent))
                limit.add_metric(key, usd(w.limit))
                if w.forecast is not None:
                    forecast.add_metric(key, usd(w.forecast.projected))
                end.add_metric(key, w.window.end.timestamp())
            for name in STATES:
                state.add_metric([ev.name, name], int(ev.state == name))
        yield from (spend, limit, forecast, end, state)


def exposition(snap: MetricsSnapshot) -> bytes:
    """The text exposition of ``snap``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    return generate_latest(registry)

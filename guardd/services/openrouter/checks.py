"""Checks on OpenRouter's own figures after each poll: low balance, runway, and ledger reconciliation.

- **Low balance**: the account balance (``total_credits - total_usage``, management key) under
  ``openrouter.low_balance`` alerts once, and again only after it recovered above it.
- **Runway**: at the burn rate of the last 24 h of credit snapshots, the balance runs out within
  ``openrouter.runway_warn``: alerted once per local day.
- **Reconciliation**: per key, today's (local day) spend as OpenRouter reports it minus what the ledgers recorded
  for that key; more than ``openrouter.reconcile_tolerance`` alerts once per key and local day
  ("$4.10 spent on key …abc1 today that no ledger recorded").

Each "once" is a marker in the store, set in the same transaction as the alert's outbox rows: restarts do not
repeat an alert, and a failed write loses none (both are left for the next check).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from guardd.config import Config
from guardd.core.budgets import Budget
from guardd.core.keys import resolve
from guardd.core.money import format_human
from guardd.core.periods import window_at
from guardd.core.redact import mask
from guardd.services.jobs import Engine
from guardd.services.openrouter.view import RemoteView
from guardd.store.api import EventsAPI, RemoteAPI


class RemoteChecks:
    def __init__(
        self, config: Config, remote: RemoteAPI, events: EventsAPI, engine: Engine, view: RemoteView | None = None
    ) -> None:
        self.config, self.remote, self.events, self.engine = config, remote, events, engine
        self.state = engine.state
        self.view = view or RemoteView(config, remote)

    async def run(self, now: datetime) -> None:
        await self.balance(now)
        await self.reconcile(now)

    async def balance(self, now: datetime) -> None:
        section = self.config.settings.openrouter
        if section is None:
            return
        latest = await self.remote.latest_credits()
        if latest is None:
            return
        at, usage, balance = latest.at, latest.total_usage, latest.balance
        if section.low_balance is not None:
            low = balance < section.low_balance
            if low:
                await self.engine.notify_system(
                    f"guardd: OpenRouter balance is low ({format_human(balance)})",
                    f"The account balance is {format_human(balance)}, under the configured "
                    f"{format_human(section.low_balance)}. Add credits at https://openrouter.ai/settings/credits.",
                    "warning",
                    now,
                    once=("low_balance", "low"),
                )
            else:
                await self.state.set_marker("low_balance", "ok", now)
        if section.runway_warn is not None:
            day_ago = int((now - timedelta(hours=24)).timestamp() * 1000)
            first = await self.remote.first_credits_since(day_ago)
            if first is None or first.at >= at or usage <= first.total_usage:
                return
            rate_per_ms = (usage - first.total_usage) / (at - first.at)
            runway = timedelta(milliseconds=balance / rate_per_ms) if balance > 0 else timedelta(0)
            today = now.astimezone(self.config.zone).date().isoformat()
            if runway < section.runway_warn:
                await self.engine.notify_system(
                    f"guardd: OpenRouter credits run out in about {_human(runway)}",
                    f"Balance {format_human(balance)}; at the last 24 h's burn rate "
                    f"({format_human(int(rate_per_ms * 3_600_000))}/h) it lasts about {_human(runway)}.",
                    "warning",
                    now,
                    once=("runway", today),
                )

    async def reconcile(self, now: datetime) -> None:
        section = self.config.settings.openrouter
        if section is None or section.reconcile_tolerance is None:
            return
        settings = self.config.settings.guardd
        window = window_at("daily", settings.zone, now, settings.weekday)
        series = await self.events.load_series()
        today = now.astimezone(settings.zone).date().isoformat()
        known = await self.view.known_keys()
        configured = {mask(secret) for secret in section.all_keys()}
        for known_key in [k for k in known if k.ref in configured]:
            key = known_key.ref
            probe = Budget(name="reconcile", match={"key": key}, daily=1)
            remote = await self.view.spend(probe, window, now)
            if remote is None or remote[1]:
                continue  # OpenRouter cannot say for the whole day yet: nothing to compare
            # ledger lines naming this key by any of its names (guardd.core.keys: the one key rule)
            ids = [sid for sid, dims in series.items() if dims.key and resolve(dims.key, known).ref == key]
            local = (await self.events.window_sum(ids, window.start, window.end)).cost if ids else 0
            drift = remote[0] - local
            if drift > section.reconcile_tolerance:
                await self.engine.notify_system(
                    f"guardd: {format_human(drift)} spent on key {key} today that no ledger recorded",
                    f"OpenRouter reports {format_human(remote[0])} for key {key} since "
                    f"{window.start.astimezone(settings.zone).isoformat()}; the ledgers recorded "
                    f"{format_human(local)}. A program may be spending without writing a ledger (or a key leaked).",
                    "warning",
                    now,
                    once=(f"drift:{key}", today),
                )


def _human(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"

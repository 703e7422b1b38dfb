"""Polling OpenRouter every ``poll_every``: per-key usage snapshots, account credits, the keys list (with a
management key), the model price list, and pricing of ledger events that carried no cost.

Failures never become zero spend: the ``sources`` row records since when polling fails and why, and budgets that
use OpenRouter turn stale after ``stale_after``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx

from guardd.adapters.openrouter import OpenRouterClient
from guardd.config import Config
from guardd.core.keys import ref_of
from guardd.core.money import MoneyError, parse_money
from guardd.core.pricing import model_price, price_event
from guardd.core.redact import mask
from guardd.core.usage import UsageEvent
from guardd.errors import SourceError, SourceRejected
from guardd.store.api import Credits, EventsAPI, KeyUsage, ListedKey, Priced, RemoteAPI

log = logging.getLogger("guardd.openrouter")

GENERATION_LOOKUPS_PER_POLL = 20


def _money(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return parse_money(value)
    except MoneyError:
        return None


def _usage(ms: int, ref: str, info: dict[str, Any]) -> KeyUsage:
    """A snapshot of one key from a ``/key`` answer or a ``/keys`` entry."""
    return KeyUsage(
        ms,
        ref,
        info.get("label"),
        _money(info.get("usage")),
        _money(info.get("usage_daily")),
        _money(info.get("usage_weekly")),
        _money(info.get("usage_monthly")),
        _money(info.get("limit")),
        _money(info.get("limit_remaining")),
        info.get("limit_reset"),
        bool(info.get("disabled")),
    )


def _pricing(model: dict[str, Any]) -> dict[str, object]:
    pricing = model.get("pricing")
    return dict(pricing) if isinstance(pricing, dict) else {}


class RemotePoller:
    def __init__(
        self,
        config: Config,
        remote: RemoteAPI,
        events: EventsAPI,
        dry_run: bool = False,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        section = config.settings.openrouter
        assert section is not None
        self.config, self.section, self.remote, self.events, self.dry_run = config, section, remote, events, dry_run
        self.http = http or httpx.AsyncClient(timeout=section.timeout.total_seconds())
        self.client = OpenRouterClient(self.http, section.base_url)
        self._prices_at: datetime | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def poll(self, now: datetime) -> None:
        errors: list[tuple[str, bool]] = []
        ms = int(now.timestamp() * 1000)
        rows: list[KeyUsage] = []
        for key in self.section.all_keys():
            try:
                info = await self.client.key_info(key)
            except SourceError as exc:
                errors.append((str(exc), isinstance(exc, SourceRejected)))
                continue
            rows.append(_usage(ms, mask(key), info))
        credits: Credits | None = None
        management = self.section.management_key
        if management is not None:
            mk = management.get_secret_value()
            try:
                data = await self.client.credits(mk)
                total, used = _money(data.get("total_credits")), _money(data.get("total_usage"))
                if total is not None and used is not None:
                    credits = Credits(ms, total, used)
                rows += await self._keys(mk, now)
            except SourceError as exc:
                errors.append((str(exc), isinstance(exc, SourceRejected)))
        failure = "; ".join(e for e, _ in errors)[:1000] if errors else None
        await self.remote.save_poll(rows, credits, failure, all(p for _, p in errors), now)
        for message, _ in errors:
            log.warning("OpenRouter poll failed: %s", message)
        log.debug(
            "polled OpenRouter",
            extra={"ctx": {"keys": len(rows), "credits": credits is not None, "errors": len(errors)}},
        )
        await self._prices(now)

    async def _keys(self, management_key: str, now: datetime) -> list[KeyUsage]:
        """Store the ``/keys`` list (every page, disabled keys included); return a usage snapshot per key, so that
        a key a budget names only by its name or hash has figures too (under the same handle as its secret's when
        that is polled as well: :func:`guardd.core.keys.ref_of`)."""
        keys = [k for k in await self.client.list_keys(management_key) if isinstance(k.get("hash"), str)]
        listed = [
            ListedKey(
                k["hash"],
                k.get("name"),
                k.get("label"),
                bool(k.get("disabled")),
                usage_daily=_money(k.get("usage_daily")),
                limit=_money(k.get("limit")),
                limit_remaining=_money(k.get("limit_remaining")),
            )
            for k in keys
        ]
        await self.remote.save_keys(listed, now)
        ms = int(now.timestamp() * 1000)
        return [_usage(ms, ref_of(k.get("label"), k["hash"]), k) for k in keys]

    async def _prices(self, now: datetime) -> None:
        """Refresh the catalog when due (or when unpriced events await a price) and price what it can."""
        unpriced = await self.events.unpriced_events()
        due = self._prices_at is None or now - self._prices_at >= self.section.refresh_prices_every
        if due or unpriced:
            known = await self.remote.priced_models()
            if due or any(u.model not in known for u in unpriced):
                try:
                    models = await self.client.models()
                except SourceError as exc:
                    log.warning("cannot refresh the model price list: %s", exc)
                    return
                pricing = {m["id"]: _pricing(m) for m in models if "id" in m}
                await self.remote.save_prices(pricing, now)
                self._prices_at = now
        if not unpriced:
            return
        catalog = await self.remote.catalog()
        priced: list[Priced] = []
        lookups = GENERATION_LOOKUPS_PER_POLL if self.section.price_from_generation else 0
        keys = self.section.all_keys()
        for u in unpriced:
            gen = u.generation_id
            if gen and lookups > 0 and keys:
                # The exact figure OpenRouter billed, when the event carries its generation id (rate-limited).
                lookups -= 1
                try:
                    record = await self.client.generation(keys[0], gen, attempts=1)
                except SourceError as exc:
                    log.debug("no /generation record for %s: %s", gen, exc)
                    record = None
                cost = _money(record.get("total_cost")) if record else None
                if cost is not None and cost >= 0:
                    priced.append(Priced(u.id, cost))
                    continue
            tokens = (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens)
            if not any(tokens):
                # No token counts: nothing to price from (a stream stopped before its usage chunk, a line that
                # gave none). Priced from the catalog it would be a silent $0; it stays unpriced instead.
                continue
            price = model_price(catalog[u.model]) if u.model in catalog else None
            if price is None:
                continue
            event = UsageEvent(0, u.model, None, None, *tokens)
            priced.append(Priced(u.id, price_event(event, price)))
        if priced and not self.dry_run:
            count = await self.events.set_cost(priced)
            log.info("priced %d ledger event(s) from the model catalog", count)

"""What guardd stored of OpenRouter (:class:`~guardd.store.api.RemoteAPI`), written once for both backends.

Tables (both schemas): ``or_usage`` (a snapshot per key handle and poll time), ``or_credits`` (per poll time),
``or_keys`` (the ``/keys`` list by hash, with ``disabled_by_guardd``), ``sources`` (how polling stands) and
``prices`` (the catalog's pricing objects by model). The SQL below is the part SQLite and PostgreSQL share; the
:class:`~guardd.store.dialect.Dialect` of the backend converts placeholders, money, times, flags and JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from guardd.store.dialect import Db, Dialect

if TYPE_CHECKING:
    from guardd.store.api import Credits, KeyUsage, ListedKey, SourceState

_USAGE_COLUMNS = (
    "at, key, label, usage, usage_daily, usage_weekly, usage_monthly, lim, limit_remaining, limit_reset, disabled"
)


class RemoteStore:
    """OpenRouter's snapshots, credits, keys list, polling state and catalog in one open database."""

    def __init__(self, db: Db, dialect: Dialect) -> None:
        self.db, self.d = db, dialect

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
        return await self.db.fetchall(self.d.sql(sql), params)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.db.fetchone(self.d.sql(sql), params)

    # ---- a poll -------------------------------------------------------------------------------------------
    async def save_poll(
        self, usage: Sequence[KeyUsage], credits: Credits | None, error: str | None, permanent: bool, now: datetime
    ) -> None:
        d = self.d
        async with self.db.transaction("openrouter") as conn:
            await d.executemany(
                conn,
                f"INSERT INTO or_usage({_USAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (key, at) DO UPDATE"
                " SET label = excluded.label, usage = excluded.usage, usage_daily = excluded.usage_daily,"
                " usage_weekly = excluded.usage_weekly, usage_monthly = excluded.usage_monthly, lim = excluded.lim,"
                " limit_remaining = excluded.limit_remaining, limit_reset = excluded.limit_reset,"
                " disabled = excluded.disabled",
                [
                    (
                        u.at,
                        u.key,
                        u.label,
                        d.money(u.usage),
                        d.money(u.usage_daily),
                        d.money(u.usage_weekly),
                        d.money(u.usage_monthly),
                        d.money(u.limit),
                        d.money(u.limit_remaining),
                        u.limit_reset,
                        d.flag(u.disabled),
                    )
                    for u in usage
                ],
            )
            if credits is not None:
                await d.execute(
                    conn,
                    "INSERT INTO or_credits(at, total_credits, total_usage) VALUES (?,?,?) ON CONFLICT (at) DO UPDATE"
                    " SET total_credits = excluded.total_credits, total_usage = excluded.total_usage",
                    (credits.at, d.money(credits.total_credits), d.money(credits.total_usage)),
                )
            if error is not None:
                await d.execute(
                    conn,
                    "INSERT INTO sources(name, failing_since, error, permanent) VALUES ('openrouter', ?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET failing_since = coalesce(sources.failing_since,"
                    " excluded.failing_since), error = excluded.error, permanent = excluded.permanent",
                    (d.time(now), error, d.flag(permanent)),
                )
            else:
                await d.execute(
                    conn,
                    "INSERT INTO sources(name, ok_at, permanent) VALUES ('openrouter', ?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET ok_at = excluded.ok_at, failing_since = NULL, error = NULL,"
                    " permanent = excluded.permanent",
                    (d.time(now), d.flag(False)),
                )

    async def source(self, name: str) -> SourceState | None:
        from guardd.store.api import (
            SourceState,  # here, not above: status imports this module and builds it only when OpenRouter is polled
        )

        row = await self._one("SELECT ok_at, failing_since, error, permanent FROM sources WHERE name = ?", (name,))
        if row is None:
            return None
        return SourceState(self.d.when(row[0]), self.d.when(row[1]), row[2], bool(row[3]))

    # ---- usage snapshots ----------------------------------------------------------------------------------
    def _usage(self, row: Sequence[Any]) -> KeyUsage:
        from guardd.store.api import (
            KeyUsage,  # here, not above: status imports this module and builds it only when OpenRouter is polled
        )

        m = self.d.pico
        return KeyUsage(
            int(row[0]), row[1], row[2], m(row[3]), m(row[4]), m(row[5]), m(row[6]), m(row[7]), m(row[8]), row[9],
            bool(row[10]),
        )  # fmt: skip

    async def polled_keys(self) -> dict[str, str | None]:
        return {key: label for key, label in await self._all("SELECT key, max(label) FROM or_usage GROUP BY key")}

    async def latest_usage(self, key: str | None = None) -> list[KeyUsage]:
        where = "" if key is None else " AND u.key = ?"
        rows = await self._all(
            f"SELECT {_USAGE_COLUMNS} FROM or_usage u WHERE u.at = (SELECT max(at) FROM or_usage WHERE key = u.key)"
            f"{where} ORDER BY u.key",
            () if key is None else (key,),
        )
        return [self._usage(r) for r in rows]

    async def usage_before(self, key: str, at: int) -> int | None:
        row = await self._one(
            "SELECT usage FROM or_usage WHERE key = ? AND at <= ? ORDER BY at DESC LIMIT 1", (key, at)
        )
        return None if row is None else self.d.pico(row[0])

    async def usage_after(self, key: str, at: int) -> int | None:
        row = await self._one("SELECT usage FROM or_usage WHERE key = ? AND at >= ? ORDER BY at LIMIT 1", (key, at))
        return None if row is None else self.d.pico(row[0])

    # ---- credits --------------------------------------------------------------------------------------------
    def _credits(self, row: Sequence[Any] | None) -> Credits | None:
        from guardd.store.api import (
            Credits,  # here, not above: status imports this module and builds it only when OpenRouter is polled
        )

        if row is None:
            return None
        return Credits(int(row[0]), self.d.pico(row[1]) or 0, self.d.pico(row[2]) or 0)

    async def latest_credits(self) -> Credits | None:
        return self._credits(
            await self._one("SELECT at, total_credits, total_usage FROM or_credits ORDER BY at DESC LIMIT 1")
        )

    async def first_credits_since(self, at: int) -> Credits | None:
        return self._credits(
            await self._one(
                "SELECT at, total_credits, total_usage FROM or_credits WHERE at >= ? ORDER BY at LIMIT 1", (at,)
            )
        )

    # ---- the /keys list -------------------------------------------------------------------------------------
    async def save_keys(self, keys: Sequence[ListedKey], now: datetime) -> None:
        d = self.d
        async with self.db.transaction("openrouter") as conn:
            await d.executemany(
                conn,
                "INSERT INTO or_keys(hash, name, label, disabled, usage_daily, lim, limit_remaining, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (hash) DO UPDATE SET name = excluded.name,"
                " label = excluded.label, disabled = excluded.disabled, usage_daily = excluded.usage_daily,"
                # listed enabled: no longer guardd's doing (disabled_by_guardd becomes false, i.e. excluded.disabled)
                " disabled_by_guardd = CASE WHEN excluded.disabled THEN or_keys.disabled_by_guardd"
                " ELSE excluded.disabled END,"
                " lim = excluded.lim, limit_remaining = excluded.limit_remaining, updated_at = excluded.updated_at"
                # A list fetched before guardd last switched this key (the fetch runs beside the worker) is older
                # than that record: it must not undo it, or a key guardd disabled would never be re-enabled.
                " WHERE or_keys.updated_at <= excluded.updated_at",
                [
                    (
                        k.hash,
                        k.name,
                        k.label,
                        d.flag(k.disabled),
                        d.money(k.usage_daily),
                        d.money(k.limit),
                        d.money(k.limit_remaining),
                        d.time(now),
                    )
                    for k in keys
                ],
            )

    async def listed_keys(self) -> list[ListedKey]:
        from guardd.store.api import (
            ListedKey,  # here, not above: status imports this module and builds it only when OpenRouter is polled
        )

        rows = await self._all(
            "SELECT hash, name, label, disabled, disabled_by_guardd, usage_daily, lim, limit_remaining FROM or_keys"
            " ORDER BY hash"
        )
        m = self.d.pico
        return [ListedKey(r[0], r[1], r[2], bool(r[3]), bool(r[4]), m(r[5]), m(r[6]), m(r[7])) for r in rows]

    # ---- the catalog ----------------------------------------------------------------------------------------
    async def save_prices(self, pricing: dict[str, dict[str, object]], now: datetime) -> None:
        d = self.d
        async with self.db.transaction("openrouter") as conn:
            await d.executemany(
                conn,
                "INSERT INTO prices(model, pricing, fetched_at) VALUES (?,?,?) ON CONFLICT (model) DO UPDATE"
                " SET pricing = excluded.pricing, fetched_at = excluded.fetched_at",
                [(model, d.json(p), d.time(now)) for model, p in pricing.items()],
            )

    async def priced_models(self) -> set[str]:
        return {model for (model,) in await self._all("SELECT model FROM prices")}

    async def catalog(self) -> dict[str, dict[str, object]]:
        return {model: self.d.unjson(p) for model, p in await self._all("SELECT model, pricing FROM prices")}

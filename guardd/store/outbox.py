"""The notification outbox and the channels' health, written once for both backends; the base of
:class:`~guardd.store.state.StateStore`, with the helpers every state row uses.

The outbox is how no alert is lost and none is sent twice: evaluation writes the new alert state and one outbox
row per channel in the same transaction; a deliverer *claims* rows with an expiring lease (one ``UPDATE … WHERE id
IN (SELECT … LIMIT n) RETURNING``, and on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so deliverers on any host never
claim one row), sends, and marks a row delivered only after the channel confirmed. A crash before the mark leaves
the row claimable again once the lease expires — the one window in which a message can be sent twice is between
the channel accepting it and the mark being committed (milliseconds).

Every message is stored, and so sent, with every secret in its text redacted. A channel's latest result is kept per
redacted URL (:meth:`Outbox.channel_result`), so that ``status`` can say since when a channel fails. The SQL is what
SQLite and PostgreSQL share, through the backend's :class:`~guardd.store.dialect.Dialect`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from guardd.core.redact import redact_text
from guardd.store.api import ChannelHealth
from guardd.store.dialect import Db, Dialect

if TYPE_CHECKING:
    from guardd.store.api import ChannelCount, Message, OutboxRow

_HISTORY = "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)"
_OUTBOX_ROW = "id, budget, severity, title, body, notifier, notifier_url, attempts, created_at"


class Outbox:
    """The outbox rows and channel health of one open database (see the module's docstring). Safe for concurrent
    callers: each method that writes is one transaction."""

    def __init__(self, db: Db, dialect: Dialect) -> None:
        self.db, self.d = db, dialect
        self._win = dialect.window_column

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
        return await self.db.fetchall(self.d.sql(sql), params)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.db.fetchone(self.d.sql(sql), params)

    async def _history(self, conn: Any, rows: Sequence[tuple[datetime, str, str | None, str]]) -> None:
        await self.d.executemany(conn, _HISTORY, [(self.d.time(at), k, b, detail) for at, k, b, detail in rows])

    # ---- outbox -----------------------------------------------------------------------------------------
    async def _enqueue(self, conn: Any, messages: list[Message], now: datetime) -> None:
        # A message is stored, and so sent, with every secret in its text redacted, whatever it was built from.
        at = self.d.time(now)
        await self.d.executemany(
            conn,
            "INSERT INTO outbox(created_at, budget, severity, title, body, notifier, notifier_url, next_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                (at, m.budget, m.severity, redact_text(m.title), redact_text(m.body), m.notifier, m.notifier_url, at)
                for m in messages
            ],
        )

    async def enqueue(
        self, messages: list[Message], now: datetime, history: tuple[str | None, str] | None = None
    ) -> None:
        """Queue ``messages`` and, with ``history = (budget, detail)``, their ``alert`` history line, together."""
        async with self.db.transaction("state") as conn:
            await self._enqueue(conn, messages, now)
            if history is not None:
                await self._history(conn, [(now, "alert", *history)])

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows for ``owner`` until ``now + lease``; a row is claimed by one owner (rows
        another deliverer is claiming at the same moment are skipped, never waited for)."""
        from guardd.store.api import OutboxRow  # here, not above: status imports this module but never builds it

        d = self.d
        async with self.db.transaction("state") as conn:
            cur = await d.execute(
                conn,
                "UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE id IN (SELECT id FROM outbox"
                " WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?"
                f" AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?{d.skip_locked}) RETURNING"
                f" {_OUTBOX_ROW}",
                (d.time(now + lease), owner, d.time(now), d.time(now), limit),
            )
            rows = await cur.fetchall()
        return [
            OutboxRow(*r[1:7], id=r[0], attempts=r[7], created_at=d.when(r[8]) or now)
            for r in sorted(rows, key=lambda r: int(r[0]))
        ]

    async def release_dead_leases(self, instance: str) -> int:
        """Free leases held by processes of this instance that no longer run (a guardd killed mid-delivery).

        A claim's owner is ``<claimant>:pid`` (:attr:`guardd.services.jobs.Engine.owner`; the daemon passes its
        ``claimant``, the instance name and its pid space, as ``instance``); only claims whose part before the pid
        is exactly ``instance`` are looked at (a pid means something only where it runs: another instance's claim,
        or this instance's from another container, is never freed here — it waits out its lease). Without this a
        killed daemon's rows wait out their lease before anyone may send them.
        """
        rows = await self._all(
            "SELECT id, lease_owner FROM outbox WHERE lease_until IS NOT NULL AND delivered_at IS NULL"
            " AND failed_at IS NULL AND lease_owner IS NOT NULL"
        )
        dead = []
        for row_id, owner in rows:
            name, _, pid = str(owner).rpartition(":")
            if name != instance or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                dead.append((row_id, owner))
            except PermissionError:
                continue  # alive, another user's
        if dead:
            async with self.db.transaction("state") as conn:
                await self.d.executemany(
                    conn,
                    "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ? AND lease_owner = ?",
                    dead,  # a claim taken since (by a live sender) is not freed
                )
        return len(dead)

    async def delivered(self, row: OutboxRow, now: datetime) -> None:
        async with self.db.transaction("state") as conn:
            await self.d.execute(
                conn,
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, lease_until = NULL WHERE id = ?",
                (self.d.time(now), row.id),
            )
            await self._history(conn, [(now, "delivery", row.budget, f"delivered to {row.notifier_url}: {row.title}")])

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retry at ``retry_at``, or give the row up when it is None."""
        d = self.d
        async with self.db.transaction("state") as conn:
            if retry_at is None:
                await d.execute(
                    conn,
                    "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = ?",
                    (d.time(now), error, row.id),
                )
                await self._history(conn, [(now, "delivery", row.budget, f"gave up on {row.notifier_url}: {error}")])
            else:
                await d.execute(
                    conn,
                    "UPDATE outbox SET next_at = ?, last_error = ?, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = ?",
                    (d.time(retry_at), error, row.id),
                )

    async def hasten(self, configured: Sequence[str], now: datetime) -> int:
        """Make every waiting row whose notifier URL is not among ``configured`` (redacted URLs) due at ``now``;
        return how many. Such a row's next try was set by the backoff of a URL no longer in the configuration."""
        d = self.d
        unknown = f" AND notifier_url NOT IN ({', '.join('?' * len(configured))})" if configured else ""
        async with self.db.transaction("state") as conn:
            cur = await d.execute(
                conn,
                "UPDATE outbox SET next_at = ? WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at > ?"
                + unknown,
                (d.time(now), d.time(now), *configured),
            )
            return max(int(cur.rowcount or 0), 0)

    async def addressed(self, row: OutboxRow) -> set[str]:
        """The notifiers (redacted URLs) ``row``'s message was queued for, its own included: the rows queued with it
        (one time, one title), whatever became of them. Tells a notifier that replaced ``row``'s own from one that
        had its own copy all along."""
        rows = await self._all(
            "SELECT notifier_url FROM outbox WHERE created_at = ? AND title = ?",
            (self.d.time(row.created_at), row.title),
        )
        return {str(r[0]) for r in rows}

    async def reroute(self, row: OutboxRow, notifier: int, url: str, why: str, now: datetime) -> None:
        """Send ``row`` through notifier ``notifier`` (redacted ``url``) from now on, with a ``delivery`` history line
        saying from where, to where and ``why``; a row delivered or given up meanwhile is left as it is."""
        async with self.db.transaction("state") as conn:
            await self.d.execute(
                conn,
                "UPDATE outbox SET notifier = ?, notifier_url = ? WHERE id = ? AND delivered_at IS NULL"
                " AND failed_at IS NULL",
                (notifier, url, row.id),
            )
            detail = f"re-routed from {row.notifier_url} to {url}: {why}"
            await self._history(conn, [(now, "delivery", row.budget, detail)])

    async def given_up(self, since: datetime, error: str) -> list[tuple[str | None, str, str, datetime]]:
        """The rows given up at or after ``since`` with the last error ``error``, oldest first, as
        ``(budget, notifier URL, title, when)``: for ``status`` and ``check`` to say which alerts were dropped."""
        rows = await self._all(
            "SELECT budget, notifier_url, title, failed_at FROM outbox WHERE failed_at >= ? AND last_error = ?"
            " ORDER BY failed_at, id",
            (self.d.time(since), error),
        )
        return [(r[0], str(r[1]), str(r[2]), self.d.when(r[3]) or since) for r in rows]

    async def pending_count(self) -> int:
        row = await self._one("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL")
        return int(row[0]) if row else 0

    # ---- notifier health ----------------------------------------------------------------------------------
    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool:
        """Record a channel's latest result; return True when it just started failing (for the meta-alert)."""
        d = self.d
        async with self.db.transaction("state") as conn:
            cur = await d.execute(conn, f"SELECT ok FROM notifier_health WHERE notifier_url = ?{d.for_update}", (url,))
            row = await cur.fetchone()
            was_ok = row is None or bool(row[0])
            if ok:
                await d.execute(
                    conn,
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since, last_success)"
                    " VALUES (?, ?, NULL, NULL, ?) ON CONFLICT (notifier_url) DO UPDATE SET ok = excluded.ok,"
                    " failing_since = NULL, last_success = excluded.last_success, meta_alerted = ?",
                    (url, d.flag(True), d.time(now), d.flag(False)),
                )
            else:
                await d.execute(
                    conn,
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (notifier_url) DO UPDATE SET ok = excluded.ok, last_error = excluded.last_error,"
                    " failing_since = coalesce(notifier_health.failing_since, excluded.failing_since)",
                    (url, d.flag(False), error, d.time(now)),
                )
        return was_ok and not ok

    async def notification_counts(self) -> list[ChannelCount]:
        """Per notifier (redacted URL): ``(url, delivered messages, failed attempts)`` over the outbox."""
        from guardd.store.api import ChannelCount  # here, not above: status imports this module but never builds it

        rows = await self._all(
            "SELECT notifier_url, count(delivered_at), coalesce(sum(attempts), 0) - count(delivered_at)"
            " FROM outbox GROUP BY notifier_url ORDER BY notifier_url"
        )
        return [ChannelCount(str(url), int(ok), int(failed)) for url, ok, failed in rows]

    async def channel_health(self) -> dict[str, ChannelHealth]:
        rows = await self._all("SELECT notifier_url, ok, last_error, failing_since FROM notifier_health")
        return {r[0]: ChannelHealth(bool(r[1]), r[2], self.d.when(r[3])) for r in rows}

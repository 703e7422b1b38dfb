"""Alert state, the outbox, channel health, overrides, silences, history, the switch document and markers in
the shared store: the PostgreSQL side of :class:`guardd.store.api.StateAPI`, with the SQLite store's
behaviour (:mod:`guardd.store.sqlite.state`; the contract suite runs both).

Claiming outbox rows is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``: concurrent deliverers,
on any instance, never claim the same row, and none waits for another's claim. Times are ``timestamptz``; they
come back in the SQLite store's forms (aware datetimes, or RFC 3339 UTC text where SQLite returns text).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime, timedelta

from psycopg import AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from guardd.core.alerts import AlertState
from guardd.core.redact import redact_text
from guardd.core.switch import Override, ScopeChange, SwitchDoc
from guardd.store.api import PENDING_KEYS, Message, OutboxRow, SwitchStep
from guardd.store.postgres.db import Conn, PgStore
from guardd.store.shared import doc_from_json, iso

_HISTORY = "INSERT INTO history(at, kind, budget, detail) VALUES (%s, %s, %s, %s)"


class PgStateStore:
    """The state rows of one :class:`PgStore`, shared by every instance. Safe for concurrent callers."""

    def __init__(self, store: PgStore) -> None:
        self.store = store

    # ---- alert state ------------------------------------------------------------------------------------
    async def alert_states(self, budget: str) -> dict[str, AlertState]:
        rows = await self.store.fetchall(
            "SELECT win, instance, level, tripped, forecast, critical, notified_at FROM alert_state WHERE budget = %s",
            (budget,),
        )
        return {r[0]: AlertState(r[0], r[1], float(r[2]), r[3], r[4], r[5], r[6]) for r in rows}

    async def save_alerts(
        self,
        budget: str,
        states: dict[str, AlertState],
        messages: list[Message],
        history: list[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Persist the new alert states of ``budget`` with their outbox rows and history, in one transaction."""
        async with self.store.transaction() as conn:
            await conn.execute("DELETE FROM alert_state WHERE budget = %s", (budget,))
            cur = conn.cursor()
            await cur.executemany(
                "INSERT INTO alert_state(budget, win, instance, level, tripped, forecast, critical, notified_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (budget, s.window, s.instance, s.level, s.tripped, s.forecast, s.critical, s.notified_at)
                    for s in states.values()
                ],
            )
            await _enqueue(cur, messages, now)
            await cur.executemany(_HISTORY, [(now, kind, budget, detail) for kind, detail in history])

    # ---- outbox -----------------------------------------------------------------------------------------
    async def enqueue(
        self, messages: list[Message], now: datetime, history: tuple[str | None, str] | None = None
    ) -> None:
        """Queue ``messages`` and, with ``history = (budget, detail)``, their ``alert`` history line, together."""
        async with self.store.transaction() as conn:
            await _enqueue(conn.cursor(), messages, now)
            if history is not None:
                await conn.execute(_HISTORY, (now, "alert", *history))

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows for ``owner`` until ``now + lease``; rows another caller is claiming at
        the same moment are skipped, so no row is claimed twice."""
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET lease_until = %(until)s, lease_owner = %(owner)s WHERE id IN ("
                " SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= %(now)s"
                " AND (lease_until IS NULL OR lease_until < %(now)s) ORDER BY id LIMIT %(limit)s"
                " FOR UPDATE SKIP LOCKED)"
                " RETURNING id, budget, severity, title, body, notifier, notifier_url, attempts, created_at",
                {"until": now + lease, "owner": owner, "now": now, "limit": limit},
            )
            rows = await cur.fetchall()
        return [OutboxRow(*r[1:7], id=r[0], attempts=r[7], created_at=r[8]) for r in sorted(rows)]

    async def release_dead_leases(self, host: str) -> int:
        """Free leases held by processes of this host that no longer run (a guardd killed mid-delivery)."""
        rows = await self.store.fetchall(
            "SELECT id, lease_owner FROM outbox WHERE lease_until IS NOT NULL AND delivered_at IS NULL"
            " AND failed_at IS NULL AND lease_owner LIKE %s",
            (f"{host}:%",),
        )
        dead = []
        for row_id, owner in rows:
            try:
                os.kill(int(owner.rsplit(":", 1)[1]), 0)
            except ProcessLookupError:
                dead.append(row_id)
            except PermissionError:
                continue  # alive, another user's
        if dead:
            async with self.store.transaction() as conn:
                await conn.execute(
                    "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ANY(%s)", (dead,)
                )
        return len(dead)

    async def delivered(self, row: OutboxRow, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET delivered_at = %s, attempts = attempts + 1, lease_until = NULL WHERE id = %s",
                (now, row.id),
            )
            await conn.execute(_HISTORY, (now, "delivery", row.budget, f"delivered to {row.notifier_url}: {row.title}"))

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retry at ``retry_at``, or give the row up when it is None."""
        async with self.store.transaction() as conn:
            if retry_at is None:
                await conn.execute(
                    "UPDATE outbox SET failed_at = %s, last_error = %s, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = %s",
                    (now, error, row.id),
                )
                await conn.execute(_HISTORY, (now, "delivery", row.budget, f"gave up on {row.notifier_url}: {error}"))
            else:
                await conn.execute(
                    "UPDATE outbox SET next_at = %s, last_error = %s, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = %s",
                    (retry_at, error, row.id),
                )

    async def pending_count(self) -> int:
        row = await self.store.fetchone("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL")
        return int(row[0]) if row else 0

    # ---- notifier health ----------------------------------------------------------------------------------
    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool:
        """Record a channel's latest result; return True when it just started failing (for the meta-alert)."""
        async with self.store.transaction() as conn:
            cur = await conn.execute("SELECT ok FROM notifier_health WHERE notifier_url = %s FOR UPDATE", (url,))
            row = await cur.fetchone()
            was_ok = row is None or bool(row[0])
            if ok:
                await conn.execute(
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since, last_success)"
                    " VALUES (%s, true, NULL, NULL, %s) ON CONFLICT (notifier_url) DO UPDATE SET ok = true,"
                    " failing_since = NULL, last_success = excluded.last_success, meta_alerted = false",
                    (url, now),
                )
            else:
                await conn.execute(
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since)"
                    " VALUES (%s, false, %s, %s)"
                    " ON CONFLICT (notifier_url) DO UPDATE SET ok = false, last_error = excluded.last_error,"
                    " failing_since = coalesce(notifier_health.failing_since, excluded.failing_since)",
                    (url, error, now),
                )
        return was_ok and not ok

    async def notification_counts(self) -> list[tuple[str, int, int]]:
        """Per notifier (redacted URL): ``(url, delivered messages, failed attempts)`` over the outbox."""
        rows = await self.store.fetchall(
            "SELECT notifier_url, count(delivered_at), coalesce(sum(attempts), 0) - count(delivered_at)"
            " FROM outbox GROUP BY notifier_url ORDER BY notifier_url"
        )
        return [(str(url), int(ok), int(failed)) for url, ok, failed in rows]

    async def channel_health(self) -> dict[str, tuple[bool, str | None, str | None]]:
        rows = await self.store.fetchall("SELECT notifier_url, ok, last_error, failing_since FROM notifier_health")
        return {r[0]: (bool(r[1]), r[2], iso(r[3])) for r in rows}

    # ---- overrides, silences, history ---------------------------------------------------------------------
    async def overrides(self) -> list[Override]:
        rows = await self.store.fetchall("SELECT scope, state, by, reason, until, created_at FROM overrides")
        return [Override(*r) for r in rows]

    async def set_override(self, override: Override, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO overrides(scope, state, until, by, reason, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (scope) DO UPDATE SET state = excluded.state, until = excluded.until, by = excluded.by,"
                " reason = excluded.reason, created_at = excluded.created_at",
                (override.scope, override.state, override.until, override.by, override.reason, now),
            )
            until = f" until {iso(override.until)}" if override.until else ""
            detail = f"{override.state} by {override.by}{until}: {override.reason or 'no reason given'}"
            await conn.execute(_HISTORY, (now, "override", override.scope, detail))

    async def remove_override(self, scope: str, now: datetime, why: str) -> None:
        async with self.store.transaction() as conn:
            await conn.execute("DELETE FROM overrides WHERE scope = %s", (scope,))
            await conn.execute(_HISTORY, (now, "override", scope, why))

    async def add_silence(self, budget: str, until: datetime, reason: str, by: str, now: datetime) -> int:
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO silences(budget, until, reason, by, created_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (budget, until, reason, by, now),
            )
            row = await cur.fetchone()
            detail = f"silenced by {by} until {iso(until)}: {reason or 'no reason given'}"
            await conn.execute(_HISTORY, (now, "silence", budget, detail))
            return int(row[0]) if row else 0

    async def silences(self, now: datetime) -> list[tuple[int, str, datetime, str, str]]:
        rows = await self.store.fetchall(
            "SELECT id, budget, until, reason, by FROM silences WHERE until > %s ORDER BY until", (now,)
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def remove_silence(self, silence_id: int, by: str, now: datetime) -> bool:
        async with self.store.transaction() as conn:
            cur = await conn.execute("DELETE FROM silences WHERE id = %s RETURNING budget", (silence_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(_HISTORY, (now, "silence", row[0], f"silence {silence_id} removed by {by}"))
            return True

    async def add_history(self, kind: str, budget: str | None, detail: str, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(_HISTORY, (now, kind, budget, detail))

    async def history(self, since: datetime | None, limit: int = 1000) -> list[tuple[str, str, str | None, str]]:
        rows = await self.store.fetchall(
            "SELECT at, kind, budget, detail FROM history WHERE %(since)s::timestamptz IS NULL OR at >= %(since)s"
            " ORDER BY at DESC, id DESC LIMIT %(limit)s",
            {"since": since, "limit": limit},
        )
        return [(iso(r[0]) or "", r[1], r[2], r[3]) for r in rows]

    # ---- switch document and markers ----------------------------------------------------------------------
    async def switch_doc(self) -> SwitchDoc | None:
        row = await self.store.fetchone("SELECT doc FROM switch_state WHERE id = 1")
        return None if row is None else doc_from_json(row[0])

    async def update_switch(self, step: SwitchStep, now: datetime) -> SwitchDoc:
        """Read the stored switch document (locked until the commit), let ``step`` decide from it, and save the
        decision — document, history, pending key changes — in one transaction, before any other side effect."""
        async with self.store.transaction() as conn:
            cur = await conn.execute("SELECT doc FROM switch_state WHERE id = 1 FOR UPDATE")
            row = await cur.fetchone()
            decision = step(None if row is None else doc_from_json(row[0]))
            if decision.save:
                await conn.execute(
                    "INSERT INTO switch_state(id, doc) VALUES (1, %s)"
                    " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                    (Jsonb(decision.doc.to_json()),),
                )
                await conn.cursor().executemany(
                    _HISTORY, [(now, "switch", scope, detail) for scope, detail in decision.history]
                )
            if decision.key_changes:
                await _set_pending(conn, await _pending(conn) + list(decision.key_changes), now)
        return decision.doc

    # ---- the key switch's records ---------------------------------------------------------------------------
    async def pending_key_changes(self) -> list[ScopeChange]:
        """Scope changes saved with a switch decision whose keys are not all switched and recorded yet."""
        raw = await self.marker(PENDING_KEYS)
        return [ScopeChange(**item) for item in json.loads(raw)] if raw else []

    async def key_change_done(self, change: ScopeChange, now: datetime) -> None:
        """Forget the oldest pending ``change``: every key it touched is switched and recorded."""
        async with self.store.transaction() as conn:
            pending = await _pending(conn)
            if change in pending:
                pending.remove(change)
            await _set_pending(conn, pending, now)

    async def record_key(
        self, key_hash: str, disabled: bool, messages: list[Message], history: str, now: datetime
    ) -> None:
        """Record that guardd switched OpenRouter key ``key_hash`` (off: as guardd's doing), with its notice's
        outbox rows and history, in one transaction."""
        async with self.store.transaction() as conn:
            await conn.execute(
                "UPDATE or_keys SET disabled = %s, disabled_by_guardd = %s, updated_at = %s WHERE hash = %s",
                (disabled, disabled, now, key_hash),
            )
            await _enqueue(conn.cursor(), messages, now)
            await conn.execute(_HISTORY, (now, "keys", None, history))

    async def notify_once(
        self, name: str, value: str, messages: list[Message], history: str | None, now: datetime
    ) -> bool:
        """Set marker ``name`` to ``value`` and queue ``messages`` in one transaction, unless the marker already
        holds ``value``; return True when queued. A failure leaves neither."""
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO markers(name, value, at) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " value = excluded.value, at = excluded.at WHERE markers.value <> excluded.value",
                (name, value, now),
            )
            if cur.rowcount != 1:
                return False
            await _enqueue(conn.cursor(), messages, now)
            if history is not None:
                await conn.execute(_HISTORY, (now, "alert", None, history))
            return True

    async def marker(self, name: str) -> str | None:
        row = await self.store.fetchone("SELECT value FROM markers WHERE name = %s", (name,))
        return None if row is None else str(row[0])

    async def set_marker(self, name: str, value: str, now: datetime) -> bool:
        """Set ``name`` to ``value``; return False when it already had that value (the job already ran)."""
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO markers(name, value, at) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " value = excluded.value, at = excluded.at WHERE markers.value <> excluded.value",
                (name, value, now),
            )
            return cur.rowcount == 1


async def _enqueue(cur: AsyncCursor[TupleRow], messages: list[Message], now: datetime) -> None:
    await cur.executemany(
        "INSERT INTO outbox(created_at, budget, severity, title, body, notifier, notifier_url, next_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        # A message is stored, and so sent, with every secret in its text redacted, whatever it was built from.
        [
            (now, m.budget, m.severity, redact_text(m.title), redact_text(m.body), m.notifier, m.notifier_url, now)
            for m in messages
        ],
    )


async def _pending(conn: Conn) -> list[ScopeChange]:
    cur = await conn.execute("SELECT value FROM markers WHERE name = %s FOR UPDATE", (PENDING_KEYS,))
    row = await cur.fetchone()
    return [ScopeChange(**item) for item in json.loads(row[0])] if row else []


async def _set_pending(conn: Conn, pending: list[ScopeChange], now: datetime) -> None:
    await conn.execute(
        "INSERT INTO markers(name, value, at) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
        " value = excluded.value, at = excluded.at",
        (PENDING_KEYS, json.dumps([asdict(c) for c in pending]), now),
    )

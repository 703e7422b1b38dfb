"""Alert state, the notification outbox, overrides, silences, history and the last switch document.

The outbox is how no alert is lost and none is sent twice: evaluation writes the new alert state and one outbox
row per channel in the same transaction; a deliverer *claims* a row with a compare-and-set update that carries an
expiring lease, sends it, and marks it delivered only after the channel confirmed. A crash before the mark
leaves the row claimable again once the lease expires — the one window in which a message can be sent twice is
between the channel accepting it and the mark being committed (milliseconds).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from guardd.core.alerts import AlertState
from guardd.core.redact import redact_text
from guardd.core.switch import Override, SwitchDoc
from guardd.store.api import Message, OutboxRow, SwitchStep
from guardd.store.shared import doc_from_json, iso, parse_iso
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.state_keys import KeySwitchRecords

__all__ = ["StateStore"]


class StateStore(KeySwitchRecords):
    """Alert state, the outbox, overrides, silences, history, the switch document and markers (SQLite). The key
    switch's records and once-only notices come from :class:`~guardd.store.sqlite.state_keys.KeySwitchRecords`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- alert state ------------------------------------------------------------------------------------
    async def alert_states(self, budget: str) -> dict[str, AlertState]:
        rows = await self.store.fetchall(
            "SELECT window, instance, level, tripped, forecast, critical, notified_at FROM alert_state"
            " WHERE budget = ?",
            (budget,),
        )
        return {
            r[0]: AlertState(r[0], r[1], float(r[2]), bool(r[3]), bool(r[4]), bool(r[5]), parse_iso(r[6])) for r in rows
        }

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
            await conn.execute("DELETE FROM alert_state WHERE budget = ?", (budget,))
            await conn.executemany(
                "INSERT INTO alert_state(budget, window, instance, level, tripped, forecast, critical, notified_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        budget,
                        s.window,
                        s.instance,
                        s.level,
                        int(s.tripped),
                        int(s.forecast),
                        int(s.critical),
                        iso(s.notified_at),
                    )
                    for s in states.values()
                ],
            )
            await self._enqueue(messages, now)
            await conn.executemany(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                [(iso(now), kind, budget, detail) for kind, detail in history],
            )

    # ---- outbox -----------------------------------------------------------------------------------------
    async def _enqueue(self, messages: list[Message], now: datetime) -> None:
        # A message is stored, and so sent, with every secret in its text redacted, whatever it was built from.
        rows = [
            (iso(now), m.budget, m.severity, redact_text(m.title), redact_text(m.body), m.notifier, m.notifier_url)
            for m in messages
        ]
        await self.store.conn.executemany(
            "INSERT INTO outbox(created_at, budget, severity, title, body, notifier, notifier_url, next_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(*row, iso(now)) for row in rows],
        )

    async def enqueue(
        self, messages: list[Message], now: datetime, history: tuple[str | None, str] | None = None
    ) -> None:
        """Queue ``messages`` and, with ``history = (budget, detail)``, their ``alert`` history line, together."""
        async with self.store.transaction() as conn:
            await self._enqueue(messages, now)
            if history is not None:
                await conn.execute(
                    "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)", (iso(now), "alert", *history)
                )

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows for ``owner`` until ``now + lease`` (compare-and-set on the lease)."""
        rows = await self.store.fetchall(
            "SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
            (iso(now), iso(now), limit),
        )
        claimed: list[OutboxRow] = []
        for (row_id,) in rows:
            async with self.store.transaction() as conn:
                cur = await conn.execute(
                    "UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE id = ? AND delivered_at IS NULL"
                    " AND failed_at IS NULL AND (lease_until IS NULL OR lease_until < ?)",
                    (iso(now + lease), owner, row_id, iso(now)),
                )
                if cur.rowcount != 1:
                    continue
            row = await self.store.fetchone(
                "SELECT id, budget, severity, title, body, notifier, notifier_url, attempts, created_at FROM outbox"
                " WHERE id = ?",
                (row_id,),
            )
            if row is not None:
                claimed.append(OutboxRow(*row[1:7], id=row[0], attempts=row[7], created_at=parse_iso(row[8]) or now))
        return claimed

    async def release_dead_leases(self, host: str) -> int:
        """Free leases held by processes of this host that no longer run (a guardd killed mid-delivery).

        Without this a killed daemon's rows wait out their lease before anyone may send them.
        """
        import os

        rows = await self.store.fetchall(
            "SELECT id, lease_owner FROM outbox WHERE lease_until IS NOT NULL AND delivered_at IS NULL"
            " AND failed_at IS NULL AND lease_owner LIKE ?",
            (f"{host}:%",),
        )
        dead = []
        for row_id, owner in rows:
            pid = int(owner.rsplit(":", 1)[1])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                dead.append((row_id,))
            except PermissionError:
                continue  # alive, another user's
        if dead:
            async with self.store.transaction() as conn:
                await conn.executemany("UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ?", dead)
        return len(dead)

    async def delivered(self, row: OutboxRow, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, lease_until = NULL WHERE id = ?",
                (iso(now), row.id),
            )
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                (iso(now), "delivery", row.budget, f"delivered to {row.notifier_url}: {row.title}"),
            )

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retry at ``retry_at``, or give the row up when it is None."""
        async with self.store.transaction() as conn:
            if retry_at is None:
                await conn.execute(
                    "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = ?",
                    (iso(now), error, row.id),
                )
                await conn.execute(
                    "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                    (iso(now), "delivery", row.budget, f"gave up on {row.notifier_url}: {error}"),
                )
            else:
                await conn.execute(
                    "UPDATE outbox SET next_at = ?, last_error = ?, attempts = attempts + 1, lease_until = NULL"
                    " WHERE id = ?",
                    (iso(retry_at), error, row.id),
                )

    async def pending_count(self) -> int:
        row = await self.store.fetchone("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL")
        return int(row[0]) if row else 0

    # ---- notifier health ----------------------------------------------------------------------------------
    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool:
        """Record a channel's latest result; return True when it just started failing (for the meta-alert)."""
        row = await self.store.fetchone("SELECT ok FROM notifier_health WHERE notifier_url = ?", (url,))
        was_ok = row is None or bool(row[0])
        async with self.store.transaction() as conn:
            if ok:
                await conn.execute(
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since, last_success)"
                    " VALUES (?, 1, NULL, NULL, ?) ON CONFLICT(notifier_url) DO UPDATE SET ok = 1,"
                    " failing_since = NULL, last_success = excluded.last_success, meta_alerted = 0",
                    (url, iso(now)),
                )
            else:
                await conn.execute(
                    "INSERT INTO notifier_health(notifier_url, ok, last_error, failing_since) VALUES (?, 0, ?, ?)"
                    " ON CONFLICT(notifier_url) DO UPDATE SET ok = 0, last_error = excluded.last_error,"
                    " failing_since = coalesce(notifier_health.failing_since, excluded.failing_since)",
                    (url, error, iso(now)),
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
        return {r[0]: (bool(r[1]), r[2], r[3]) for r in rows}

    # ---- overrides, silences, history ---------------------------------------------------------------------
    async def overrides(self) -> list[Override]:
        rows = await self.store.fetchall("SELECT scope, state, by, reason, until, created_at FROM overrides")
        return [Override(r[0], r[1], r[2], r[3], parse_iso(r[4]), parse_iso(r[5])) for r in rows]

    async def set_override(self, override: Override, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO overrides(scope, state, until, by, reason, created_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(scope) DO UPDATE SET state=excluded.state, until=excluded.until, by=excluded.by,"
                " reason=excluded.reason, created_at=excluded.created_at",
                (override.scope, override.state, iso(override.until), override.by, override.reason, iso(now)),
            )
            until = f" until {iso(override.until)}" if override.until else ""
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                (
                    iso(now),
                    "override",
                    override.scope,
                    f"{override.state} by {override.by}{until}: {override.reason or 'no reason given'}",
                ),
            )

    async def remove_override(self, scope: str, now: datetime, why: str) -> None:
        """Remove ``scope``'s override and record ``why`` — once: when another process removed it first, nothing."""
        async with self.store.transaction() as conn:
            cur = await conn.execute("DELETE FROM overrides WHERE scope = ?", (scope,))
            if cur.rowcount:
                await conn.execute(
                    "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                    (iso(now), "override", scope, why),
                )

    async def add_silence(self, budget: str, until: datetime, reason: str, by: str, now: datetime) -> int:
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO silences(budget, until, reason, by, created_at) VALUES (?,?,?,?,?)",
                (budget, iso(until), reason, by, iso(now)),
            )
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                (iso(now), "silence", budget, f"silenced by {by} until {iso(until)}: {reason or 'no reason given'}"),
            )
            return int(cur.lastrowid or 0)

    async def silences(self, now: datetime) -> list[tuple[int, str, datetime, str, str]]:
        rows = await self.store.fetchall(
            "SELECT id, budget, until, reason, by FROM silences WHERE until > ? ORDER BY until", (iso(now),)
        )
        return [(r[0], r[1], parse_iso(r[2]) or now, r[3], r[4]) for r in rows]

    async def remove_silence(self, silence_id: int, by: str, now: datetime) -> bool:
        async with self.store.transaction() as conn:
            cur = await conn.execute("DELETE FROM silences WHERE id = ? RETURNING budget", (silence_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                (iso(now), "silence", row[0], f"silence {silence_id} removed by {by}"),
            )
            return True

    async def add_history(self, kind: str, budget: str | None, detail: str, now: datetime) -> None:
        async with self.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)", (iso(now), kind, budget, detail)
            )

    async def history(self, since: datetime | None, limit: int = 1000) -> list[tuple[str, str, str | None, str]]:
        rows = await self.store.fetchall(
            "SELECT at, kind, budget, detail FROM history WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
            (iso(since) if since else "", limit),
        )
        return [tuple(r) for r in rows]

    # ---- switch document and markers ----------------------------------------------------------------------
    async def switch_doc(self) -> SwitchDoc | None:
        row = await self.store.fetchone("SELECT doc FROM switch_state WHERE id = 1")
        return None if row is None else doc_from_json(json.loads(row[0]))

    async def update_switch(self, step: SwitchStep, now: datetime) -> SwitchDoc:
        """Read the stored switch document, let ``step`` decide from it, and save its decision, in one transaction.

        ``step(previous)`` may write the switch file. Saved together: the document, its history, and the scope
        changes the key switch still has to apply (see :meth:`pending_key_changes`) — before any other side
        effect. Processes that decide at once (the daemon and a ``killswitch`` command) take turns here, so each
        decides from the other's result and a change is recorded once.
        """
        async with self.store.transaction() as conn:
            async with conn.execute("SELECT doc FROM switch_state WHERE id = 1") as cur:
                row = await cur.fetchone()
            decision = step(None if row is None else doc_from_json(json.loads(row[0])))
            if decision.save:
                await conn.execute(
                    "INSERT INTO switch_state(id, doc) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                    (json.dumps(decision.doc.to_json()),),
                )
                await conn.executemany(
                    "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                    [(iso(now), "switch", scope, detail) for scope, detail in decision.history],
                )
            if decision.key_changes:
                await self._set_pending([*await self.pending_key_changes(), *decision.key_changes], now)
        return decision.doc

    async def marker(self, name: str) -> str | None:
        row = await self.store.fetchone("SELECT value FROM markers WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    async def set_marker(self, name: str, value: str, now: datetime) -> bool:
        """Set ``name`` to ``value``; return False when it already had that value (the job already ran)."""
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO markers(name, value, at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET"
                " value = excluded.value, at = excluded.at WHERE markers.value != excluded.value",
                (name, value, iso(now)),
            )
            return cur.rowcount == 1

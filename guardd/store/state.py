"""Alert state, the notification outbox, channel health, overrides, silences, history, the switch document, run
markers and the key switch's records (:class:`~guardd.store.api.StateAPI`), written once for both backends.

The outbox, its claims and the channels' health are :class:`~guardd.store.outbox.Outbox`, this class's base.

A side effect and its record commit together: a key switched at OpenRouter is recorded with its notice's outbox
rows; a once-only alert sets its marker in the transaction that queues it; the scope changes a switch decision
asks of the keys are saved with the decision (under the marker :data:`~guardd.store.api.PENDING_KEYS`) and dropped
only when all their keys are recorded.

The SQL is what SQLite and PostgreSQL share; the backend's :class:`~guardd.store.dialect.Dialect` converts
placeholders, times, flags and JSON, names the one column the dialects spell differently (``window`` is reserved
in PostgreSQL) and adds PostgreSQL's row locks (SQLite's write transactions are exclusive already).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from guardd.core.alerts import AlertState
from guardd.core.switch import Override, ScopeChange, SwitchDoc
from guardd.store.api import PENDING_KEYS, Silence
from guardd.store.outbox import Outbox
from guardd.store.shared import doc_from_json, iso

if TYPE_CHECKING:
    from guardd.store.api import HistoryLine, Message, SwitchStep

_EPOCH = datetime.fromtimestamp(0, UTC)
_OVERRIDES = "SELECT scope, state, by, reason, until, created_at FROM overrides"


class StateStore(Outbox):
    """The state rows of one open database, shared by every instance of a shared store. Safe for concurrent
    callers: each method that writes is one transaction."""

    # ---- alert state ------------------------------------------------------------------------------------
    async def alert_states(self, budget: str) -> dict[str, AlertState]:
        rows = await self._all(
            f"SELECT {self._win}, instance, level, tripped, forecast, critical, notified_at FROM alert_state"
            " WHERE budget = ?",
            (budget,),
        )
        return {
            r[0]: AlertState(r[0], r[1], float(r[2]), bool(r[3]), bool(r[4]), bool(r[5]), self.d.when(r[6]))
            for r in rows
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
        d = self.d
        async with self.db.transaction("state") as conn:
            await d.execute(conn, "DELETE FROM alert_state WHERE budget = ?", (budget,))
            await d.executemany(
                conn,
                f"INSERT INTO alert_state(budget, {self._win}, instance, level, tripped, forecast, critical,"
                " notified_at) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (budget, s.window, s.instance, s.level, d.flag(s.tripped), d.flag(s.forecast), d.flag(s.critical),
                     d.time(s.notified_at))
                    for s in states.values()
                ],
            )  # fmt: skip
            await self._enqueue(conn, messages, now)
            await self._history(conn, [(now, kind, budget, detail) for kind, detail in history])

    # ---- overrides, silences, history ---------------------------------------------------------------------
    async def overrides(self) -> list[Override]:
        return self._overrides(await self._all(_OVERRIDES))

    def _overrides(self, rows: Any) -> list[Override]:
        return [Override(r[0], r[1], r[2], r[3], self.d.when(r[4]), self.d.when(r[5])) for r in rows]

    async def set_override(self, override: Override, now: datetime) -> None:
        d = self.d
        async with self.db.transaction("state") as conn:
            await d.execute(
                conn,
                "INSERT INTO overrides(scope, state, until, by, reason, created_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (scope) DO UPDATE SET state = excluded.state, until = excluded.until,"
                " by = excluded.by, reason = excluded.reason, created_at = excluded.created_at",
                (override.scope, override.state, d.time(override.until), override.by, override.reason, d.time(now)),
            )
            until = f" until {iso(override.until)}" if override.until else ""
            detail = f"{override.state} by {override.by}{until}: {override.reason or 'no reason given'}"
            await self._history(conn, [(now, "override", override.scope, detail)])

    async def remove_override(self, scope: str, now: datetime, why: str) -> None:
        """Remove ``scope``'s override and record ``why`` — once: when another process removed it first, nothing."""
        async with self.db.transaction("state") as conn:
            cur = await self.d.execute(conn, "DELETE FROM overrides WHERE scope = ?", (scope,))
            if cur.rowcount:
                await self._history(conn, [(now, "override", scope, why)])

    async def add_silence(self, budget: str, until: datetime, reason: str, by: str, now: datetime) -> int:
        d = self.d
        async with self.db.transaction("state") as conn:
            cur = await d.execute(
                conn,
                "INSERT INTO silences(budget, until, reason, by, created_at) VALUES (?,?,?,?,?) RETURNING id",
                (budget, d.time(until), reason, by, d.time(now)),
            )
            row = await cur.fetchone()
            detail = f"silenced by {by} until {iso(until)}: {reason or 'no reason given'}"
            await self._history(conn, [(now, "silence", budget, detail)])
            return int(row[0]) if row else 0

    async def silences(self, now: datetime) -> list[Silence]:
        rows = await self._all(
            "SELECT id, budget, until, reason, by FROM silences WHERE until > ? ORDER BY until", (self.d.time(now),)
        )
        return [Silence(int(r[0]), r[1], self.d.when(r[2]) or now, r[3], r[4]) for r in rows]

    async def remove_silence(self, silence_id: int, by: str, now: datetime) -> bool:
        async with self.db.transaction("state") as conn:
            cur = await self.d.execute(conn, "DELETE FROM silences WHERE id = ? RETURNING budget", (silence_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await self._history(conn, [(now, "silence", row[0], f"silence {silence_id} removed by {by}")])
            return True

    async def add_history(self, kind: str, budget: str | None, detail: str, now: datetime) -> None:
        async with self.db.transaction("state") as conn:
            await self._history(conn, [(now, kind, budget, detail)])

    async def history(self, since: datetime | None, limit: int = 1000) -> list[HistoryLine]:
        """History lines at or after ``since`` (None: ever), newest first."""
        from guardd.store.api import HistoryLine  # here, not above: status imports this module but never builds it

        where, params = ("", [limit]) if since is None else (" WHERE at >= ?", [self.d.time(since), limit])
        rows = await self._all(
            f"SELECT at, kind, budget, detail FROM history{where} ORDER BY at DESC, id DESC LIMIT ?", params
        )
        return [HistoryLine(self.d.when(r[0]) or _EPOCH, r[1], r[2], r[3]) for r in rows]

    # ---- switch document and markers ----------------------------------------------------------------------
    async def switch_doc(self) -> SwitchDoc | None:
        row = await self._one("SELECT doc FROM switch_state WHERE id = 1")
        return None if row is None else doc_from_json(self.d.unjson(row[0]))

    async def update_switch(self, step: SwitchStep, now: datetime) -> SwitchDoc:
        """Read the stored switch document, let ``step`` decide from it, and save its decision, in one transaction.

        ``step(previous, overrides)`` may write the switch file. The overrides are read in the same transaction: a
        manual change committed by another process while this one was evaluating is in the decision (the daemon,
        deciding from a list read before, released a trip the command had just made). Saved together: the document, its
        history, and the scope changes the key switch still has to apply (see :meth:`pending_key_changes`) — before any
        other side effect. Processes that decide at once (the daemon and a ``killswitch`` command, or two instances)
        take turns here (the row is locked until the commit; on PostgreSQL an advisory lock first, so that the very
        first decision, before the row exists, takes turns too), so each decides from the other's result and a change is
        recorded once.
        """
        d = self.d
        async with self.db.transaction("state") as conn:
            if d.switch_turns:  # the first decision too: FOR UPDATE below locks no row that does not exist yet
                await d.execute(conn, d.switch_turns)
            cur = await d.execute(conn, f"SELECT doc FROM switch_state WHERE id = 1{d.for_update}")
            row = await cur.fetchone()
            overrides = self._overrides(await (await d.execute(conn, _OVERRIDES)).fetchall())
            decision = step(None if row is None else doc_from_json(d.unjson(row[0])), overrides)
            if decision.save:
                await d.execute(
                    conn,
                    "INSERT INTO switch_state(id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                    (d.json(decision.doc.to_json()),),
                )
                await self._history(conn, [(now, "switch", scope, detail) for scope, detail in decision.history])
            if decision.key_changes:
                await self._set_pending(conn, [*await self._pending(conn), *decision.key_changes], now)
        return decision.doc

    async def marker(self, name: str) -> str | None:
        row = await self._one("SELECT value FROM markers WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    async def _set_marker(self, conn: Any, name: str, value: str, now: datetime) -> bool:
        cur = await self.d.execute(
            conn,
            "INSERT INTO markers(name, value, at) VALUES (?,?,?) ON CONFLICT (name) DO UPDATE SET"
            " value = excluded.value, at = excluded.at WHERE markers.value <> excluded.value",
            (name, value, self.d.time(now)),
        )
        return bool(cur.rowcount == 1)

    async def set_marker(self, name: str, value: str, now: datetime) -> bool:
        """Set ``name`` to ``value``; return False when it already had that value (the job already ran)."""
        async with self.db.transaction("state") as conn:
            return await self._set_marker(conn, name, value, now)

    async def notify_once(
        self, name: str, value: str, messages: list[Message], history: str | None, now: datetime
    ) -> bool:
        """Set marker ``name`` to ``value`` and queue ``messages`` in one transaction, unless the marker already
        holds ``value`` (the alert was sent); return True when queued. A failure leaves neither."""
        async with self.db.transaction("state") as conn:
            if not await self._set_marker(conn, name, value, now):
                return False
            await self._enqueue(conn, messages, now)
            if history is not None:
                await self._history(conn, [(now, "alert", None, history)])
            return True

    # ---- the key switch's records ---------------------------------------------------------------------------
    async def _pending(self, conn: Any) -> list[ScopeChange]:
        cur = await self.d.execute(
            conn, f"SELECT value FROM markers WHERE name = ?{self.d.for_update}", (PENDING_KEYS,)
        )
        row = await cur.fetchone()
        return [ScopeChange(**item) for item in json.loads(row[0])] if row else []

    async def _set_pending(self, conn: Any, pending: list[ScopeChange], now: datetime) -> None:
        await self.d.execute(
            conn,
            "INSERT INTO markers(name, value, at) VALUES (?,?,?) ON CONFLICT (name) DO UPDATE SET"
            " value = excluded.value, at = excluded.at",
            (PENDING_KEYS, json.dumps([asdict(c) for c in pending]), self.d.time(now)),
        )

    async def pending_key_changes(self) -> list[ScopeChange]:
        """Scope changes saved with a switch decision whose keys are not all switched and recorded yet."""
        raw = await self.marker(PENDING_KEYS)
        return [ScopeChange(**item) for item in json.loads(raw)] if raw else []

    async def key_change_done(self, change: ScopeChange, now: datetime) -> None:
        """Forget the oldest pending ``change``: every key it touched is switched and recorded."""
        async with self.db.transaction("state") as conn:
            pending = await self._pending(conn)
            if change in pending:
                pending.remove(change)
            await self._set_pending(conn, pending, now)

    async def record_key(
        self, key_hash: str, disabled: bool, messages: list[Message], history: str, now: datetime
    ) -> None:
        """Record that guardd switched OpenRouter key ``key_hash`` (off: as guardd's doing), with its notice's
        outbox rows and history, in one transaction: the record and its announcement commit together. A record
        that changes nothing (another process recorded the same switch first) announces nothing."""
        d = self.d
        async with self.db.transaction("state") as conn:
            cur = await d.execute(
                conn,
                "UPDATE or_keys SET disabled = ?, disabled_by_guardd = ?, updated_at = ? WHERE hash = ?"
                " AND NOT (disabled = ? AND disabled_by_guardd = ?)",
                (d.flag(disabled), d.flag(disabled), d.time(now), key_hash, d.flag(disabled), d.flag(disabled)),
            )
            if not cur.rowcount:
                return
            await self._enqueue(conn, messages, now)
            await self._history(conn, [(now, "keys", None, history)])

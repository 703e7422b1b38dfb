"""The key switch's records and the once-only notices, as part of :class:`~guardd.store.sqlite.state.StateStore`.

A side effect and its record commit together: a key switched at OpenRouter is recorded with its notice's outbox
rows in one transaction; a once-only alert sets its marker in the transaction that queues it; the scope changes
a switch decision asks of the keys are saved with the decision and dropped only when all their keys are recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

from guardd.core.switch import ScopeChange
from guardd.store.api import PENDING_KEYS, Message
from guardd.store.sqlite.db import Store


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class KeySwitchRecords:
    """Mixin of ``StateStore``: it provides :meth:`marker` and :meth:`_enqueue`."""

    store: Store

    async def marker(self, name: str) -> str | None:
        raise NotImplementedError

    async def _enqueue(self, messages: list[Message], now: datetime) -> None:
        raise NotImplementedError

    # ---- the key switch's records ---------------------------------------------------------------------------
    async def pending_key_changes(self) -> list[ScopeChange]:
        """Scope changes saved with a switch decision whose keys are not all switched and recorded yet."""
        raw = await self.marker(PENDING_KEYS)
        return [ScopeChange(**item) for item in json.loads(raw)] if raw else []

    async def key_change_done(self, change: ScopeChange, now: datetime) -> None:
        """Forget the oldest pending ``change``: every key it touched is switched and recorded."""
        async with self.store.transaction():
            pending = await self.pending_key_changes()
            if change in pending:
                pending.remove(change)
            await self._set_pending(pending, now)

    async def _set_pending(self, pending: list[ScopeChange], now: datetime) -> None:
        value = json.dumps([asdict(c) for c in pending])
        await self.store.conn.execute(
            "INSERT INTO markers(name, value, at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET"
            " value = excluded.value, at = excluded.at",
            (PENDING_KEYS, value, _iso(now)),
        )

    async def record_key(
        self, key_hash: str, disabled: bool, messages: list[Message], history: str, now: datetime
    ) -> None:
        """Record that guardd switched OpenRouter key ``key_hash`` (off: as guardd's doing), with its notice's
        outbox rows and history, in one transaction: the record and its announcement commit together."""
        async with self.store.transaction() as conn:
            await conn.execute(
                "UPDATE or_keys SET disabled = ?, disabled_by_guardd = ?, updated_at = ? WHERE hash = ?",
                (int(disabled), int(disabled), _iso(now), key_hash),
            )
            await self._enqueue(messages, now)
            await conn.execute(
                "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)", (_iso(now), "keys", None, history)
            )

    async def notify_once(
        self, name: str, value: str, messages: list[Message], history: str | None, now: datetime
    ) -> bool:
        """Set marker ``name`` to ``value`` and queue ``messages`` in one transaction, unless the marker already
        holds ``value`` (the alert was sent); return True when queued. A failure leaves neither."""
        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO markers(name, value, at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET"
                " value = excluded.value, at = excluded.at WHERE markers.value != excluded.value",
                (name, value, _iso(now)),
            )
            if cur.rowcount != 1:
                return False
            await self._enqueue(messages, now)
            if history is not None:
                await conn.execute(
                    "INSERT INTO history(at, kind, budget, detail) VALUES (?,?,?,?)",
                    (_iso(now), "alert", None, history),
                )
            return True

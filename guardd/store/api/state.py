"""The state half of the storage interface: :class:`StateAPI` (alerts, outbox, channels, overrides, silences,
history, the switch, markers and the key switch's records)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: a read command need not import the rows only the daemon builds
    from guardd.core.alerts import AlertState
    from guardd.core.switch import Override, ScopeChange, SwitchDoc
    from guardd.store.api.rows import ChannelHealth, Silence
    from guardd.store.api.rows_daemon import ChannelCount, HistoryLine, Message, OutboxRow, SwitchStep


class StateAPI(Protocol):
    """Alert state, the notification outbox, channel health, overrides, silences, history, the last switch
    document and run markers. Each method that writes is one transaction.

    """

    async def alert_states(self, budget: str) -> dict[str, AlertState]: ...

    async def save_alerts(
        self,
        budget: str,
        states: dict[str, AlertState],
        messages: list[Message],
        history: list[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Persist the new alert states of ``budget`` with their outbox rows and history, in one transaction."""
        ...

    async def enqueue(
        self, messages: list[Message], now: datetime, history: tuple[str | None, str] | None = None
    ) -> None:
        """Queue ``messages`` and, with ``history = (budget, detail)``, their ``alert`` history line, together."""
        ...

    async def notify_once(
        self, name: str, value: str, messages: list[Message], history: str | None, now: datetime
    ) -> bool:
        """Set marker ``name`` to ``value`` and queue ``messages`` in one transaction, unless the marker already
        holds ``value``; return True when queued. A failure leaves neither."""
        ...

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows for ``owner`` until ``now + lease``; a row is claimed by one owner."""
        ...

    async def release_dead_leases(self, instance: str) -> int:
        """Free the claims of ``instance``'s processes that no longer run (owners ``instance:pid``, matched exactly);
        return how many."""
        ...

    async def delivered(self, row: OutboxRow, now: datetime) -> None: ...

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None: ...

    async def hasten(self, configured: Sequence[str], now: datetime) -> int:
        """Make every waiting row whose notifier URL is not among ``configured`` due at ``now``; return how many."""
        ...

    async def addressed(self, row: OutboxRow) -> set[str]:
        """The notifiers (redacted URLs) ``row``'s message was queued for, its own included."""
        ...

    async def reroute(self, row: OutboxRow, notifier: int, url: str, why: str, now: datetime) -> None:
        """Send ``row`` through notifier ``notifier`` (redacted ``url``) from now on; a ``delivery`` history line."""
        ...

    async def given_up(self, since: datetime, error: str) -> list[tuple[str | None, str, str, datetime]]:
        """Rows given up at or after ``since`` with last error ``error``: ``(budget, notifier URL, title, when)``."""
        ...

    async def pending_count(self) -> int: ...

    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool: ...

    async def notification_counts(self) -> list[ChannelCount]:
        """Per notifier (redacted URL): ``(url, delivered messages, failed attempts)`` over the outbox."""
        ...

    async def channel_health(self) -> dict[str, ChannelHealth]:
        """The latest result of each channel that was used, by its redacted URL."""
        ...

    async def overrides(self) -> list[Override]: ...

    async def set_override(self, override: Override, now: datetime) -> None: ...

    async def remove_override(self, scope: str, now: datetime, why: str) -> None: ...

    async def add_silence(self, budget: str, until: datetime, reason: str, by: str, now: datetime) -> int: ...

    async def silences(self, now: datetime) -> list[Silence]:
        """The silences still active at ``now``, ending soonest first."""
        ...

    async def remove_silence(self, silence_id: int, by: str, now: datetime) -> bool: ...

    async def add_history(self, kind: str, budget: str | None, detail: str, now: datetime) -> None: ...

    async def history(self, since: datetime | None, limit: int = 1000) -> list[HistoryLine]:
        """Up to ``limit`` history lines at or after ``since`` (None: ever), newest first."""
        ...

    async def switch_doc(self) -> SwitchDoc | None: ...

    async def update_switch(self, step: SwitchStep, now: datetime) -> SwitchDoc:
        """Read the stored switch document and overrides, let ``step`` decide from them (it may write the switch
        file), and save the decision — document, history, pending key changes — in one transaction that
        concurrent writers take in turns: a change decided by one process is seen, not decided and recorded
        again, by another; an override committed before the turn is in the decision."""
        ...

    async def pending_key_changes(self) -> list[ScopeChange]:
        """Scope changes saved with a decision whose keys are not all switched and recorded yet, oldest first."""
        ...

    async def key_change_done(self, change: ScopeChange, now: datetime) -> None: ...

    async def record_key(
        self, key_hash: str, disabled: bool, messages: list[Message], history: str, now: datetime
    ) -> None:
        """Record a key switched at OpenRouter with its notice's outbox rows and history, in one transaction."""
        ...

    async def marker(self, name: str) -> str | None: ...

    async def set_marker(self, name: str, value: str, now: datetime) -> bool:
        """Set ``name`` to ``value``; return False when it already had that value (the job already ran)."""
        ...

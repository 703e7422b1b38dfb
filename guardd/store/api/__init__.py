"""The storage interface: what guardd asks of its state, whichever database holds it (contract §9).

Four Protocols — :class:`EventsAPI` (usage events, window sums, checkpoints, set-aside lines), :class:`StateAPI`
(alerts, outbox, channels, overrides, silences, history, switch, markers, the key switch's records),
:class:`RequestStatsAPI` (health facts, token sums) and :class:`RemoteAPI` (what guardd stored of OpenRouter) — with
dataclass rows, bundled as :class:`Stores`. Two backends implement them: SQLite in ``state_dir``
(:mod:`guardd.store.sqlite`), the embedded default, and a shared PostgreSQL database (:mod:`guardd.store.postgres`);
:func:`guardd.app.open_stores` picks one from ``[store] url``. What the dialects can share is written once
(:mod:`guardd.store.state`, :mod:`guardd.store.event_reads`, :mod:`guardd.store.stats`, :mod:`guardd.store.remote`
over :mod:`guardd.store.dialect`); each backend's ``open_stores`` builds a typed :class:`Stores`, so mypy proves it
satisfies every Protocol. Code above the store depends on these Protocols and rows only, never on SQL (there is
none outside ``guardd/store``); ``tests/store/test_contract*.py`` run every operation over both backends.

The rules every backend keeps:

- Money is exact: integer pico-dollars in Python (:mod:`guardd.core.money`); SQLite stores the integers,
  PostgreSQL stores ``numeric`` dollars. Times of events are Unix milliseconds (UTC).
- :meth:`EventsAPI.write_batch` is one transaction: the events, their quarantined lines and the file checkpoint
  are all stored or none is. An event key stored once counts once, across every writer; a later line with a
  stored key replaces the stored event (the last line wins) and the sums follow.
- Concurrent callers are safe: two writers storing overlapping keys at once leave exact totals.
- Since schema 3 (contract §10, §11) a batch also carries, per row, its token counts (summed per hour and day
  with the spend, for advice) and, for the rows that report any, their health facts (``Parsed.health``: ok,
  status, latency, error), which :class:`RequestStatsAPI` reads. A duplicate key's stored health facts are
  replaced by the new line's (or removed when it has none).

The package, by concern: the rows (:mod:`~guardd.store.api.rows`, the ones the read commands build, and beside
it by area ``rows_ingest``, ``rows_daemon``, ``rows_advice``, ``rows_remote``, ``rows_cluster``),
:mod:`~guardd.store.api.events` (:class:`EventsAPI`, :class:`RequestStatsAPI`), :mod:`~guardd.store.api.state`
(:class:`StateAPI`), :mod:`~guardd.store.api.remote` (:class:`RemoteAPI`), :mod:`~guardd.store.api.cluster`
(:class:`ClusterAPI`) and :mod:`~guardd.store.api.stores` (:class:`Stores`). Import the names from here:
``from guardd.store.api import Stores``. The rows are loaded on first use of their name (PEP 562): a frozen
dataclass costs its definition at import (≈ 4 M instructions each), and ``guardd status`` builds about 5 of the
22, so importing the interface defines only the rows that are asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from guardd.store.api.cluster import ClusterAPI
from guardd.store.api.events import EventsAPI, RequestStatsAPI
from guardd.store.api.remote import RemoteAPI
from guardd.store.api.state import StateAPI
from guardd.store.api.stores import StoreHealth, Stores

if TYPE_CHECKING:
    from guardd.store.api.rows import PENDING_KEYS, ChannelHealth, Checkpoint, RequestCounts, SetAside, Silence, Sum
    from guardd.store.api.rows_advice import TokenSums
    from guardd.store.api.rows_cluster import CommittedSwitch, Forgotten, InstanceInfo, Term
    from guardd.store.api.rows_daemon import ChannelCount, HistoryLine, Message, OutboxRow, SwitchDecision, SwitchStep
    from guardd.store.api.rows_ingest import BatchResult, IngestSummary, Priced, UnpricedEvent
    from guardd.store.api.rows_remote import Credits, KeyUsage, ListedKey, SourceState

_ROWS = {
    "rows": ("PENDING_KEYS", "ChannelHealth", "Checkpoint", "RequestCounts", "SetAside", "Silence", "Sum"),
    "rows_advice": ("TokenSums",),
    "rows_cluster": ("CommittedSwitch", "Forgotten", "InstanceInfo", "Term"),
    "rows_daemon": ("ChannelCount", "HistoryLine", "Message", "OutboxRow", "SwitchDecision", "SwitchStep"),
    "rows_ingest": ("BatchResult", "IngestSummary", "Priced", "UnpricedEvent"),
    "rows_remote": ("Credits", "KeyUsage", "ListedKey", "SourceState"),
}
_MODULE_OF = {name: module for module, names in _ROWS.items() for name in names}


if not TYPE_CHECKING:  # mypy reads the imports above instead, so a misspelt name stays an error

    def __getattr__(name: str) -> object:
        """A row named for the first time: import its module (only then) and keep the row here."""
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


__all__ = [
    "PENDING_KEYS",
    "BatchResult",
    "ChannelCount",
    "ChannelHealth",
    "Checkpoint",
    "ClusterAPI",
    "CommittedSwitch",
    "Credits",
    "EventsAPI",
    "Forgotten",
    "HistoryLine",
    "IngestSummary",
    "InstanceInfo",
    "KeyUsage",
    "ListedKey",
    "Message",
    "OutboxRow",
    "Priced",
    "RemoteAPI",
    "RequestCounts",
    "RequestStatsAPI",
    "SetAside",
    "Silence",
    "SourceState",
    "StateAPI",
    "StoreHealth",
    "Stores",
    "Sum",
    "SwitchDecision",
    "SwitchStep",
    "Term",
    "TokenSums",
    "UnpricedEvent",
]

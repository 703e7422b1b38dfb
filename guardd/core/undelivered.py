"""An alert that no notifier will deliver any more (finding F14): how it is recorded and said.

An outbox row waits for one notifier (:mod:`guardd.services.delivery`). When the configuration no longer holds
that notifier — neither its URL nor, at its position in ``[[notifiers]]``, a notifier that took its place — the
row is given up with :data:`DROPPED` as its last error, and the log, the history, ``status`` and ``check`` say
:func:`dropped` for :data:`DROPPED_WARNS_FOR`: an alert nobody received is never a silent all-green."""

from __future__ import annotations

from datetime import timedelta

DROPPED = "its notifier was removed from the configuration"
"""The last error of an outbox row given up because no configured notifier is its own any more."""

DROPPED_WARNS_FOR = timedelta(hours=24)
"""How long ``status`` and ``check`` (WARNING) say that an alert was dropped."""


def dropped(budget: str | None, notifier_url: str) -> str:
    """``an alert for budget B was dropped: its notifier URL was removed from the configuration``."""
    about = f"budget {budget}" if budget is not None else "guardd itself"
    return f"an alert for {about} was dropped: its notifier {notifier_url} was removed from the configuration"

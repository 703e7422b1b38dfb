"""Hours and days in Unix milliseconds, and the shape of a rollup's hour entry: what the store's reads need of
:mod:`guardd.core.batch` without importing the batch itself (a read command such as ``status`` never builds one).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ENTRY = 7
"""An hour entry: ``[cost, events, unpriced, prompt, completion, reasoning, cached]``."""


def iso_of_ms(ms: int, tz: tzinfo) -> str | None:
    """RFC 3339 text of a stored Unix ms time in ``tz``; None when no date holds it there (past the year 9999 or
    before the year 1): older guardd versions stored a Unix time in µs or ns read as ms (review F19), and such a
    row must be shown by its number, never crash the command that shows it."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz).isoformat()
    except (ValueError, OverflowError, OSError):
        return None

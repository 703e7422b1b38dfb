"""Hours and days in Unix milliseconds, and the shape of a rollup's hour entry: what the store's reads need of
:mod:`guardd.core.batch` without importing the batch itself (a read command such as ``status`` never builds one).
"""

from __future__ import annotations

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ENTRY = 7
"""An hour entry: ``[cost, events, unpriced, prompt, completion, reasoning, cached]``."""

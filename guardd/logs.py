"""Logging to stderr, one line per event, friendly to journald.

Under systemd (``$JOURNAL_STREAM`` set) lines carry a syslog priority prefix (``<4>``) and no timestamp, since
the journal adds its own; elsewhere a UTC timestamp and the level lead. Context goes as ``key=value`` after the
message (``budget=team-search``). Every line passes through :func:`guardd.core.redact.redact_text`, so a key
that slips into a message is masked anyway.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from guardd.core.redact import redact_text

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _Formatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict) and ctx:
            message += " " + " ".join(f"{k}={_quote(str(v))}" for k, v in ctx.items())
        if record.exc_info:
            message += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        message = redact_text(message)
        if self.journal:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{message}"
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ")
        return f"{stamp} {record.levelname.lower():7} {message}"


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (UTC), ``level``, ``logger``, ``message``, then the context keys.

    Every key, token and URL password is masked, at any depth of any context value."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict):
            for key, value in ctx.items():
                if key not in doc:
                    doc[key] = redact_text(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exception"] = redact_text(self.formatException(record.exc_info))
        # Strings are masked before escaping (a key after an escaped newline is still found); the whole line is
        # masked again for what is not a string: lists, mappings and objects rendered by ``default=str``.
        return redact_text(json.dumps(doc, ensure_ascii=False, default=str))


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if (" " in value or '"' in value or not value) else value


def setup(verbose: bool = False, fmt: str = "text") -> None:
    """Send guardd's logs to stderr (debug with ``verbose``), as text lines or (``fmt="json"``) JSON objects."""
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        _JsonFormatter() if fmt == "json" else _Formatter(journal=bool(os.environ.get("JOURNAL_STREAM")))
    )
    handler.setFormatter(formatter)
    root = logging.getLogger("guardd")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    for noisy in ("apscheduler", "apprise", "httpx", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)

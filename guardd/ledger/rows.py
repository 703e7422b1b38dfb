"""The parts of a stored event that both parsing paths of :mod:`guardd.ledger.parse` build the same way, so that
they agree: the event's dedupe key and its health facts. Pure: no I/O.

Event keys: ``g:<generation id>`` (``s:`` and a hash of the id when the id holds a secret), or for an event without an
id ``h:`` and a keyed hash of (fingerprint, offset, line), so re-reading any part of a file finds the same keys.
"""

from __future__ import annotations

import hashlib

from guardd.core.batch import Health
from guardd.core.redact import redact_text
from guardd.core.usage import ERROR_CHARS, ok_of


def health_row(
    k: str, ts: int, sid: int, ok: bool | None, status: int | None, latency: float | None, error: str | None
) -> Health:
    """The stored health facts of one event (contract §10): ``ok`` defaulting from ``status``, the error text
    cut short and redacted. Both parsing paths build them here, so they agree."""
    # Redacted before it is cut: a key cut in two would no longer be recognised.
    text = redact_text(error[: ERROR_CHARS + 1024])[:ERROR_CHARS] if error is not None else None
    return (k, ts, sid, int(ok_of(ok, status)), status, latency, text)


def id_key(gen_id: str) -> str:
    """The event key of a line with a generation id: ``g:<id>``; an id holding a secret is keyed by a hash of
    itself instead (still unique, never stored)."""
    if redact_text(gen_id) != gen_id:
        return "s:" + hashlib.blake2b(gen_id.encode(), digest_size=16).hexdigest()
    return "g:" + gen_id


def line_key(data: bytes, fp: str, offset: int) -> str:
    """The key of an event without a generation id: its file, its offset and its bytes."""
    return "h:" + hashlib.blake2b(data, digest_size=16, key=f"{fp}:{offset}".encode()[:64]).hexdigest()

"""The kill-switch document as the HTTP service serves it: its bytes, its ETag, and a wake-up for long polls.

The daemon publishes every document it decides (:meth:`SwitchFeed.publish`, called on the event loop). The ETag
is a hash of the document without ``heartbeat_at`` and ``expires_at``: it changes when the decision changes
(a scope trips or is released, its reason, spend, limit or headroom moves, an override is set) and not when the
heartbeat alone moves. Waiting requests share one :class:`asyncio.Event`, replaced at each change, so 500
long-polls cost 500 sleeping tasks and one wake-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LIVENESS_FIELDS = ("heartbeat_at", "expires_at")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published document: its JSON body, its ETag (quoted, as sent) and its liveness times."""

    body: bytes
    etag: str
    heartbeat_at: str | None
    expires_at: str | None
    tripped: bool


def etag_of(document: dict[str, Any]) -> str:
    """The strong ETag of ``document``: a hash of everything but its liveness times."""
    decision = {k: v for k, v in document.items() if k not in LIVENESS_FIELDS}
    digest = hashlib.blake2b(json.dumps(decision, sort_keys=True).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


class SwitchFeed:
    """The latest switch document and the event that wakes long polls. Use from the event loop only."""

    def __init__(self, stale_after: timedelta) -> None:
        self.stale_after = stale_after
        self.current: Snapshot | None = None
        self.closed = False
        self._changed = asyncio.Event()

    def publish(self, document: dict[str, Any]) -> None:
        """Serve ``document`` from now on; wake the waiting requests when its ETag differs."""
        heartbeat = document.get("heartbeat_at")
        expires = document.get("expires_at")
        if expires is None and isinstance(heartbeat, str):
            expires = _iso(_parse(heartbeat) + self.stale_after)
        snapshot = Snapshot(
            body=json.dumps(document, indent=2).encode() + b"\n",
            etag=etag_of(document),
            heartbeat_at=heartbeat if isinstance(heartbeat, str) else None,
            expires_at=expires if isinstance(expires, str) else None,
            tripped=bool(document.get("tripped")),
        )
        previous, self.current = self.current, snapshot
        if previous is None or previous.etag != snapshot.etag:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def wait_for_change(self, etags: frozenset[str], timeout: float) -> Snapshot | None:
        """Return the current snapshot once its ETag is none of ``etags``, or the unchanged one after
        ``timeout`` seconds (None when nothing was ever published)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed and (self.current is None or self.current.etag in etags):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
        return self.current

    def wake_all(self) -> None:
        """Wake every waiting request for good (shutdown): each answers with what it has."""
        self.closed = True
        self._changed.set()

    def alive(self, now: datetime) -> tuple[bool, str | None]:
        """Whether the daemon's cycle is running: a published heartbeat that has not expired."""
        snap = self.current
        if snap is None or snap.heartbeat_at is None:
            return False, "no evaluation has completed yet"
        heartbeat = _parse(snap.heartbeat_at)
        expires = _parse(snap.expires_at) if snap.expires_at else heartbeat + self.stale_after
        if now > expires:
            return False, f"the guard is stale: last heartbeat {snap.heartbeat_at}, expired {_iso(expires)}"
        if heartbeat > now + timedelta(minutes=1):
            return False, f"the heartbeat {snap.heartbeat_at} is in the future"
        return True, None


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")

"""Who leads: a lease row with a monotonic epoch, used as a fencing token (contract §9: exactly one instance
evaluates, polls OpenRouter and delivers).

- :meth:`Leases.acquire` takes the lease when it is free or expired (a new term: ``epoch + 1``) or renews it
  for its holder (same epoch while it never lapsed). Expiry is judged by the database's clock
  (``clock_timestamp()``), so hosts' clocks may disagree freely.
- :meth:`Leases.fenced` opens a transaction that first re-checks the lease (holder, epoch, not expired) and
  keeps the row share-locked until commit. Every leader step writes inside one: a deposed leader's step fails
  with :class:`NotLeader` and writes nothing, and a successor's takeover waits until a step already past its
  check has committed, so the old term's last write is ordered before the new term's first.

Failure modes, and why they are handled:

- *Pooled connections*: nothing is tied to a session (no session advisory lock that a pooled connection could
  keep for hours, none that a rollback could silently drop): the lease is a row any connection can read.
- *A cancelled task*: a step is one transaction; cancellation rolls it back whole, and the lease lapses by
  itself if the holder stops renewing.
- *A network partition* (or a stalled process): the holder cannot renew; after ``ttl`` another instance takes
  a new term; when the old one reaches the database again, its fenced steps fail. What it had already handed to
  a notification channel before the partition is the documented at-least-once window.
- *Clock skew*: only the database's clock is compared.

The daemon's side (terms, fenced state, the send fence) is :mod:`guardd.store.postgres.cluster` and
:mod:`guardd.daemon.cluster`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from guardd.errors import NotLeader

__all__ = ["CHECK", "TAKE", "Lease", "Leases", "NotLeader", "check_term"]
from guardd.store.postgres.db import Conn, PgStore

TAKE = (
    "INSERT INTO leader(id, holder, epoch, expires_at) VALUES (1, %(me)s, 1, clock_timestamp() + %(ttl)s)"
    " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
    " epoch = CASE WHEN leader.holder = excluded.holder AND leader.expires_at > clock_timestamp()"
    " THEN leader.epoch ELSE leader.epoch + 1 END"
    " WHERE leader.holder = excluded.holder OR leader.expires_at <= clock_timestamp()"
    " RETURNING epoch, extract(epoch FROM expires_at - clock_timestamp())"
)
"""Take or renew the lease (parameters ``me``, ``ttl``): one row back for the holder, none while another holds it."""

CHECK = "SELECT 1 FROM leader WHERE id = 1 AND holder = %s AND epoch = %s AND expires_at > clock_timestamp() FOR SHARE"
"""Re-check a term inside a leader step's transaction (parameters: holder, epoch), share-locking the row."""


async def check_term(conn: Conn, me: str, epoch: int) -> None:
    """Raise NotLeader unless ``me`` still holds the lease in term ``epoch``; keep the row share-locked until the
    transaction ends, so a takeover waits for this step. A step whose client vanished mid-transaction (a
    partition) would hold that lock until the server notices: ``idle_in_transaction_session_timeout`` ends it."""
    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = '5s'")
    cur = await conn.execute(CHECK, (me, epoch))
    if await cur.fetchone() is None:
        raise NotLeader(f"{me} no longer leads (term {epoch} is over)")


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    epoch: int
    expires_at: datetime


class Leases:
    """The leader lease of one shared store, for the instance the store was opened as."""

    def __init__(self, store: PgStore, ttl: timedelta = timedelta(seconds=10)) -> None:
        self.store = store
        self.me = store.instance
        self.ttl = ttl

    async def acquire(self) -> int | None:
        """Take or renew the lease; return this instance's epoch, or None while another instance holds it."""
        async with self.store.transaction("leader lease") as conn:
            cur = await conn.execute(TAKE, {"me": self.me, "ttl": self.ttl})
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def release(self, epoch: int) -> None:
        """End this instance's term now (a clean shutdown), so a successor need not wait out the lease."""
        async with self.store.transaction("leader lease") as conn:
            await conn.execute(
                "UPDATE leader SET expires_at = clock_timestamp() WHERE id = 1 AND holder = %s AND epoch = %s",
                (self.me, epoch),
            )

    async def current(self) -> Lease | None:
        """The lease as it stands (for ``status``): holder, epoch and expiry; None when nobody ever led."""
        row = await self.store.fetchone("SELECT holder, epoch, expires_at FROM leader WHERE id = 1")
        return None if row is None else Lease(row[0], int(row[1]), row[2])

    @asynccontextmanager
    async def fenced(self, epoch: int) -> AsyncIterator[Conn]:
        """A transaction for one leader step of term ``epoch``: raise NotLeader (writing nothing) unless this
        instance still holds the lease in that term; keep the lease row share-locked until commit."""
        async with self.store.transaction("leader lease") as conn:
            await check_term(conn, self.me, epoch)
            yield conn

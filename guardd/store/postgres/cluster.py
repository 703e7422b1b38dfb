"""The shared store's side of many instances (contract §9): who is there, who leads, what a leader may write, and
the wake-up of every instance's switch mirror. The daemon's side is :mod:`guardd.daemon.cluster`.

- :class:`ControlLink` is a dedicated connection (never pooled) for the control plane: taking or renewing the
  lease, the instance's heartbeat and reading the switch document with the age of the guard's heartbeat (the last
  time a leader reached the store as leader). Each call is bounded (``timeout``); a call
  that fails or times out drops the connection and the next call connects again, so a terminated backend, a
  restarted server or a network partition costs one failed call, never a hung loop. Its session has a
  ``lock_timeout``, so a takeover never waits long behind a lock.
- :class:`FencedStateStore` is :class:`PgStateStore` for the leader: every write transaction first re-checks the
  lease (:func:`guardd.store.postgres.lease.check_term`) in that same transaction, so a deposed leader writes no
  decision, alert, outbox row or claim once its term is over. Recording the outcome of a send already made
  (delivered, failed, channel health) is not fenced: it is a fact, and refusing it would only cause a resend.
  An outbox claim lasts until the claiming term's end plus :data:`SEND_BOUND` (by the database's clock): a send
  starts only within the term (:meth:`guardd.daemon.cluster.Cluster.fence`), so a successor re-claims a row only once
  any send of it by the old leader has finished or given up.
- :func:`switch_wakeups` LISTENs on its own connection: the ``switch_state`` trigger (schema 6) notifies at
  every committed change of the switch document, with the schema as payload (one database may hold several
  guardd stores).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from guardd.core.redact import store_url as redacted
from guardd.errors import InstanceTaken, NotLeader, StoreError
from guardd.store.postgres.db import Conn, PgStore
from guardd.store.postgres.members import LEASE, cluster_status, forget_instance, previous_readers
from guardd.store.postgres.state import PgStateStore
from guardd.store.shared import doc_from_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from guardd.store.api import CommittedSwitch, Forgotten, InstanceInfo, OutboxRow, StateAPI, Term
    from guardd.store.api.rows_cluster import FileIdentity

log = logging.getLogger("guardd.cluster")

T = TypeVar("T")

SEND_BOUND = timedelta(seconds=20)
"""The longest one send may take (apprise's connect and read timeouts, with room): an outbox row claimed by a
leader stays claimed this long after its term ends."""

CHANNELS = {"guardd_switch": "switch", "guardd_events": "events", "guardd_overrides": "overrides"}
"""What the triggers of schema 6 notify: a committed switch change, a committed batch of events (any instance);
and what :meth:`PgCluster.wake_leader` notifies: an override recorded by an instance that does not lead."""


class ControlLink:
    """One dedicated connection for the control plane of one instance (see the module's docstring)."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: Conn | None = None

    async def _connect(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.timeout))
            )
            ms = int(self.timeout * 1000)
            await self._conn.execute(f"SET lock_timeout = {ms // 2}; SET statement_timeout = {ms}")
        return self._conn

    async def call(self, doing: str, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work`` on the link within ``timeout`` seconds; raise StoreError (dropping the connection, so
        the next call reconnects) when it fails."""

        try:
            async with asyncio.timeout(self.timeout):
                return await work(await self._connect())
        except (psycopg.Error, TimeoutError, OSError) as exc:
            await self.close()
            reason = f"no answer within {self.timeout:g}s" if isinstance(exc, TimeoutError) else str(exc).strip()
            raise StoreError(f"cannot {doing} on the shared store {redacted(self.url)}: {reason}") from None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await asyncio.wait_for(conn.close(), 1.0)
            except (psycopg.Error, TimeoutError, OSError):
                pass

    # ---- instances -----------------------------------------------------------------------------------------
    async def register(self, me: InstanceInfo, stale_after: timedelta) -> None:
        """Enter ``me`` in the instances table; raise InstanceTaken when a live guardd holds the name (seen
        within ``stale_after``, not stopped, and — when its pid means something here — its process still runs)."""

        async def work(conn: Conn) -> None:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT host, pid, token, stopped_at IS NULL AND last_seen > clock_timestamp() - %s"
                    " FROM instances WHERE name = %s FOR UPDATE",
                    (stale_after, me.name),
                )
                row = await cur.fetchone()
                if row is not None and row[2] != me.token and row[3] and not _dead_here(row[2], int(row[1]), me):
                    raise InstanceTaken(
                        f"another guardd (pid {row[1]}) is running on instance {me.name!r} (host {row[0]}) of "
                        f"{redacted(self.url)}; give this one another [guardd] instance name"
                    )
                await conn.execute(
                    "INSERT INTO instances(name, host, pid, token, started_at, last_seen, stopped_at, ledgers,"
                    " version, config_digest) VALUES (%(name)s, %(host)s, %(pid)s, %(token)s, clock_timestamp(),"
                    " clock_timestamp(), NULL, %(ledgers)s, %(version)s, %(digest)s) ON CONFLICT (name) DO UPDATE"
                    " SET host = excluded.host, pid = excluded.pid, token = excluded.token,"
                    " started_at = excluded.started_at, last_seen = excluded.last_seen, stopped_at = NULL,"
                    " ledgers = excluded.ledgers, version = excluded.version, config_digest = excluded.config_digest",
                    {
                        "name": me.name,
                        "host": me.host,
                        "pid": me.pid,
                        "token": me.token,
                        "ledgers": json.dumps(list(me.ledgers)),
                        "version": me.version,
                        "digest": me.config_digest,
                    },
                )

        await self.call("register this instance", work)

    async def beat(self, me: InstanceInfo, ttl: timedelta, lead: bool) -> tuple[bool, Term | None]:
        """One round of the control loop, in one transaction: refresh ``me``'s ``last_seen`` and digest, and
        (with ``lead``) take or renew the lease for ``ttl``. Return (still owns its name, the term it holds)."""
        # Leading's modules, imported here: status imports this module but never leads.
        from guardd.store.api import Term
        from guardd.store.postgres.lease import TAKE

        async def work(conn: Conn) -> tuple[bool, Term | None]:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE instances SET last_seen = clock_timestamp(), config_digest = %s, ledgers = %s"
                    " WHERE name = %s AND token = %s",
                    (me.config_digest, json.dumps(list(me.ledgers)), me.name, me.token),
                )
                if cur.rowcount != 1:
                    return False, None
                if not lead:
                    return True, None
                cur = await conn.execute(TAKE, {"me": me.name, "ttl": ttl})
                row = await cur.fetchone()
            return True, None if row is None else Term(int(row[0]), float(row[1]))

        return await self.call("renew this instance and the lease", work)

    async def retire(self, me: InstanceInfo, epoch: int | None) -> None:
        """A clean stop: mark ``me`` stopped and end its term now, so a successor need not wait out the lease."""

        async def work(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE instances SET stopped_at = clock_timestamp(), last_seen = clock_timestamp()"
                    " WHERE name = %s AND token = %s",
                    (me.name, me.token),
                )
                if epoch is not None:
                    await conn.execute(
                        "UPDATE leader SET expires_at = clock_timestamp() WHERE id = 1 AND holder = %s AND epoch = %s",
                        (me.name, epoch),
                    )

        await self.call("retire this instance", work)

    async def read_switch(self) -> tuple[dict[str, Any] | None, float | None]:
        """The switch document as the leader last committed it (its JSON form, None when none was), and the age
        of the guard's heartbeat in seconds by the database's clock (:data:`~guardd.store.postgres.members.LEASE`;
        None when no leader has one), in one statement."""

        async def work(conn: Conn) -> tuple[dict[str, Any] | None, float | None]:
            cur = await conn.execute(
                "SELECT (SELECT doc FROM switch_state WHERE id = 1),"
                f" (SELECT extract(epoch FROM clock_timestamp() - seen) FROM ({LEASE}) AS lease)"
            )
            row = await cur.fetchone()
            doc, age = (None, None) if row is None else row
            return (None if doc is None else dict(doc)), (None if age is None else max(0.0, float(age)))

        return await self.call("read the switch", work)


def _dead_here(token: str, pid: int, me: InstanceInfo) -> bool:
    """True when the holder of ``token`` ran in this process's pid space (the token's prefix: this boot, this pid
    namespace; see :class:`~guardd.store.api.InstanceInfo`) and no process ``pid`` runs here (a guardd killed,
    then restarted). A host name says nothing: two containers may share one, and their pid numbers."""
    space, slash, _ = token.partition("/")
    if not slash or space != me.token.partition("/")[0]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@asynccontextmanager
async def switch_wakeups(url: str, timeout: float = 3.0) -> AsyncIterator[AsyncIterator[str]]:
    """LISTEN for this store's committed changes on a connection of its own; yield an iterator that yields
    ``"switch"`` (the switch document changed), ``"events"`` (a batch of events was stored, by any instance) or
    ``"overrides"`` (an instance that does not lead recorded an override) per change. It ends (StoreError) when
    the connection is lost: notifications sent meanwhile are lost too, which the mirror's poll and the periodic
    evaluation make up for."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        raise StoreError(f"cannot listen on the shared store {redacted(url)}: {str(exc).strip()}") from None

    async def changes() -> AsyncIterator[str]:
        try:
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            schema = str(row[0]) if row else "public"
            for channel in CHANNELS:
                await conn.execute(f"LISTEN {channel}")
            async for note in conn.notifies():
                if note.payload == schema and note.channel in CHANNELS:
                    yield CHANNELS[note.channel]
        except psycopg.Error as exc:
            raise StoreError(f"lost the listening connection to {redacted(url)}: {str(exc).strip()}") from None

    try:
        yield changes()
    finally:
        try:
            await asyncio.wait_for(conn.close(), 1.0)
        except (psycopg.Error, TimeoutError, OSError):
            pass


class FencedPgStore(PgStore):
    """A view of ``store`` (same pool) whose every transaction first re-checks this instance's term."""

    def __init__(self, store: PgStore, term: Callable[[], int | None]) -> None:
        self.base = store
        self.term = term
        super().__init__(store.pool, store.url, store.instance)
        self.writes = store.writes  # one store health for the store and its fenced view

    @asynccontextmanager
    async def transaction(self, kind: str = "state") -> AsyncIterator[Conn]:
        """A transaction of a leader step: raise NotLeader, writing nothing, unless the term still runs."""
        epoch = self.term()
        if epoch is None:
            raise NotLeader(f"{self.instance} does not lead now")
        from guardd.store.postgres.lease import check_term  # here, not above: status imports this module, never leads

        async with super().transaction(kind) as conn:
            await check_term(conn, self.instance, epoch)
            yield conn


class FencedStateStore(PgStateStore):
    """The leader's state store: decisions, alerts, outbox rows, claims and markers only within its term."""

    def __init__(self, store: PgStore, term: Callable[[], int | None]) -> None:
        super().__init__(FencedPgStore(store, term))
        self.plain = PgStateStore(store)

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[OutboxRow]:
        """Claim due rows until this term's end plus :data:`SEND_BOUND`, by the database's clock (the leader's
        clock may differ from its predecessor's). ``lease`` is unused: the term bounds the claim."""
        from guardd.store.api import OutboxRow  # here, not above: status imports this module, never leads

        async with self.store.transaction() as conn:
            cur = await conn.execute(
                "UPDATE outbox SET lease_until = (SELECT expires_at FROM leader WHERE id = 1) + %(bound)s,"
                " lease_owner = %(owner)s WHERE id IN ("
                " SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= %(now)s"
                " AND (lease_until IS NULL OR lease_until < clock_timestamp()) ORDER BY id LIMIT %(limit)s"
                " FOR UPDATE SKIP LOCKED)"
                " RETURNING id, budget, severity, title, body, notifier, notifier_url, attempts, created_at",
                {"bound": SEND_BOUND, "owner": owner, "now": now, "limit": limit},
            )
            rows = await cur.fetchall()
        return [OutboxRow(*r[1:7], id=r[0], attempts=r[7], created_at=r[8]) for r in sorted(rows)]

    async def delivered(self, row: OutboxRow, now: datetime) -> None:
        await self.plain.delivered(row, now)

    async def failed(self, row: OutboxRow, now: datetime, error: str, retry_at: datetime | None) -> None:
        await self.plain.failed(row, now, error, retry_at)

    async def channel_result(self, url: str, ok: bool, error: str | None, now: datetime) -> bool:
        return await self.plain.channel_result(url, ok, error, now)

    async def reroute(self, row: OutboxRow, notifier: int, url: str, why: str, now: datetime) -> None:
        await self.plain.reroute(row, notifier, url, why, now)

    async def release_dead_leases(self, instance: str) -> int:
        return await self.plain.release_dead_leases(instance)


class PgCluster:
    """:class:`guardd.store.api.ClusterAPI` over one open :class:`PgStore`: the control calls on a
    :class:`ControlLink` of their own, fenced state over the store's pool, status from pooled reads."""

    def __init__(self, store: PgStore, timeout: float = 3.0) -> None:
        self.store = store
        self.link = ControlLink(store.url, timeout)

    async def register(self, me: InstanceInfo, alive_within: timedelta) -> None:
        await self.link.register(me, alive_within)

    async def beat(self, me: InstanceInfo, ttl: timedelta, lead: bool) -> tuple[bool, Term | None]:
        return await self.link.beat(me, ttl, lead)

    async def retire(self, me: InstanceInfo, epoch: int | None) -> None:
        await self.link.retire(me, epoch)

    async def read_switch(self) -> CommittedSwitch:
        raw, age = await self.link.read_switch()
        from guardd.store.api.rows_cluster import CommittedSwitch  # where it is built: status imports this module

        return CommittedSwitch(None if raw is None else doc_from_json(raw), age)

    def wakeups(self) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        return switch_wakeups(self.store.url, self.link.timeout)

    async def wake_leader(self) -> None:
        async with self.store.transaction() as conn:
            await conn.execute("SELECT pg_notify('guardd_overrides', current_schema())")

    def fenced_state(self, term: Callable[[], int | None]) -> StateAPI:
        return FencedStateStore(self.store, term)

    async def previous_readers(
        self, me: str, files: Sequence[FileIdentity], alive_within: timedelta
    ) -> list[tuple[str, str]]:
        return await previous_readers(self.store, me, files, alive_within)

    async def status(self) -> dict[str, object]:
        return await cluster_status(self.store)

    async def forget(self, name: str) -> Forgotten:
        return await forget_instance(self.store, name)

    async def close(self) -> None:
        await self.link.close()

"""Who shares the store (contract §9): the instances' rows, the ``cluster`` section of ``status --json`` with its
warnings, and retiring an instance that will not come back (``guardd store forget``). Reads over the store's pool;
the control plane that writes an instance's own row is :class:`guardd.store.postgres.cluster.ControlLink`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from guardd.store.postgres.db import PgStore

if TYPE_CHECKING:  # the rows are imported where they are built: status reads this module
    from collections.abc import Sequence

    from guardd.store.api.rows_cluster import FileIdentity, Forgotten

ALIVE_WITHIN = timedelta(seconds=15)
"""An instance not seen for longer is not running: its name may be taken, its digest is not compared."""

LEASE = (
    "SELECT l.holder, l.expires_at > clock_timestamp() AS leads,"
    " CASE WHEN i.name IS NOT NULL THEN least(i.last_seen, l.expires_at) END AS seen"
    " FROM leader l LEFT JOIN instances i ON i.name = l.holder WHERE l.id = 1"
)
"""The lease (no row: nobody ever led): its holder — the leader, or the last one —, whether it leads now, and the
guard's heartbeat ``seen``: the last time a leader reached the store *as leader*, by the database's clock. That is
the holder's ``last_seen`` (renewing the lease refreshes it in the same transaction), but never later than its
term's end: a leader that lost its term keeps reaching the store (its work stuck, it beats without renewing), and
its heartbeat then says nothing about anything being evaluated. NULL when the holder has no row of its own."""


@dataclass(frozen=True, slots=True)
class InstanceRow:
    name: str
    host: str
    pid: int
    last_seen: datetime
    stopped_at: datetime | None
    ledgers: list[str]
    version: str
    config_digest: str
    age: float
    """Seconds since ``last_seen``, by the database's clock."""


async def instances(store: PgStore, keep: timedelta = timedelta(days=1)) -> list[InstanceRow]:
    """Every instance that is running or was seen within ``keep``, by name."""
    rows = await store.fetchall(
        "SELECT name, host, pid, last_seen, stopped_at, ledgers, version, config_digest,"
        " extract(epoch FROM clock_timestamp() - last_seen) FROM instances"
        " WHERE stopped_at IS NULL OR last_seen > clock_timestamp() - %s ORDER BY name",
        (keep,),
    )
    return [InstanceRow(r[0], r[1], int(r[2]), r[3], r[4], list(r[5]), r[6], r[7], max(0.0, float(r[8]))) for r in rows]


async def cluster_status(store: PgStore) -> dict[str, Any]:
    """The ``cluster`` section of ``status --json`` (contract §9): the leader, the instances, and warnings —
    among them every running instance whose configuration digest differs from the others'. ``last_leader`` (added)
    names the instance that held the lease last, running or not (the leader when there is one);
    ``last_leader_seen`` (added) is the guard's heartbeat: when it last reached the store as leader (:data:`LEASE`)."""
    rows = await instances(store)
    lease = await store.fetchone(LEASE)
    last = None if lease is None else str(lease[0])
    holder = last if lease is not None and lease[1] else None
    seen: datetime | None = None if lease is None else lease[2]
    running = [r for r in rows if r.stopped_at is None and r.age <= ALIVE_WITHIN.total_seconds()]
    warnings: list[str] = []
    digests: dict[str, list[str]] = {}
    for row in running:
        digests.setdefault(row.config_digest, []).append(row.name)
    if len(digests) > 1:
        groups = "; ".join(f"{', '.join(names)} ({digest})" for digest, names in sorted(digests.items()))
        warnings.append(
            f"instances run different configurations (budgets, health, notifiers, alerts, killswitch): {groups}"
        )
    if holder is None:
        warnings.append("no instance leads now: nothing is evaluated or sent until one takes over")
    for row in rows:
        if row.stopped_at is None and row.age > ALIVE_WITHIN.total_seconds():
            files = ", ".join(str(path) for path in row.ledgers) or "none"
            warnings.append(
                f"instance {row.name} has not reached the store for {int(row.age)} s: the spend of its ledgers"
                f" ({files}) is not counted until it is back (or, retired, `guardd store forget {row.name}`)"
            )
    return {
        "leader": holder,
        "last_leader": last,  # whose heartbeat the guard's liveness is (the leader, or the one before)
        "last_leader_seen": None if seen is None else seen.isoformat(),  # that heartbeat (LEASE)
        "instances": [
            {
                "name": r.name,
                "last_seen": r.last_seen.isoformat(),
                "ledgers": r.ledgers,
                "version": r.version,
                "config_digest": r.config_digest,
                "running": r in running,
            }
            for r in rows
        ],
        "warnings": warnings,
    }


async def forget_instance(store: PgStore, name: str) -> Forgotten:
    """Mark instance ``name`` stopped, as its own clean stop would have: an instance that died without one (a host
    killed, never to return) is otherwise warned of forever. Refused (:attr:`Forgotten.RUNNING`) while it was seen
    within :data:`ALIVE_WITHIN`, by the database's clock, in the same statement: a live guardd is never hidden. An
    instance that comes back later registers again, as any restart does."""
    from guardd.store.api.rows_cluster import Forgotten

    async with store.transaction() as conn:
        cur = await conn.execute(
            "UPDATE instances SET stopped_at = clock_timestamp() WHERE name = %s AND stopped_at IS NULL"
            " AND last_seen <= clock_timestamp() - %s RETURNING name",
            (name, ALIVE_WITHIN),
        )
        if await cur.fetchone() is not None:
            return Forgotten.FORGOTTEN
        cur = await conn.execute("SELECT stopped_at IS NOT NULL FROM instances WHERE name = %s", (name,))
        row = await cur.fetchone()
    if row is None:
        return Forgotten.UNKNOWN
    return Forgotten.STOPPED if row[0] else Forgotten.RUNNING


async def previous_readers(
    store: PgStore, me: str, files: Sequence[FileIdentity], alive_within: timedelta
) -> list[tuple[str, str]]:
    """Return ``(instance, path)`` for each of ``files`` (this host's ledger files) that another instance name
    read from (a checkpoint past offset 0) while ``me`` never did, when that instance is not running (no row,
    stopped, or not seen within ``alive_within`` by the database's clock): the same files, read before under an
    old name. Lines without an id are keyed by instance, so ``me`` reading them again would count them twice."""
    if not files:
        return []
    rows = await store.fetchall(
        "SELECT DISTINCT f.instance, f.path FROM files f LEFT JOIN instances i ON i.name = f.instance"
        " WHERE f.instance <> %s AND f.byte_offset > 0"
        " AND (f.dev, f.ino, f.fingerprint) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[]))"
        " AND NOT EXISTS (SELECT 1 FROM files m WHERE m.instance = %s AND m.dev = f.dev AND m.ino = f.ino"
        " AND m.fingerprint = f.fingerprint)"
        " AND (i.name IS NULL OR i.stopped_at IS NOT NULL OR i.last_seen <= clock_timestamp() - %s)"
        " ORDER BY 1, 2",
        (me, [f.dev for f in files], [f.ino for f in files], [f.fingerprint for f in files], me, alive_within),
    )
    return [(str(instance), str(path)) for instance, path in rows]

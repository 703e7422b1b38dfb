"""Waiting for the leader of a shared store (contract §9) to apply a manual trip/release that another process
recorded (:func:`guardd.services.overrides.request_manual`): only the leader decides the switch.

Two kinds of process wait, over one loop (:func:`wait_applied`):

- a daemon that does not lead (``POST /v1/killswitch/…`` on a follower): its cluster member already reads the
  committed switch at every change (:meth:`guardd.daemon.cluster.Cluster.until_applied`);
- a command (``guardd killswitch trip|release``), which is no member: :func:`leader_applies` wakes the leader and
  reads the committed switch itself, at every committed change (a listening connection of its own) and at least
  every :data:`POLL` seconds.

When no leader applies it within :data:`APPLY_WITHIN` seconds, the caller raises :func:`not_applied`: the
override stays recorded, and the next leader applies it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from guardd.core.switch import SwitchDoc
from guardd.errors import NotApplied, StoreError
from guardd.store.api import ClusterAPI

APPLY_WITHIN = 15.0
"""Seconds an instance that does not lead waits for the leader to apply an override it recorded (a takeover
takes 11 s: the lease, 10 s, and one round)."""
POLL = 1.0
"""Seconds between reads of the committed switch by a command, should a notification be lost."""

Applied = Callable[[SwitchDoc | None], bool]


def not_applied(action: str, scope: str, why: str = f"no leader applied it within {APPLY_WITHIN:g}s") -> NotApplied:
    """The error of a manual ``action`` on ``scope`` that is recorded, but not applied: ``why`` (no leader applied
    it in time, no instance runs, the store stopped answering)."""
    return NotApplied(
        f"the {action} of {scope} is recorded in the shared store, but {why}; the leader applies it when one"
        " runs, and every instance's switch file shows it then (there is no need to ask again)"
    )


async def wait_applied(
    applied: Applied, read: Callable[[], Awaitable[SwitchDoc | None]], changed: asyncio.Event, timeout: float
) -> SwitchDoc | None:
    """Return the first committed switch document that ``read`` gives and ``applied`` accepts, reading it again
    each time ``changed`` is set; None when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        changed.clear()
        doc = await read()
        if applied(doc):
            return doc
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:  # (not asyncio.wait_for: on Python 3.11 it can lose a cancellation racing the wake-up)
            async with asyncio.timeout(left):
                await changed.wait()
        except TimeoutError:
            pass


async def leader_applies(
    cluster: ClusterAPI, applied: Applied, action: str, scope: str, timeout: float = APPLY_WITHIN
) -> SwitchDoc:
    """For a process that is no member of the cluster (a command) that recorded a manual ``action`` on ``scope``:
    wake the leader and return the switch document it commits once ``applied`` accepts it.

    Raise :func:`not_applied` when none does within ``timeout`` seconds — at once when no instance runs on the
    store (none could) — or when the store stops answering meanwhile (the override is recorded all the same).
    """
    changed = asyncio.Event()

    async def listen() -> None:
        while True:
            try:
                async with cluster.wakeups() as changes:
                    changed.set()  # whatever was committed before it listened
                    async for change in changes:
                        if change == "switch":
                            changed.set()
            except StoreError:
                pass  # the poll below covers the gap
            await asyncio.sleep(POLL)

    async def poll() -> None:
        while True:
            await asyncio.sleep(POLL)
            changed.set()

    tasks = [asyncio.create_task(listen(), name="switch wake-ups"), asyncio.create_task(poll(), name="switch poll")]
    try:
        status = await cluster.status()
        instances = status.get("instances")
        running = isinstance(instances, list) and any(i.get("running") for i in instances)
        if status.get("leader") is None and not running:
            raise not_applied(action, scope, "no guardd instance runs on this store now")
        await cluster.wake_leader()

        async def committed() -> SwitchDoc | None:
            return (await cluster.read_switch()).doc

        doc = await wait_applied(applied, committed, changed, timeout)
    except StoreError as exc:
        if isinstance(exc, NotApplied):
            raise
        raise not_applied(action, scope, f"the store stopped answering ({exc})") from exc
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if doc is None:
        raise not_applied(action, scope)
    return doc

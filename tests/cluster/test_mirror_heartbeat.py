"""A follower's switch file on a shared store (contract §3, §7, §9) carries the LEADER's heartbeat: the last time a
leader reached the store, by the database's clock. While one leads, the file stays fresh; when none does (every
instance that could lead is stuck, or may not take the lease), its ``expires_at`` passes ``stale_after`` after the
last leader's term ended, even while this host still reaches the store: a dead guard never reads as alive.

web-1 leads once for real (``guardd run --once`` commits its decision), then the test plays web-1 through the
store's own calls, with no daemon behind it. The follower, web-2, is the daemon's cluster member and switch mirror
run in this process, as a daemon that may not take the lease (``lead=False``). Times are compared by the database's
clock (the follower's file, written for local clients, is on this host's clock: the same one here)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from guardd import __version__
from guardd.config import load_config
from guardd.core.switch_read import liveness, read_document
from guardd.daemon.cluster import HEARTBEAT_EVERY, Cluster, config_digest, heartbeat_here
from guardd.store.api import InstanceInfo
from guardd.store.postgres.cluster import PgCluster
from guardd.store.postgres.db import PgStore
from tests.cluster.conftest import Host
from tests.cluster.test_status_shared_switch import host as shared_host

STALE = timedelta(seconds=8)
"""``stale_after`` here: above the mirror's rewrite period plus a round, as any real ``stale_after`` is."""


def host(folder: Path, name: str, pg_url: str, spent: str = "0") -> Host:
    """Host ``name`` (no daemon): a daily budget ``all`` of $1, a ledger that spent ``spent`` today, evaluated every
    second and stale after :data:`STALE`."""
    return shared_host(
        folder, name, pg_url, spent, f'evaluate_every = "1s"\nstale_after = "{int(STALE.total_seconds())}s"\n'
    )


def led_once(tmp_path: Path, pg_url: str) -> Host:
    """web-1 led once: it stored $2 of a $1 budget, committed a tripped switch and stopped (its term ended)."""
    web1 = host(tmp_path / "web-1", "web-1", pg_url, "2")
    done = web1.guardd("run", "--once")
    assert done.returncode == 0, done.stderr
    return web1


async def db(pg_url: str, query: str) -> Any:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return row[0]


async def db_now(pg_url: str) -> datetime:
    now: datetime = await db(pg_url, "SELECT clock_timestamp()")
    return now


async def term_end(pg_url: str) -> datetime:
    """When the lease (the last leader's term) ends or ended, by the database's clock."""
    end: datetime = await db(pg_url, "SELECT expires_at FROM leader WHERE id = 1")
    return end


async def until_the_database_says(pg_url: str, moment: datetime) -> None:
    """Sleep until ``moment`` by the database's clock (a duration measured on it, then slept on this host's)."""
    await asyncio.sleep(max(0.0, (moment - await db_now(pg_url)).total_seconds()))


@asynccontextmanager
async def playing(pg_url: str, config: Path, lead: bool, ttl: timedelta) -> AsyncIterator[None]:
    """Play the instance of ``config`` (no daemon): register it, then beat every half second — taking or renewing
    the lease for ``ttl`` with ``lead``, else only reaching the store (as a leader whose work is stuck does)."""
    settings = load_config(str(config), env={})
    me = InstanceInfo(
        settings.instance, "elsewhere", os.getpid(), "test/play", [], __version__, config_digest(settings)
    )
    async with PgStore.open(pg_url, settings.instance) as store:
        cluster = PgCluster(store)
        await cluster.register(me, timedelta(seconds=15))
        _owns, term = await cluster.beat(me, ttl, lead)
        assert (term is not None) == lead

        async def beat() -> None:
            while True:
                await asyncio.sleep(0.5)
                await cluster.beat(me, ttl, lead)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            await cluster.close()


@asynccontextmanager
async def follower(pg_url: str, config: Path) -> AsyncIterator[list[datetime]]:
    """The instance of ``config`` as its daemon runs it, except that it never takes the lease: its cluster member
    and switch mirror. Yields the times (this host's clock) at which it wrote its switch file."""
    settings = load_config(str(config), env={})
    writes: list[datetime] = []

    def on_file(doc: Any, error: str | None) -> None:
        assert error is None, error
        writes.append(datetime.now(UTC))

    async with PgStore.open(pg_url, settings.instance) as store:
        cluster = Cluster(PgCluster(store), settings, lead=False)
        cluster.on_file = on_file
        await cluster.join()
        try:
            yield writes
        finally:
            await cluster.leave()
    assert cluster.reachable, "the follower reached the store throughout"


async def rewritten_after(writes: list[datetime], moment: datetime) -> None:
    """Wait until the follower wrote its file again after ``moment`` (it still reaches the store)."""
    for _ in range(int((moment - datetime.now(UTC)).total_seconds() + HEARTBEAT_EVERY + 10) * 10):
        if writes and writes[-1] > moment:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the follower did not rewrite its switch file after {moment}: {writes}")


async def test_a_followers_file_expires_when_no_instance_leads(pg_url, tmp_path):
    led_once(tmp_path, pg_url)
    web2 = host(tmp_path / "web-2", "web-2", pg_url)
    ended = await term_end(pg_url)

    async with follower(pg_url, web2.config) as writes:
        await rewritten_after(writes, ended + STALE)
        doc = web2.switch_doc()
        now = await db_now(pg_url)

    assert doc is not None and doc["tripped"] is True  # the last leader's decision, still shown
    guard = liveness(read_document(doc), now)
    assert not guard.alive, f"the follower's file reads as a live guard at {now} while none leads: {doc}"
    assert datetime.fromisoformat(doc["expires_at"]) <= ended + STALE


async def test_a_followers_file_expires_when_the_last_leader_still_reaches_the_store_but_no_longer_leads(
    pg_url, tmp_path
):
    web1 = led_once(tmp_path, pg_url)
    web2 = host(tmp_path / "web-2", "web-2", pg_url)
    async with playing(pg_url, web1.config, lead=True, ttl=timedelta(seconds=1)):
        pass  # web-1 leads once more, for one second
    ended = await term_end(pg_url)

    async with (
        playing(pg_url, web1.config, lead=False, ttl=timedelta(seconds=1)),  # stuck: beats, never renews
        follower(pg_url, web2.config) as writes,
    ):
        await rewritten_after(writes, ended + STALE)
        doc = web2.switch_doc()
        now = await db_now(pg_url)

    assert doc is not None
    assert not liveness(read_document(doc), now).alive, f"a live guard at {now} while none leads: {doc}"
    assert datetime.fromisoformat(doc["expires_at"]) <= ended + STALE


async def test_status_says_the_guard_is_down_when_the_last_leader_still_reaches_the_store_but_no_longer_leads(
    pg_url, tmp_path
):
    web1 = led_once(tmp_path, pg_url)
    web2 = host(tmp_path / "web-2", "web-2", pg_url)
    async with playing(pg_url, web1.config, lead=True, ttl=timedelta(seconds=1)):
        pass
    ended = await term_end(pg_url)

    async with playing(pg_url, web1.config, lead=False, ttl=timedelta(seconds=1)):  # stuck: beats, never renews
        await until_the_database_says(pg_url, ended + STALE + timedelta(seconds=1))
        status = await asyncio.to_thread(web2.status)

    assert status["cluster"]["leader"] is None
    assert status["guard"]["alive"] is False, status["guard"]
    assert "no guardd instance leads" in status["guard"]["reason"]


async def test_a_followers_file_stays_fresh_while_a_leader_renews_its_term(pg_url, tmp_path):
    web1 = led_once(tmp_path, pg_url)
    web2 = host(tmp_path / "web-2", "web-2", pg_url)

    dead: list[tuple[datetime, Any]] = []
    async with (
        playing(pg_url, web1.config, lead=True, ttl=timedelta(seconds=10)),
        follower(pg_url, web2.config),
    ):
        until = await db_now(pg_url) + STALE + timedelta(seconds=HEARTBEAT_EVERY + 1)
        while (now := await db_now(pg_url)) < until:
            doc = web2.switch_doc()
            if doc is None or not liveness(read_document(doc), now).alive:
                dead.append((now, doc))
            await asyncio.sleep(0.5)

    assert dead == []


def test_the_leaders_heartbeat_is_placed_on_this_hosts_clock_by_its_age_and_never_later():
    asked = datetime(2026, 1, 1, 12, 0, 0, 900000, tzinfo=UTC)  # this host's time when it sent the request

    assert heartbeat_here(asked, 30.2) == datetime(2026, 1, 1, 11, 59, 30, tzinfo=UTC)  # 11:59:30.7, rounded down
    assert heartbeat_here(asked, 0.0) == datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

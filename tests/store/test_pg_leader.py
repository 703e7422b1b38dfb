"""The leader lease of the shared store: one holder at a time, a new epoch for every new term, and fencing that
stops a deposed leader's writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import pytest

from guardd.errors import NotLeader
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.lease import Leases

SHORT = timedelta(milliseconds=300)


@asynccontextmanager
async def instances(url: str, *names: str, ttl: timedelta = SHORT) -> AsyncIterator[list[Leases]]:
    async with AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(PgStore.open(url, name)) for name in names]
        yield [Leases(store, ttl) for store in stores]


async def lapse(ttl: timedelta = SHORT) -> None:
    await asyncio.sleep(ttl.total_seconds() * 1.5)


async def test_the_first_instance_to_ask_leads_and_others_wait_while_its_lease_lasts(pg_url):
    async with instances(pg_url, "web-1", "web-2", ttl=timedelta(seconds=30)) as (one, two):
        assert await one.acquire() == 1
        assert await two.acquire() is None
        assert await one.acquire() == 1  # a renewal keeps the term
        lease = await two.current()
    assert lease is not None and (lease.holder, lease.epoch) == ("web-1", 1)


async def test_an_expired_lease_is_taken_over_in_a_new_term(pg_url):
    async with instances(pg_url, "web-1", "web-2") as (one, two):
        assert await one.acquire() == 1
        await lapse()
        assert await two.acquire() == 2
        assert await one.acquire() is None


async def test_a_holder_whose_lease_lapsed_starts_a_new_term_even_if_nobody_took_over(pg_url):
    async with instances(pg_url, "web-1") as (one,):
        assert await one.acquire() == 1
        await lapse()
        assert await one.acquire() == 2


async def test_a_deposed_leaders_step_fails_and_writes_nothing(pg_url):
    async with instances(pg_url, "web-1", "web-2") as (one, two):
        old = await one.acquire()
        assert old is not None
        await lapse()
        assert await two.acquire() == 2
        with pytest.raises(NotLeader):
            async with one.fenced(old) as conn:
                await conn.execute("INSERT INTO markers(name, value, at) VALUES ('decision', 'x', now())")
        assert await one.store.fetchall("SELECT * FROM markers") == []


async def test_a_released_lease_is_taken_over_at_once(pg_url):
    async with instances(pg_url, "web-1", "web-2", ttl=timedelta(seconds=30)) as (one, two):
        epoch = await one.acquire()
        assert epoch is not None
        await one.release(epoch)
        assert await two.acquire() == 2


async def test_a_takeover_waits_for_the_old_leaders_step_already_under_way(pg_url):
    async with instances(pg_url, "web-1", "web-2") as (one, two):
        epoch = await one.acquire()
        assert epoch is not None
        async with one.fenced(epoch) as conn:
            await lapse()  # the lease expires while the step is under way
            takeover = asyncio.create_task(two.acquire())
            await asyncio.sleep(0.3)
            assert not takeover.done()
            await conn.execute("INSERT INTO markers(name, value, at) VALUES ('decision', 'old term', now())")
        assert await takeover == 2
        assert await one.store.fetchall("SELECT value FROM markers") == [("old term",)]

"""The cluster's parts in one process over a real PostgreSQL schema: the lease's terms, fenced writes, the switch
mirror writing each instance's own file, instance names and the configuration digest."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from guardd.config import load_config
from guardd.core.switch import Scope, SwitchDoc
from guardd.daemon.cluster import Cluster
from guardd.errors import InstanceTaken, NotLeader
from guardd.store.api import Message, SwitchDecision
from guardd.store.postgres.cluster import PgCluster, cluster_status
from guardd.store.postgres.db import PgStore

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
TTL = timedelta(seconds=2)
USD = 10**12


def config(tmp_path: Path, name: str, daily: str = "5") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    path = folder / "guardd.toml"
    path.write_text(
        f'[guardd]\ninstance = "{name}"\nstate_dir = "state"\nstale_after = "5m"\n'
        f'[[budgets]]\nname = "all"\ndaily = {daily}\n'
    )
    return path


@asynccontextmanager
async def members(pg_url: str, tmp_path: Path, *names: str, daily: str = "5") -> AsyncIterator[list[Cluster]]:
    async with AsyncExitStack() as stack:
        clusters = []
        for name in names:
            store = await stack.enter_async_context(PgStore.open(pg_url, name))
            cluster = Cluster(
                PgCluster(store), load_config(str(config(tmp_path, name, daily)), env={}), ttl=TTL, tick=0.2
            )
            clusters.append(cluster)
        try:
            yield clusters
        finally:
            for cluster in clusters:
                await cluster.leave()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def tripped_doc(now: datetime) -> SwitchDoc:
    scope = Scope(
        True, "daily spend $6.00 reached the trip threshold $5.00 (100%)", now, None, "daily", 6 * USD, 5 * USD, 0
    )
    return SwitchDoc(now, now, {"all": scope})


async def test_one_member_leads_and_a_clean_stop_hands_over_at_once(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await two.join()
        await until(lambda: one.leading or two.leading)
        first, second = (one, two) if one.leading else (two, one)
        await asyncio.sleep(0.5)
        assert first.leading and not second.leading
        stopped_at = time.monotonic()
        await first.leave()
        await until(lambda: second.leading)
        assert time.monotonic() - stopped_at < TTL.total_seconds()  # did not wait out the lease
        assert second.epoch == 2


async def test_a_leader_that_loses_the_database_stops_leading_before_its_lease_ends(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await until(lambda: one.leading)
        await two.join()
        one.backend.link.url = "postgresql://postgres@127.0.0.1:1/nowhere"
        await one.backend.link.close()
        lost = time.monotonic()
        await until(lambda: not one.leading)
        assert time.monotonic() - lost < TTL.total_seconds()
        await until(lambda: two.leading)
        assert two.epoch == 2
        # the deposed leader's decisions are refused in their own transaction, whatever its local view
        one.epoch, one._deadline = 1, time.monotonic() + 60
        with pytest.raises(NotLeader):
            await one.state().set_marker("decision", "from the old term", T0)
        assert await two.state().marker("decision") is None


async def test_every_member_writes_its_own_switch_file_within_a_second_of_the_leaders_commit(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2", "web-3") as clusters:
        for cluster in clusters:
            await cluster.join()
        await until(lambda: any(c.leading for c in clusters))
        boss = next(c for c in clusters if c.leading)
        doc = tripped_doc(datetime.now(UTC).replace(microsecond=0))
        committed = time.monotonic()
        await boss.state().update_switch(lambda *_: SwitchDecision(doc, [("all", "tripped")], True), T0)
        files = [c.config.killswitch_path for c in clusters]

        def all_tripped() -> bool:
            return all(f.exists() and json.loads(f.read_text())["tripped"] for f in files)

        await until(all_tripped, timeout=1.0)
        assert time.monotonic() - committed < 1.0
        for f in files:
            written = json.loads(f.read_text())
            assert written["scopes"]["all"]["tripped"] is True
            heartbeat = datetime.fromisoformat(written["heartbeat_at"])
            assert abs((datetime.now(UTC) - heartbeat).total_seconds()) < 5  # this host's own heartbeat
            assert datetime.fromisoformat(written["expires_at"]) - heartbeat == timedelta(minutes=5)


async def test_a_member_that_cannot_reach_the_store_lets_its_heartbeat_age(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1") as (one,):
        await one.join()
        await until(lambda: one.leading)
        doc = tripped_doc(datetime.now(UTC).replace(microsecond=0))
        await one.state().update_switch(lambda *_: SwitchDecision(doc, [], True), T0)
        await until(lambda: one.written is not None and one.written.tripped)
        one.backend.link.url = "postgresql://postgres@127.0.0.1:1/nowhere"
        await one.backend.link.close()
        await until(lambda: one.reachable is False)
        before = one.config.killswitch_path.read_text()
        await asyncio.sleep(6.0)  # longer than the heartbeat's rewrite interval
        assert one.config.killswitch_path.read_text() == before


async def test_a_second_live_guardd_with_the_same_name_is_refused(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-1") as (one, twin):
        await one.join()
        with pytest.raises(InstanceTaken, match=r"another guardd \(pid \d+\) is running on instance 'web-1'"):
            await twin.join()


async def test_the_name_of_a_killed_guardd_on_this_host_is_taken_at_once(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-1") as (old, new):
        await old.join()
        for task in old._tasks:
            task.cancel()
        await old.backend.link.close()
        gone = await asyncio.create_subprocess_exec("true")
        await gone.wait()
        async with PgStore.open(pg_url, "admin") as admin, admin.transaction() as conn:
            await conn.execute("UPDATE instances SET pid = %s", (gone.pid,))  # its process no longer runs
        await new.join()
        rows = (await cluster_status(new.backend.store))["instances"]
        assert [r["name"] for r in rows] == ["web-1"]


async def test_a_live_guardd_with_the_same_host_name_but_other_pids_keeps_its_name(pg_url, tmp_path):
    """Two containers may share a host name: a pid of another pid namespace (or machine) says nothing here, so the
    name waits until its holder is not seen for ``ALIVE_WITHIN`` rather than being taken from a live guardd."""
    async with members(pg_url, tmp_path, "web-1", "web-1") as (other, new):
        await other.join()
        for task in other._tasks:
            task.cancel()
        await other.backend.link.close()
        gone = await asyncio.create_subprocess_exec("true")
        await gone.wait()
        async with PgStore.open(pg_url, "admin") as admin, admin.transaction() as conn:
            await conn.execute(
                "UPDATE instances SET pid = %s, token = %s", (gone.pid, "another-boot:4026532999/0123456789abcdef")
            )
        with pytest.raises(InstanceTaken, match="instance 'web-1'"):
            await new.join()


async def test_status_names_instances_whose_configurations_differ(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        two.reconfigure(load_config(str(config(tmp_path, "web-2", daily="7")), env={}))
        await two.join()
        await until(lambda: one.leading or two.leading)
        status = await cluster_status(one.backend.store)
    assert status["leader"] in ("web-1", "web-2")
    assert {i["name"] for i in status["instances"]} == {"web-1", "web-2"}
    assert one.me.config_digest != two.me.config_digest
    assert any("web-1" in w and "web-2" in w and "different configurations" in w for w in status["warnings"])


async def test_the_same_configuration_gives_the_same_digest_and_no_warning(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await two.join()
        await until(lambda: one.leading or two.leading)
        status = await cluster_status(one.backend.store)
    assert one.me.config_digest == two.me.config_digest
    assert status["warnings"] == []


async def test_members_survive_their_connections_being_terminated(pg_url, tmp_path, pg_server):
    async with members(pg_url, tmp_path, "web-1", "web-2") as clusters:
        for cluster in clusters:
            await cluster.join()
        await until(lambda: any(c.leading for c in clusters))
        schema = pg_url.split("application_name=")[1]
        with psycopg.connect(pg_server, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (schema,),
            ).fetchone()
        assert killed and killed[0] >= 4
        boss = next(c for c in clusters if c.epoch is not None)
        doc = tripped_doc(datetime.now(UTC).replace(microsecond=0))
        for _ in range(50):  # the pool's dead connections fail once each, then it reconnects
            try:
                await boss.state().update_switch(lambda *_: SwitchDecision(doc, [], True), T0)
                break
            except NotLeader:
                boss = next((c for c in clusters if c.leading), boss)
                await asyncio.sleep(0.1)
            except Exception:
                await asyncio.sleep(0.1)
        files = [c.config.killswitch_path for c in clusters]
        await until(lambda: all(f.exists() and json.loads(f.read_text())["tripped"] for f in files), timeout=5)
        assert sum(c.leading for c in clusters) == 1


async def test_outbox_rows_claimed_in_a_term_are_not_claimed_again_until_it_ends_plus_the_send_bound(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1") as (one,):
        await one.join()
        await until(lambda: one.leading)
        state = one.state()
        await state.enqueue([Message("all", "critical", "tripped", "body", 0, "json://x")], T0)
        assert len(await state.claim("a", datetime.now(UTC), timedelta(seconds=0))) == 1
        assert await state.claim("b", datetime.now(UTC) + timedelta(hours=1), timedelta(0)) == []


async def test_a_leader_whose_work_is_stuck_stops_renewing_and_another_takes_over(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await until(lambda: one.leading)
        await two.join()
        one.healthy = lambda: False  # its worker has run one step for minutes
        await until(lambda: not one.leading)
        await until(lambda: two.leading)
        assert two.epoch == 2 and one.epoch is None


async def test_a_member_that_does_not_lead_wakes_the_leader_to_apply_an_override(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await until(lambda: one.leading)
        await two.join()
        woken = asyncio.Event()
        one.on_events = woken.set
        deadline = time.monotonic() + 10
        while not woken.is_set():  # (the leader's LISTEN may not be in place yet: ask again)
            assert time.monotonic() < deadline, "the leader was never woken"
            await two.backend.wake_leader()
            await asyncio.sleep(0.2)


async def test_a_member_answers_once_the_leader_committed_what_it_waits_for(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1", "web-2") as (one, two):
        await one.join()
        await until(lambda: one.leading)
        await two.join()
        doc = tripped_doc(datetime.now(UTC).replace(microsecond=0))

        async def commit_later() -> None:
            await asyncio.sleep(0.3)
            await one.state().update_switch(lambda *_: SwitchDecision(doc, [("all", "tripped")], True), T0)

        later = asyncio.create_task(commit_later())
        seen = await two.until_applied(lambda d: d is not None and d.scopes["all"].tripped, timeout=5)
        await later
        assert seen is not None and seen.scopes["all"].tripped


async def test_a_member_stops_waiting_for_an_override_to_apply_when_no_leader_does(pg_url, tmp_path):
    async with members(pg_url, tmp_path, "web-1") as (one,):
        one.lead = False  # nobody leads this store
        await one.join()
        started = time.monotonic()
        assert await one.until_applied(lambda doc: doc is not None, timeout=0.5) is None
        assert 0.5 <= time.monotonic() - started < 3

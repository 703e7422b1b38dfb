"""``guardd check`` on a shared store hears what ``status`` warns of (contract §7, §9): an instance that stopped
reaching the store without a clean stop (its ledgers' spend is no longer counted) and instances that run different
budget configurations are a WARNING, never a silent OK."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from guardd import __version__
from guardd.config import load_config
from guardd.store.api import InstanceInfo
from guardd.store.postgres.cluster import PgCluster
from guardd.store.postgres.db import PgStore
from tests.cluster.test_cli_killswitch import hold_the_lease
from tests.cluster.test_status_shared_switch import host


async def register(pg_url: str, config: Path, name: str, digest: str, seen_ago: timedelta) -> None:
    """Enter instance ``name`` (running the configuration ``digest``) as last seen ``seen_ago`` ago, never stopped."""
    settings = load_config(str(config), env={})
    me = InstanceInfo(name, "elsewhere", os.getpid(), f"test/{name}", ["/var/log/app.jsonl"], __version__, digest)
    async with PgStore.open(pg_url, settings.instance) as store:
        cluster = PgCluster(store)
        try:
            await cluster.register(me, timedelta(seconds=15))
        finally:
            await cluster.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE instances SET last_seen = clock_timestamp() - %s WHERE name = %s", (seen_ago, name))


@pytest.fixture
async def leading(pg_url: str, tmp_path: Path):
    """web-1 ran once ($0.50 of a $1 daily budget: within limits) and holds the lease with no daemon behind it; its
    ``last_seen`` is set ahead, so that on a loaded machine it is not itself warned of as gone (15 s) mid-test."""
    web1 = host(tmp_path / "web-1", "web-1", pg_url, "0.5")
    done = web1.guardd("run", "--once")
    assert done.returncode == 0, done.stderr
    await hold_the_lease(pg_url, web1.config)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as a leader beating all along the test, however slow
        conn.execute("UPDATE instances SET last_seen = clock_timestamp() + interval '4 minutes' WHERE name = 'web-1'")
    assert web1.guardd("check").returncode == 0
    return web1


async def test_check_warns_when_an_instance_stopped_reaching_the_store(leading, pg_url):
    from guardd.daemon.cluster import config_digest

    digest = config_digest(load_config(str(leading.config), env={}))
    await register(pg_url, leading.config, "web-9", digest, timedelta(minutes=10))

    done = leading.guardd("check")

    assert done.returncode == 1, done.stdout
    assert "web-9" in done.stdout and "not counted" in done.stdout, done.stdout


async def test_check_warns_when_instances_run_different_configurations(leading, pg_url):
    await register(pg_url, leading.config, "web-8", "other-digest", timedelta(seconds=0))

    done = leading.guardd("check")

    assert done.returncode == 1, done.stdout
    assert "different configurations" in done.stdout, done.stdout


async def test_check_is_ok_beside_an_instance_that_stopped_cleanly(leading, pg_url):
    from guardd.daemon.cluster import config_digest

    digest = config_digest(load_config(str(leading.config), env={}))
    await register(pg_url, leading.config, "web-7", digest, timedelta(minutes=10))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE instances SET stopped_at = last_seen WHERE name = 'web-7'")

    assert leading.guardd("check").returncode == 0


async def test_store_forget_ends_the_warning_of_an_instance_that_will_not_return(leading, pg_url):
    from guardd.daemon.cluster import config_digest

    digest = config_digest(load_config(str(leading.config), env={}))
    await register(pg_url, leading.config, "web-9", digest, timedelta(minutes=10))

    forgot = leading.guardd("store", "forget", "web-9")

    assert forgot.returncode == 0, forgot.stderr
    assert "forgot instance 'web-9'" in forgot.stdout
    assert leading.guardd("check").returncode == 0


async def test_store_forget_refuses_an_instance_that_runs(leading, pg_url):
    from guardd.daemon.cluster import config_digest

    digest = config_digest(load_config(str(leading.config), env={}))
    await register(pg_url, leading.config, "web-6", digest, timedelta(seconds=0))

    refused = leading.guardd("store", "forget", "web-6")

    assert refused.returncode == 1
    assert "it runs" in refused.stderr
    assert "web-6" in leading.status()["cluster"]["instances"][1]["name"]


async def test_store_forget_names_an_unknown_instance(leading):
    refused = leading.guardd("store", "forget", "web-404")

    assert refused.returncode == 1
    assert "no instance named 'web-404'" in refused.stderr

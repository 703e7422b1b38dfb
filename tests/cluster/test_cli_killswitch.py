"""``guardd killswitch trip|release`` on a shared store (contract §9): only the leader decides the switch. The
command, on any host, records the override and its message and waits for the leader to apply it, as
``POST /v1/killswitch/…`` on a follower does; it never writes the switch itself, outside any leader's term."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from guardd import __version__
from guardd.config import load_config
from guardd.daemon.cluster import config_digest
from guardd.store.api import InstanceInfo
from guardd.store.postgres.cluster import PgCluster
from guardd.store.postgres.db import PgStore
from guardd.store.postgres.state import PgStateStore
from tests.cluster.conftest import Host, leader_of, wait_for, write_config

EX_TEMPFAIL = 75


def scope_of(host: Host, name: str) -> dict[str, Any]:
    return dict(((host.switch_doc() or {}).get("scopes") or {}).get(name) or {})


def started(cluster: Any) -> tuple[Host, Host, Any]:
    hosts, hook = cluster(2)
    for host in hosts:
        wait_for(lambda h=host: h.switch_doc() is not None, timeout=30)
    boss = leader_of(hosts)
    return boss, next(h for h in hosts if h is not boss), hook


async def hold_the_lease(pg_url: str, config: Path) -> None:
    """Make the instance of ``config`` the leader for five minutes, through the store's own calls, with no daemon
    behind it: a leader that holds its term and decides nothing while the test runs."""
    settings = load_config(str(config), env={})
    digest = config_digest(settings)
    me = InstanceInfo(settings.instance, "elsewhere", os.getpid(), "test/lease", [], __version__, digest)
    async with PgStore.open(pg_url, settings.instance) as store:
        cluster = PgCluster(store)
        try:
            await cluster.register(me, timedelta(seconds=15))
            _owns, term = await cluster.beat(me, timedelta(minutes=5), True)
            assert term is not None
        finally:
            await cluster.close()


async def test_the_command_writes_no_switch_while_another_instance_leads(pg_url, tmp_path):
    boss = write_config(tmp_path / "web-1", "web-1", pg_url, "json://127.0.0.1:9/nowhere", "10")
    await hold_the_lease(pg_url, boss)
    config = write_config(tmp_path / "web-2", "web-2", pg_url, "json://127.0.0.1:9/nowhere", "10")
    here = Host("web-2", tmp_path / "web-2", config, daemon=None)  # no daemon on this host

    done = here.guardd("killswitch", "trip", "--budget", "search", "--reason", "incident 7")

    assert done.returncode == EX_TEMPFAIL, (done.stdout, done.stderr)
    assert "recorded" in done.stderr and "when" in done.stderr and "leader" in done.stderr
    async with PgStore.open(pg_url, "test") as store:
        state = PgStateStore(store)
        assert (await state.switch_doc()) is None  # the leader decided nothing, and nobody else may
        assert [(o.scope, o.state, o.reason) for o in await state.overrides()] == [("search", "tripped", "incident 7")]
    assert not here.switch.exists()


def test_the_command_on_a_follower_answers_with_the_leaders_decision(cluster):
    boss, follower, hook = started(cluster)

    done = follower.guardd("killswitch", "trip", "--budget", "search", "--reason", "incident 7")

    assert done.returncode == 0, done.stderr
    assert "tripped search" in done.stdout and "tripped=True" in done.stdout
    for host in (boss, follower):
        wait_for(lambda h=host: scope_of(h, "search").get("tripped"), timeout=5)
    wait_for(lambda: any("tripped by hand" in json.dumps(b) for b in hook.bodies), timeout=15)


def test_the_command_on_a_follower_prints_the_committed_switch_as_json(cluster):
    boss, follower, _hook = started(cluster)
    assert boss.guardd("killswitch", "trip", "--reason", "stop").returncode == 0

    done = follower.guardd("killswitch", "release", "--reason", "go on", "--json")

    assert done.returncode == 0, done.stderr
    assert not json.loads(done.stdout)["scopes"].get("*", {}).get("tripped")
    wait_for(lambda: not scope_of(follower, "*").get("tripped"), timeout=5)

"""OpenRouter keys on a shared store (contract §1, §9): a trip or release by ``guardd killswitch`` on a follower is
applied by the leader, the only instance that talks to OpenRouter, and the keys follow it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cluster.conftest import Host, leader_of, wait_for, write_config
from tests.e2e.conftest import DaemonProcess, Webhook
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "1a" * 32
MGMT = "mgmt-" + "3c" * 20


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.state.management_key = MGMT
        yield server


def test_a_release_on_a_follower_re_enables_the_key_the_leader_disabled(pg_url, tmp_path: Path, fake):
    ours = fake.add_key(KEY, name="prod-api", usage_daily="0.10")
    hook = Webhook()
    hosts: list[Host] = []
    try:
        for name in ("web-1", "web-2"):
            config = write_config(tmp_path / name, name, pg_url, hook.url, "10", "1s")
            with config.open("a") as f:
                f.write(
                    f'\n[openrouter]\napi_keys = ["{KEY}"]\nmanagement_key = "{MGMT}"\nbase_url = "{fake.base_url}"\n'
                    "\n[killswitch]\ndisable_openrouter_keys = true\n"
                )
            hosts.append(Host(name, tmp_path / name, config, DaemonProcess(config, tmp_path / name)))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda h: h.daemon.start(), hosts))
        boss = leader_of(hosts)
        follower = next(h for h in hosts if h is not boss)
        wait_for(lambda: any(r[:2] == ("GET", "/keys") for r in fake.state.requests), timeout=30)

        tripped = follower.guardd("killswitch", "trip", "--budget", "search", "--reason", "incident")
        assert tripped.returncode == 0, tripped.stderr
        wait_for(lambda: ours.disabled, timeout=15)

        released = follower.guardd("killswitch", "release", "--budget", "search", "--reason", "ok")
        assert released.returncode == 0, released.stderr
        wait_for(lambda: not ours.disabled, timeout=15)
        patches = [r for r in fake.state.requests if r[0] == "PATCH"]
        assert len(patches) == 2  # one disable, one re-enable: switched once, by the leader
    finally:
        for host in hosts:
            host.daemon.kill()
        hook.close()

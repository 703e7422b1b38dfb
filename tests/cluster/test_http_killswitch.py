"""``POST /v1/killswitch/trip|release`` on a shared store (contract §8, §9): any instance accepts it, not only the
leader; the override goes to the shared store, the leader applies it and every host's switch file shows it."""

from __future__ import annotations

import json
from typing import Any

from tests.cluster.conftest import Host, leader_of, wait_for


def scope_of(host: Host, name: str) -> dict[str, Any]:
    return dict(((host.switch_doc() or {}).get("scopes") or {}).get(name) or {})


def overrides(host: Host) -> list[str]:
    done = host.guardd("history", "--json")
    assert done.returncode == 0, done.stderr
    return [line["detail"] for line in json.loads(done.stdout) if line["kind"] == "override"]


def started(cluster: Any) -> tuple[Host, Host, Any]:
    hosts, hook = cluster(2, http=True)
    for host in hosts:
        wait_for(lambda h=host: h.switch_doc() is not None, timeout=30)
    boss = leader_of(hosts)
    return boss, next(h for h in hosts if h is not boss), hook


def test_a_follower_accepts_a_trip_and_every_host_applies_it(cluster):
    boss, follower, hook = started(cluster)
    answer = follower.post("/v1/killswitch/trip", {"budget": "search", "reason": "incident 7"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scopes"]["search"]["tripped"] is True
    for host in (boss, follower):
        wait_for(lambda h=host: scope_of(h, "search").get("tripped"), timeout=5)
    assert len([d for d in overrides(boss) if "incident 7" in d]) == 1
    wait_for(lambda: any("tripped by hand" in json.dumps(b) for b in hook.bodies), timeout=15)


def test_a_follower_accepts_a_release_of_a_manual_trip(cluster):
    boss, follower, _hook = started(cluster)
    assert boss.post("/v1/killswitch/trip", {"budget": None, "reason": "stop"}).status_code == 200
    wait_for(lambda: scope_of(follower, "*").get("tripped"), timeout=5)
    answer = follower.post("/v1/killswitch/release", {"budget": None, "reason": "go on"})
    assert answer.status_code == 200, answer.text
    assert not answer.json()["scopes"].get("*", {}).get("tripped")
    for host in (boss, follower):
        wait_for(lambda h=host: not scope_of(h, "*").get("tripped"), timeout=5)

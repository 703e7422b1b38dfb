"""Three real daemons sharing one PostgreSQL schema (contract §9): exact totals with ids duplicated across hosts, a
trip caused by one host's ledger in every host's switch file, one notification when the leader is killed during a
threshold crossing, and connections terminated by the server survived."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest

from tests.cluster.conftest import Host, leader_of, wait_for


def spent(host: Host) -> Decimal:
    budget = next(b for b in host.status()["budgets"] if b["name"] == "all")
    daily = next(w for w in budget["windows"] if w["window"] == "daily")
    return Decimal(daily["spent"])


def test_totals_are_exact_on_every_host_with_ids_duplicated_across_hosts(cluster):
    hosts, _hook = cluster(3)
    one, two, three = hosts
    one.append(("gen-a", "0.10"), ("gen-b", "0.20"), ("gen-shared", "0.30"))
    two.append(("gen-c", "0.40"), ("gen-shared", "0.30"), ("gen-b", "0.20"))
    three.append(("gen-d", "0.000001"), ("gen-shared", "0.30"))
    expected = Decimal("0.10") + Decimal("0.20") + Decimal("0.30") + Decimal("0.40") + Decimal("0.000001")
    for host in hosts:
        wait_for(lambda h=host: spent(h) == expected, timeout=30, interval=0.3)
    status = one.status()
    assert {i["name"] for i in status["cluster"]["instances"]} == {"web-1", "web-2", "web-3"}
    assert status["cluster"]["leader"] in {"web-1", "web-2", "web-3"}
    assert status["cluster"]["warnings"] == []
    assert len({i["config_digest"] for i in status["cluster"]["instances"]}) == 1


def test_a_trip_caused_by_one_hosts_ledger_appears_in_every_switch_file(cluster):
    hosts, hook = cluster(3)
    for host in hosts:
        wait_for(lambda h=host: h.switch_doc() is not None, timeout=30)
    follower = next(h for h in hosts if h is not leader_of(hosts))
    follower.append(("gen-big", "12.50"))
    for host in hosts:
        wait_for(host.tripped, timeout=15)
        scope = (host.switch_doc() or {})["scopes"]["all"]
        assert scope["tripped"] is True and scope["spent"] == "12.50"
    wait_for(lambda: len(hook.bodies) >= 1, timeout=15)


@pytest.mark.parametrize("source", ["a follower's ledger", "the leader's own ledger"])
def test_the_leader_killed_during_a_threshold_crossing_gives_one_notification_never_none(cluster, source):
    hosts, hook = cluster(3)
    boss = leader_of(hosts)
    others = [h for h in hosts if h is not boss]
    crossing = others[0] if source == "a follower's ledger" else boss
    crossing.append(("gen-cross", "11"))
    time.sleep(0.05)  # the crossing is being ingested, evaluated or delivered: any of them may be cut short
    boss.kill9()
    if crossing is boss:  # its ledger is read by nobody else: its service manager restarts it
        boss.daemon.start()
    wait_for(lambda: len(hook.bodies) >= 1, timeout=60, interval=0.2)
    for host in hosts if crossing is boss else others:
        wait_for(host.tripped, timeout=30)
    time.sleep(3)  # a duplicate, if any, would come now: the successor re-sends what was claimed but unrecorded
    tripped = [b for b in hook.bodies if "all" in b.get("title", "")]
    assert 1 <= len(tripped) <= 2, hook.titles()  # the documented at-least-once window allows one duplicate
    assert len({b["title"] for b in tripped}) == 1, hook.titles()


def test_a_clean_stop_of_the_leader_hands_over_and_the_successor_announces(cluster):
    hosts, hook = cluster(2)
    boss = leader_of(hosts)
    other = next(h for h in hosts if h is not boss)
    assert boss.daemon.stop() == 0
    started = time.monotonic()
    wait_for(lambda: other.status()["cluster"]["leader"] == other.name, timeout=15, interval=0.2)
    assert time.monotonic() - started < 15
    other.append(("gen-x", "10.01"))
    wait_for(other.tripped, timeout=15)
    wait_for(lambda: len(hook.bodies) == 1, timeout=15)


def test_a_second_daemon_with_the_same_instance_name_is_refused(cluster, pg_url, tmp_path):
    from tests.cluster.conftest import write_config

    _hosts, hook = cluster(1)
    twin = Host("web-1", tmp_path / "twin", write_config(tmp_path / "twin", "web-1", pg_url, hook.url, "10"), None)  # type: ignore[arg-type]
    done = twin.guardd("run")
    assert done.returncode == 1, done.stderr
    assert "another guardd (pid" in done.stderr and "instance 'web-1'" in done.stderr, done.stderr


def test_connections_terminated_by_the_server_are_survived(cluster, pg_url, pg_server):
    hosts, _hook = cluster(3)
    for host in hosts:
        wait_for(lambda h=host: h.switch_doc() is not None, timeout=30)
    schema = pg_url.split("application_name=")[1]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (schema,)
        ).fetchone()
    assert row is not None and row[0] >= 6  # each daemon's pool, control link and listener
    hosts[1].append(("gen-after", "10.50"))
    for host in hosts:
        wait_for(host.tripped, timeout=20)
        wait_for(lambda h=host: spent(h) == Decimal("10.50"), timeout=20, interval=0.3)
    assert all(h.daemon.proc is not None and h.daemon.proc.poll() is None for h in hosts)


def test_instances_with_different_budgets_are_named_at_the_top_of_status(cluster):
    hosts, _hook = cluster(2, daily=["10", "12"])
    status = hosts[0].status()["cluster"]
    assert len({i["config_digest"] for i in status["instances"]}) == 2
    assert any("web-1" in w and "web-2" in w for w in status["warnings"]), status["warnings"]
    done = hosts[1].guardd("status")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("CLUSTER WARNING: instances run different configurations"), done.stdout


def test_a_budget_matching_a_series_first_stored_by_a_follower_trips_at_once_everywhere(cluster):
    hosts, _hook = cluster(3, every="10m")  # no periodic evaluation during the test
    for host in hosts:
        wait_for(lambda h=host: h.switch_doc() is not None, timeout=30)
    follower = next(h for h in hosts if h is not leader_of(hosts))
    started = time.monotonic()
    follower.append(("gen-search", "1.50"), team="search")  # a series no instance has seen before

    def search_tripped(host: Host) -> bool:
        doc = host.switch_doc() or {}
        return bool(doc.get("scopes", {}).get("search", {}).get("tripped"))

    for host in hosts:
        wait_for(lambda h=host: search_tripped(h), timeout=20)
    assert time.monotonic() - started < 20  # woken by the follower's commit: no periodic evaluation ran
    assert not any((h.switch_doc() or {})["scopes"]["all"]["tripped"] for h in hosts)

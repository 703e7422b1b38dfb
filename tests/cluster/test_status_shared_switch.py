"""``guardd status``, ``check`` and ``killswitch show`` on a shared store (contract §9) answer with the switch the store
holds (committed by the leader), on any host — one without a daemon included, whose local switch file is missing —
and say when this host's own file is missing, stale or disagrees with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Host
from tests.cluster.test_cli_killswitch import hold_the_lease


def host(folder: Path, name: str, pg_url: str, spent: str, guardd: str = "") -> Host:
    """Host ``name`` with a daily budget ``all`` of $1 and a ledger that spent ``spent`` today; no daemon. ``guardd``:
    more lines of its ``[guardd]`` section."""
    folder.mkdir(parents=True)
    line = {"ts": datetime.now(UTC).isoformat(), "id": f"{name}-1", "model": "m/x", "cost": spent}
    (folder / "ledger.jsonl").write_text(json.dumps(line) + "\n")
    config = folder / "guardd.toml"
    config.write_text(f"""[guardd]
instance = "{name}"
state_dir = "state"
{guardd}[store]
url = "{pg_url}"
[[ledgers]]
path = "ledger.jsonl"
[[budgets]]
name = "all"
daily = 1
""")
    return Host(name, folder, config, daemon=None)


@pytest.fixture
async def tripped_store(pg_url: str, tmp_path: Path) -> tuple[Host, Host]:
    """web-1 ran once (ingested $2 of a $1 budget and, leading, committed a tripped switch) and now holds the lease
    with no daemon behind it; web-2 runs nothing and has no switch file."""
    web1 = host(tmp_path / "web-1", "web-1", pg_url, "2")
    done = web1.guardd("run", "--once")
    assert done.returncode == 0, done.stderr
    await hold_the_lease(pg_url, web1.config)
    web2 = host(tmp_path / "web-2", "web-2", pg_url, "0")
    assert not web2.switch.exists()
    return web1, web2


def local(status: dict[str, Any]) -> dict[str, Any]:
    return dict(status["cluster"]["local_switch"])


def test_status_on_a_host_without_a_daemon_shows_the_switch_the_store_holds(tripped_store):
    _, web2 = tripped_store
    status = web2.status()
    assert status["killswitch"]["tripped"] is True
    assert status["killswitch"]["scopes"]["all"]["window"] == "daily"
    assert status["guard"]["alive"] is True, status["guard"]


def test_status_says_this_hosts_switch_file_is_missing(tripped_store):
    _, web2 = tripped_store
    status = web2.status()
    assert local(status)["state"] == "missing"
    assert any("web-2" in w or "killswitch.json" in w for w in status["cluster"]["warnings"])


def test_status_says_when_this_hosts_switch_file_disagrees_with_the_store(tripped_store):
    _, web2 = tripped_store
    now = datetime.now(UTC).replace(microsecond=0)
    web2.switch.parent.mkdir(exist_ok=True)
    web2.switch.write_text(
        json.dumps(
            {
                "schema": 1,
                "updated_at": now.isoformat(),
                "heartbeat_at": now.isoformat(),
                "expires_at": (now + timedelta(minutes=5)).isoformat(),
                "tripped": False,
                "scopes": {},
            }
        )
    )
    status = web2.status()
    assert local(status)["state"] == "disagrees", local(status)
    assert status["killswitch"]["tripped"] is True


def test_status_says_when_this_hosts_switch_file_has_expired(tripped_store):
    web1, web2 = tripped_store
    doc = json.loads(web1.switch.read_text())
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    doc["heartbeat_at"], doc["expires_at"] = long_ago.isoformat(), (long_ago + timedelta(minutes=5)).isoformat()
    web2.switch.parent.mkdir(exist_ok=True)
    web2.switch.write_text(json.dumps(doc))
    assert local(web2.status())["state"] == "stale"


def test_check_on_a_host_without_a_daemon_reports_the_trip_the_store_holds(tripped_store):
    _, web2 = tripped_store
    done = web2.guardd("check")
    assert done.returncode == 2, done.stdout


def test_killswitch_show_on_a_host_without_a_daemon_prints_the_stores_switch(tripped_store):
    _, web2 = tripped_store
    done = web2.guardd("killswitch", "show", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tripped"] is True
    assert "missing" in done.stderr


def test_killswitch_show_for_people_names_the_trip_and_the_missing_file(tripped_store):
    _, web2 = tripped_store
    done = web2.guardd("killswitch", "show")
    assert "TRIPPED" in done.stdout and "all:" in done.stdout
    assert "missing" in done.stdout

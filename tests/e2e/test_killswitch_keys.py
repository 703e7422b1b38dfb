"""OpenRouter keys follow the switch whoever decides it (contract §1 ``disable_openrouter_keys``, §4 "works whether
or not the daemon runs"): a trip or release by ``guardd killswitch`` from the command line disables or re-enables
the keys as one decided by the daemon does. Real daemon and commands against the stand-in OpenRouter server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.support.fake_openrouter import FakeOpenRouter

KEY = "sk-or-v1-" + "1a" * 32
MGMT = "mgmt-" + "3c" * 20


@pytest.fixture
def fake():
    with FakeOpenRouter() as server:
        server.state.management_key = MGMT
        yield server


def write(tmp_path: Path, fake: FakeOpenRouter, daily: int = 10) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
evaluate_every = "1s"
[openrouter]
api_keys = ["{KEY}"]
management_key = "{MGMT}"
base_url = "{fake.base_url}"
poll_every = "600s"
timeout = "2s"
[[budgets]]
name = "prod"
source = "openrouter"
match = {{ key = "prod*" }}
daily = {daily}
forecast = false
[killswitch]
disable_openrouter_keys = true
""")
    return path


def test_a_release_by_the_command_re_enables_the_key_the_daemon_disabled(run_guardd, daemon_factory, tmp_path, fake):
    ours = fake.add_key(KEY, name="prod-api", usage_daily="2.00")
    persons = fake.add_key("sk-or-v1-" + "2b" * 32, name="prod-batch", usage_daily="40", disabled=True)
    cfg = write(tmp_path, fake, daily=1)
    daemon = daemon_factory(cfg)
    daemon.start()
    wait_for(lambda: ours.disabled)

    done = run_guardd("killswitch", "release", "--budget", "prod", "--reason", "ok", "-c", str(cfg))

    assert done.returncode == 0, done.stderr
    wait_for(lambda: not ours.disabled, timeout=15)
    assert persons.disabled  # a key a person disabled is never touched
    assert daemon.stop() == 0


def test_with_no_daemon_the_command_switches_the_keys_itself(run_guardd, tmp_path, fake):
    ours = fake.add_key(KEY, name="prod-api", usage_daily="0.10")
    cfg = str(write(tmp_path, fake))
    assert run_guardd("run", "--once", "-c", cfg).returncode == 0  # the /keys list is known

    tripped = run_guardd("killswitch", "trip", "--budget", "prod", "--reason", "incident", "-c", cfg)
    assert tripped.returncode == 0, tripped.stderr
    assert ours.disabled
    doc = json.loads(run_guardd("status", "--json", "-c", cfg).stdout)
    assert [k["disabled"] for k in doc["openrouter"]["keys"]] == [True]  # what guardd did, not the last poll

    released = run_guardd("killswitch", "release", "--budget", "prod", "--reason", "ok", "-c", cfg)
    assert released.returncode == 0, released.stderr
    assert not ours.disabled


def test_a_key_guardd_disabled_that_stays_off_with_nothing_tripped_is_a_warning(run_guardd, tmp_path, fake):
    ours = fake.add_key(KEY, name="prod-api", usage_daily="0.10")
    cfg = str(write(tmp_path, fake))
    assert run_guardd("run", "--once", "-c", cfg).returncode == 0
    assert run_guardd("killswitch", "trip", "--budget", "prod", "-c", cfg).returncode == 0
    assert ours.disabled
    fake.fail(f"/keys/{ours.hash}", status=502, times=100, message="Bad Gateway")

    assert run_guardd("killswitch", "release", "--budget", "prod", "-c", cfg).returncode == 0

    assert ours.disabled  # OpenRouter refused: the key is still off, and that is said
    check = run_guardd("check", "-c", cfg)
    assert check.returncode == 1, check.stdout
    assert "prod-api" in check.stdout and "Bad Gateway" in check.stdout
    doc = json.loads(run_guardd("status", "--json", "-c", cfg).stdout)
    [warning] = doc["openrouter"]["key_warnings"]
    assert "stays disabled" in warning and "Bad Gateway" in warning
    fake.state.faults.clear()
    assert run_guardd("run", "--once", "-c", cfg).returncode == 0  # retried
    assert not ours.disabled
    assert json.loads(run_guardd("status", "--json", "-c", cfg).stdout)["openrouter"]["key_warnings"] == []

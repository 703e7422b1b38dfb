"""A dead guard is never OK (contract §3, §7): check is UNKNOWN and status says so, with real files and daemons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import wait_for


def cfg(tmp_path: Path, stale_after: str = "5m", every: str = "1s") -> Path:
    (tmp_path / "ledgers").mkdir(exist_ok=True)
    (tmp_path / "ledgers" / "app.jsonl").touch()  # a pattern that matches no file is a warning of its own
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\nevaluate_every = "{every}"\nstale_after = "{stale_after}"\n'
        '[[ledgers]]\npath = "ledgers/*.jsonl"\n[[budgets]]\nname = "team"\ndaily = 10\nforecast = false\n'
    )
    return path


def switch_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "killswitch.json"


def rewrite(tmp_path: Path, **fields: object) -> None:
    doc = json.loads(switch_path(tmp_path).read_text())
    doc.update(fields)
    switch_path(tmp_path).write_text(json.dumps(doc))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_switch_file_expires_stale_after_past_its_heartbeat(run_guardd, tmp_path):
    assert run_guardd("run", "--once", "-c", str(cfg(tmp_path, stale_after="7m"))).returncode == 0
    doc = json.loads(switch_path(tmp_path).read_text())
    heartbeat = datetime.fromisoformat(doc["heartbeat_at"])
    assert datetime.fromisoformat(doc["expires_at"]) - heartbeat == timedelta(minutes=7)


def test_check_is_unknown_when_no_guard_ever_wrote_a_switch_file(run_guardd, tmp_path):
    result = run_guardd("check", "-c", str(cfg(tmp_path)))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("GUARDD UNKNOWN - guardd is not running (last heartbeat unknown)")


def test_check_is_ok_while_the_daemon_runs_and_unknown_once_it_stopped_past_stale_after(
    run_guardd, tmp_path, daemon_factory
):
    path = cfg(tmp_path, stale_after="3s")
    daemon = daemon_factory(path)
    daemon.start()
    live = run_guardd("check", "-c", str(path))
    assert live.returncode == 0, live.stdout + live.stderr
    assert daemon.stop() == 0
    heartbeat = json.loads(switch_path(tmp_path).read_text())["heartbeat_at"]
    dead = wait_for(lambda: (r := run_guardd("check", "-c", str(path))).returncode == 3 and r, timeout=30)
    assert dead.stdout.startswith("GUARDD UNKNOWN - guardd is not running (last heartbeat ")
    shown = datetime.fromisoformat(dead.stdout.split("last heartbeat ")[1].split(")")[0])
    assert abs(shown - datetime.fromisoformat(heartbeat)) < timedelta(seconds=1)


def test_check_is_unknown_when_the_switch_file_is_unreadable(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    switch_path(tmp_path).write_text("{ not json")
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3 and "guardd is not running" in result.stdout


def test_check_is_unknown_when_the_heartbeat_is_more_than_a_minute_in_the_future(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    ahead = datetime.now(UTC) + timedelta(minutes=3)
    rewrite(tmp_path, heartbeat_at=iso(ahead), expires_at=iso(ahead + timedelta(minutes=5)))
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3 and "in the future" in result.stdout


def test_status_json_says_the_guard_is_alive_after_a_fresh_cycle(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    guard = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["guard"]
    assert guard["alive"] is True and guard["reason"] is None and guard["heartbeat_at"]


def test_status_says_at_the_top_in_both_forms_that_an_expired_guard_is_not_running(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    past = datetime.now(UTC) - timedelta(minutes=9)
    rewrite(tmp_path, heartbeat_at=iso(past), expires_at=iso(past + timedelta(minutes=5)))
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    assert doc["guard"]["alive"] is False and "expired" in doc["guard"]["reason"]
    assert datetime.fromisoformat(doc["guard"]["heartbeat_at"]) == past.replace(microsecond=past.microsecond)
    text = run_guardd("status", "-c", str(path)).stdout
    assert text.lstrip().splitlines()[0].startswith("GUARD DOWN: guardd is not running (last heartbeat ")


def test_check_budget_with_an_unknown_name_is_unknown(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    result = run_guardd("check", "--budget", "nosuch", "-c", str(path))
    assert result.returncode == 3 and result.stdout.startswith("GUARDD UNKNOWN - no budget named 'nosuch'")


def test_config_check_warns_when_the_heartbeat_would_expire_between_evaluations(run_guardd, tmp_path):
    result = run_guardd("config", "check", "-c", str(cfg(tmp_path, stale_after="3s", every="10m")))
    assert result.returncode == 0 and "expires between evaluations" in result.stderr


def test_check_is_critical_when_the_top_level_trip_is_explained_by_no_scope(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    rewrite(tmp_path, tripped=True)
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 2 and "kill-switch tripped" in result.stdout, result.stdout


def test_a_manual_trip_and_release_without_a_daemon_leave_a_dead_guard_dead(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    heartbeat = datetime.now(UTC) - timedelta(minutes=10)
    rewrite(tmp_path, heartbeat_at=iso(heartbeat), expires_at=iso(heartbeat + timedelta(minutes=5)))
    for action in (["trip", "--reason", "x"], ["release"]):
        assert run_guardd("killswitch", *action, "-c", str(path)).returncode == 0
        doc = json.loads(switch_path(tmp_path).read_text())
        assert doc["heartbeat_at"] == iso(heartbeat) and doc["expires_at"] == iso(heartbeat + timedelta(minutes=5))
        check = run_guardd("check", "-c", str(path))
        assert check.returncode == 3, check.stdout + check.stderr
        status = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
        assert status["guard"]["alive"] is False


def test_a_manual_trip_before_any_daemon_ran_writes_no_heartbeat(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("killswitch", "trip", "--reason", "x", "-c", str(path)).returncode == 0
    doc = json.loads(switch_path(tmp_path).read_text())
    assert doc["tripped"] is True and doc["heartbeat_at"] is None and doc["expires_at"] is None
    check = run_guardd("check", "-c", str(path))
    assert check.returncode == 3, check.stdout + check.stderr


def test_a_daemon_killed_with_kill_9_is_not_running_at_once_not_only_past_stale_after(
    run_guardd, tmp_path, daemon_factory
):
    # An operator's `kill -9` (or an OOM kill) leaves a switch file whose expires_at is still minutes away. The
    # lock file says no daemon holds the state any more: status and check must say so now, not 5 minutes later.
    path = cfg(tmp_path, stale_after="5m")
    daemon = daemon_factory(path)
    daemon.start()
    assert run_guardd("check", "-c", str(path)).returncode == 0
    daemon.kill()
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("GUARDD UNKNOWN - guardd is not running (last heartbeat ")
    assert "stopped" in result.stdout
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    assert doc["guard"]["alive"] is False and "stopped" in doc["guard"]["reason"]
    assert run_guardd("status", "-c", str(path)).stdout.startswith("GUARD DOWN")


def test_a_daemon_stopped_with_sigterm_is_not_running_either(run_guardd, tmp_path, daemon_factory):
    path = cfg(tmp_path, stale_after="5m")
    daemon = daemon_factory(path)
    daemon.start()
    assert daemon.stop() == 0
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 3 and "guardd is not running" in result.stdout, result.stdout


def test_run_once_keeps_its_documented_expiry_a_restarted_daemon_is_alive_again(run_guardd, tmp_path, daemon_factory):
    # `run --once` is documented as "not a guard: its file expires stale_after later"; that stays. A daemon that
    # was killed and started again is alive again.
    path = cfg(tmp_path, stale_after="5m")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert run_guardd("check", "-c", str(path)).returncode == 0
    daemon = daemon_factory(path)
    daemon.start()
    daemon.kill()
    assert run_guardd("check", "-c", str(path)).returncode == 3
    again = daemon_factory(path)
    again.start()
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert again.stop() == 0

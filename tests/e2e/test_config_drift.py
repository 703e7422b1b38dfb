"""``status`` and ``check`` read the configuration file as it is now, the daemon enforces the one it loaded: after
an edit without a reload (SIGHUP) they differ, and that is said, never a silent disagreement (review F11)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for

BUDGET = '[[budgets]]\nname = "{name}"\ndaily = {daily}\nforecast = false\n'


def config(tmp_path: Path) -> Path:
    (tmp_path / "ledgers").mkdir()
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": "x", "model": "m", "cost": "0.5"})
    path = tmp_path / "guardd.toml"
    path.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n' + BUDGET.format(name="team", daily=100)
    )
    return path


def edited(path: Path) -> None:
    path.write_text(path.read_text() + BUDGET.format(name="newone", daily=50))


def test_status_says_the_daemon_runs_an_older_configuration_after_an_edit(tmp_path, run_guardd, daemon_factory):
    path = config(tmp_path)
    daemon_factory(path).start()
    assert json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["config"]["current"] is True
    edited(path)
    doc = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)
    assert doc["config"]["current"] is False and doc["config"]["loaded_at"]
    assert "reload it (systemctl reload guardd)" in doc["config"]["warning"]
    text = run_guardd("status", "-c", str(path)).stdout
    assert "the daemon runs an older configuration (loaded at" in text.splitlines()[0]


def test_check_warns_while_the_daemon_runs_an_older_configuration(tmp_path, run_guardd, daemon_factory):
    path = config(tmp_path)
    daemon_factory(path).start()
    assert run_guardd("check", "-c", str(path)).returncode == 0
    edited(path)
    result = run_guardd("check", "-c", str(path))
    assert result.returncode == 1, result.stdout
    assert "the daemon runs an older configuration" in result.stdout


def test_a_reload_makes_the_warning_go(tmp_path, run_guardd, daemon_factory):
    path = config(tmp_path)
    daemon = daemon_factory(path)
    daemon.start()
    edited(path)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in daemon.log.read_text())
    assert json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["config"]["current"] is True
    assert run_guardd("check", "-c", str(path)).returncode == 0


def test_with_no_daemon_running_nothing_is_compared(tmp_path, run_guardd):
    path = config(tmp_path)
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    edited(path)
    assert json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["config"]["current"] is None

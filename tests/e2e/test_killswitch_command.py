"""``guardd killswitch trip|release`` on one host (SQLite): the command decides at once, daemon or not — the
daemon and the command take turns on the stored switch (one transaction each), so neither records the other's
change twice. (On a shared store only the leader decides: tests/cluster/test_cli_killswitch.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import wait_for


def write(tmp_path: Path) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text(
        "[guardd]\nstate_dir = 'state'\nevaluate_every = '1s'\n[[budgets]]\nname = 'b'\ndaily = 5\n"
        "[[ledgers]]\npath = 'ledger.jsonl'\n"
    )
    (tmp_path / "ledger.jsonl").touch()
    return path


def test_a_trip_with_json_prints_only_the_switch_document(run_guardd, tmp_path):
    cfg = str(write(tmp_path))
    done = run_guardd("killswitch", "trip", "--budget", "b", "--reason", "incident", "--json", "-c", cfg)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scopes"]["b"]["tripped"] is True


def test_on_one_host_the_command_applies_at_once_while_the_daemon_runs(run_guardd, daemon_factory, tmp_path):
    cfg = write(tmp_path)
    daemon = daemon_factory(cfg)
    daemon.start()
    switch = tmp_path / "state" / "killswitch.json"
    wait_for(switch.exists)

    done = run_guardd("killswitch", "trip", "--budget", "b", "--reason", "incident", "-c", str(cfg))

    assert done.returncode == 0, done.stderr
    assert "tripped=True" in done.stdout
    assert json.loads(switch.read_text())["scopes"]["b"]["tripped"] is True  # written by the command itself
    history = json.loads(run_guardd("history", "--json", "-c", str(cfg)).stdout)
    assert len([h for h in history if h["kind"] == "switch" and "incident" in h["detail"]]) == 1
    assert daemon.stop() == 0


def test_the_help_names_the_shared_stores_wait_and_exit_code():
    from guardd.cli import EXIT_TEMPFAIL, build_parser
    from guardd.services.follower import APPLY_WITHIN

    parser = build_parser(["killswitch"])
    command = next(a for a in parser._actions if a.dest == "command").choices["killswitch"]
    assert f"up to {APPLY_WITHIN:g} s" in command.epilog and f"exits {EXIT_TEMPFAIL}" in command.epilog

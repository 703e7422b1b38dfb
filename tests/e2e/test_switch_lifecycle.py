"""The manual switch through the command line: one release releases, and each change is recorded once, truly."""

from __future__ import annotations

import json
import re
from pathlib import Path

from guardd.client import BudgetExceeded, KillSwitch, LedgerWriter
from tests.e2e.conftest import wait_for


def cfg(tmp_path: Path, every: str = "1s") -> Path:
    (tmp_path / "ledgers").mkdir(exist_ok=True)
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'[guardd]\nstate_dir = "state"\nevaluate_every = "{every}"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team-search"\ndaily = 1\nforecast = false\n'
    )
    return path


def spend(tmp_path: Path, amount: str) -> None:
    LedgerWriter(tmp_path / "ledgers" / "a.jsonl").write({"id": f"g{amount}", "model": "m", "cost": amount})


def switch(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "killswitch.json").read_text())


def switch_history(run_guardd, path: Path) -> list[dict]:
    history = json.loads(run_guardd("history", "--json", "-c", str(path)).stdout)
    return [h for h in history if h["kind"] == "switch"]


def test_one_release_releases_a_budget_tripped_by_hand_while_over_its_limit(run_guardd, tmp_path):
    path = cfg(tmp_path)
    spend(tmp_path, "1.50")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert run_guardd("killswitch", "trip", "--budget", "team-search", "-c", str(path)).returncode == 0
    released = run_guardd("killswitch", "release", "--budget", "team-search", "-c", str(path))
    assert released.returncode == 0, released.stderr
    assert "tripped=True" not in released.stdout
    assert switch(tmp_path)["scopes"]["team-search"]["tripped"] is False
    KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["team-search"], fail_closed=True).check()


def test_releasing_a_hand_trip_under_the_limit_leaves_no_hold_behind(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("killswitch", "trip", "--budget", "team-search", "-c", str(path)).returncode == 0
    assert run_guardd("killswitch", "release", "--budget", "team-search", "-c", str(path)).returncode == 0
    assert switch(tmp_path)["scopes"]["team-search"]["override"] is None
    spend(tmp_path, "1.50")  # crossing the limit later still trips it
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    assert switch(tmp_path)["scopes"]["team-search"]["tripped"] is True


def test_a_hand_release_of_the_global_scope_is_recorded_as_such(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("killswitch", "trip", "--reason", "incident", "-c", str(path)).returncode == 0
    assert run_guardd("killswitch", "release", "--reason", "resolved", "-c", str(path)).returncode == 0
    (release, trip) = switch_history(run_guardd, path)
    assert trip["budget"] == "*" and trip["detail"].startswith("tripped by ") and "incident" in trip["detail"]
    assert release["budget"] == "*" and release["detail"].startswith("released by ") and "resolved" in release["detail"]
    assert "removed from the configuration" not in release["detail"]


def test_with_the_daemon_running_each_switch_change_is_recorded_once_with_who_did_it(
    run_guardd, tmp_path, daemon_factory
):
    path = cfg(tmp_path)
    daemon = daemon_factory(path)
    daemon.start()

    def cycles(n: int = 2) -> None:
        for _ in range(n):
            before = switch(tmp_path)["heartbeat_at"]
            wait_for(lambda b=before: switch(tmp_path)["heartbeat_at"] != b)

    trip = run_guardd("killswitch", "trip", "--budget", "team-search", "--reason", "deploy", "-c", str(path))
    assert trip.returncode == 0, trip.stderr
    cycles()
    with_trip = switch_history(run_guardd, path)
    assert (
        len(with_trip) == 1 and with_trip[0]["detail"].startswith("tripped by ") and "deploy" in with_trip[0]["detail"]
    )
    assert run_guardd("killswitch", "release", "--budget", "team-search", "-c", str(path)).returncode == 0
    cycles()
    spend(tmp_path, "1.50")
    wait_for(lambda: switch(tmp_path)["tripped"])
    cycles()
    history = switch_history(run_guardd, path)
    assert [re.match(r"(tripped|released)\b", h["detail"]).group(1) for h in history] == [
        "tripped",
        "released",
        "tripped",
    ], history
    assert history[1]["detail"].startswith("released by ") and "daily spend" in history[0]["detail"]
    try:
        KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["team-search"]).check()
        raise AssertionError("expected the switch to refuse")
    except BudgetExceeded:
        pass
    assert daemon.stop() == 0


def released_over_its_limit(run_guardd, tmp_path: Path) -> Path:
    path = cfg(tmp_path)
    spend(tmp_path, "1.50")
    assert run_guardd("run", "--once", "-c", str(path)).returncode == 0
    released = run_guardd("killswitch", "release", "--budget", "team-search", "--reason", "ok'd", "-c", str(path))
    assert released.returncode == 0, released.stderr
    return path


def test_after_a_hand_release_status_json_says_the_budget_is_not_tripped_and_why(run_guardd, tmp_path):
    path = released_over_its_limit(run_guardd, tmp_path)
    (budget,) = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["budgets"]
    assert budget["tripped"] is False
    assert budget["state"] == "critical"  # over its limit while the switch does not trip it
    assert [w["state"] for w in budget["windows"]] == ["critical"]
    assert budget["override"]["state"] == "released" and budget["override"]["reason"] == "ok'd"


def test_after_a_hand_release_status_shows_no_tripped_budget(run_guardd, tmp_path):
    path = released_over_its_limit(run_guardd, tmp_path)
    text = run_guardd("status", "-c", str(path)).stdout
    assert "TRIPPED" not in text and " tripped " not in text
    assert "team-search  [CRITICAL]" in text and "released by hand" in text


def test_after_a_hand_release_check_says_released_not_tripped(run_guardd, tmp_path):
    path = released_over_its_limit(run_guardd, tmp_path)
    checked = run_guardd("check", "-c", str(path))
    assert "tripped" not in checked.stdout.split("|")[0]
    assert "released by hand" in checked.stdout
    assert checked.returncode == 2  # still over its limit: critical, truly


def test_a_budget_tripped_by_hand_under_its_limit_shows_tripped_in_status(run_guardd, tmp_path):
    path = cfg(tmp_path)
    assert run_guardd("killswitch", "trip", "--budget", "team-search", "-c", str(path)).returncode == 0
    (budget,) = json.loads(run_guardd("status", "--json", "-c", str(path)).stdout)["budgets"]
    assert budget["tripped"] is True and budget["state"] == "tripped"
    assert budget["override"]["state"] == "tripped"

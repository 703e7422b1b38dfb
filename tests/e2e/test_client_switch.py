"""KillSwitch.check() reads the switch file as contract §3 says: trust only a live, valid, schema-1 document."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guardd.client import BudgetExceeded, KillSwitch


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def write(path: Path, alive: bool = True, **fields: object) -> Path:
    beat = datetime.now(UTC) - (timedelta(seconds=1) if alive else timedelta(minutes=10))
    doc: dict[str, object] = {
        "schema": 1,
        "updated_at": iso(beat),
        "heartbeat_at": iso(beat),
        "expires_at": iso(beat + timedelta(minutes=5)),
        "tripped": False,
        "scopes": {"team": {"tripped": False, "reason": None, "until": None, "headroom": "1.00"}},
    }
    doc.update(fields)
    path.write_text(json.dumps(doc))
    return path


def test_a_top_level_trip_refuses_even_when_no_scope_is_tripped(tmp_path):
    path = write(tmp_path / "s.json", tripped=True)
    with pytest.raises(BudgetExceeded, match="tripped"):
        KillSwitch(path, budgets=["team"]).check()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"schema": 2}, id="another-schema"),
        pytest.param({"scopes": [{"tripped": True}]}, id="scopes-as-a-list"),
        pytest.param({"scopes": {"team": {"tripped": False, "headroom": "abc"}}}, id="headroom-abc"),
        pytest.param({"scopes": {"team": "tripped"}}, id="scope-as-a-string"),
    ],
)
def test_a_malformed_document_is_treated_like_a_missing_file_never_as_a_raw_exception(tmp_path, fields):
    path = write(tmp_path / "s.json", **fields)
    KillSwitch(path, budgets=["team"]).check(estimate="0.50")  # the default policy allows a dead guard
    with pytest.raises(BudgetExceeded, match="cannot be trusted"):
        KillSwitch(path, budgets=["team"], fail_closed=True).check(estimate="0.50")


def test_a_file_that_is_not_json_is_treated_like_a_missing_file(tmp_path):
    (tmp_path / "s.json").write_text('{"schema": 1, "scop')
    with pytest.raises(BudgetExceeded):
        KillSwitch(tmp_path / "s.json", fail_closed=True).check()


def test_an_expired_document_is_a_dead_guard_even_without_max_age(tmp_path):
    path = write(tmp_path / "s.json", alive=False)
    KillSwitch(path).check()
    with pytest.raises(BudgetExceeded, match="not running"):
        KillSwitch(path, fail_closed=True).check()


def test_a_live_document_allows_when_failing_closed(tmp_path):
    KillSwitch(write(tmp_path / "s.json"), budgets=["team"], fail_closed=True).check(estimate="0.99")


def test_a_dead_guard_is_logged_as_a_warning_at_most_once_a_minute(tmp_path, caplog):
    switch = KillSwitch(tmp_path / "missing.json")
    with caplog.at_level(logging.WARNING, logger="guardd.client"):
        for _ in range(100):
            switch.check()
    warnings = [r for r in caplog.records if r.name == "guardd.client"]
    assert len(warnings) == 1 and "allowing" in warnings[0].getMessage()


def test_a_guard_that_comes_back_is_trusted_again_at_once(tmp_path):
    quiet = {"team": {"tripped": False, "reason": None, "until": None, "headroom": "5"}}
    tripped = {"team": {"tripped": True, "reason": "over", "until": None, "headroom": "0"}}
    path = write(tmp_path / "s.json", alive=False, scopes=quiet)
    switch = KillSwitch(path, budgets=["team"], fail_closed=False)
    switch.check()
    write(path, tripped=True, scopes=tripped)
    with pytest.raises(BudgetExceeded):
        switch.check()


def test_a_dead_guards_last_trip_still_refuses_a_client_that_allows_when_the_guard_is_dead(tmp_path):
    tripped = {"team": {"tripped": True, "reason": "over", "until": None, "headroom": "0"}}
    switch = KillSwitch(write(tmp_path / "s.json", alive=False, tripped=True, scopes=tripped), budgets=["team"])
    with pytest.raises(BudgetExceeded, match="over"):
        switch.check()


def test_the_switch_file_written_by_guardd_is_trusted_by_the_client(run_guardd, tmp_path):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n[[budgets]]\nname = "b"\ndaily = 5\n')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    switch = KillSwitch(tmp_path / "state" / "killswitch.json", budgets=["b"], fail_closed=True)
    switch.check(estimate="4.99")
    with pytest.raises(BudgetExceeded, match="headroom"):
        switch.check(estimate="5.01")

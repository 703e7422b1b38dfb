"""A budget whose ``match`` selects nothing ever stored is said by ``check`` and ``status`` (review finding F7):
a typo in a label key or a model glob would otherwise be $0 and OK forever."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, match: str) -> Path:
    now = datetime.now(UTC).isoformat()
    line = {"ts": now, "id": "a", "model": "anthropic/claude", "cost": "1", "labels": {"team": "search", "env": "p"}}
    (tmp_path / "usage.jsonl").write_text(json.dumps(line) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "usage.jsonl"\n'
        f'[[budgets]]\nname = "typo"\nmatch = {match}\ndaily = 10\nforecast = false\n'
    )
    return cfg


def test_check_warns_about_a_label_key_no_event_ever_carried(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ teem = "search" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith(
        "GUARDD WARNING - typo matches nothing ever stored (label key 'teem' was never seen; seen keys: env, team)"
    ), result.stdout


def test_check_warns_about_a_model_glob_that_matched_no_model(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ model = "anthropc/*" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1 and "model 'anthropc/*' matched no model seen" in result.stdout, result.stdout


def test_check_only_notes_a_label_value_never_seen(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ team = "growth" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 0, result.stdout
    assert "note: typo matched nothing stored yet (label team = 'growth' matched no value seen" in result.stdout


def test_status_names_the_budget_whose_match_selects_nothing(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ teem = "search" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    [budget] = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)["budgets"]
    assert budget["never_matched"]["level"] == "warning"
    assert "MATCHES NOTHING EVER STORED: label key 'teem'" in run_guardd("status", "-c", str(cfg)).stdout


def test_a_match_that_selects_the_events_says_nothing(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ team = "search" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 0 and "never" not in result.stdout and "note" not in result.stdout, result.stdout


def test_config_check_warns_about_a_match_nothing_stored_ever_carried(run_guardd, tmp_path):
    cfg = setup(tmp_path, '{ teem = "search" }')
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("config", "check", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "warning: " + str(cfg) + ": budgets[0].match: label key 'teem' was never seen" in result.stderr

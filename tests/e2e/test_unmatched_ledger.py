"""A ledger pattern that matches no file is said, never a silent $0 forever: a typo in a path is spend not counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, pattern: str) -> Path:
    (tmp_path / "ledgers").mkdir()
    now = datetime.now(UTC).isoformat()
    (tmp_path / "ledgers" / "app.jsonl").write_text(
        json.dumps({"ts": now, "id": "a", "model": "m", "cost": "1"}) + "\n"
    )
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        f'[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "{pattern}"\n'
        '[[budgets]]\nname = "team"\ndaily = 10\nforecast = false\n'
    )
    return cfg


def test_status_names_a_ledger_pattern_that_matches_no_file(run_guardd, tmp_path):
    cfg = setup(tmp_path, "ledgrs/*.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    assert doc["unmatched_ledgers"] == [str(tmp_path / "ledgrs" / "*.jsonl")]
    assert "ledgrs/*.jsonl" in run_guardd("status", "-c", str(cfg)).stdout


def test_check_warns_about_a_ledger_pattern_that_matches_no_file(run_guardd, tmp_path):
    cfg = setup(tmp_path, "ledgrs/*.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1 and "ledgrs/*.jsonl" in result.stdout


def test_a_pattern_that_matches_a_file_is_not_named(run_guardd, tmp_path):
    cfg = setup(tmp_path, "ledgers/*.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)["unmatched_ledgers"] == []
    assert run_guardd("check", "-c", str(cfg)).returncode == 0

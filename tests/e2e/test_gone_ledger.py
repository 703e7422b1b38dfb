"""A configured ledger file that was read and is gone (deleted, moved, a symlink whose target is no longer there)
is said, never shown as a healthy ledger with check OK (review F15). A glob whose files were all cleaned up is
rotation doing its job: not said."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, ledger: str) -> Path:
    (tmp_path / "vol").mkdir()
    (tmp_path / "logs").mkdir()
    now = datetime.now(UTC).isoformat()
    (tmp_path / "vol" / "usage.jsonl").write_text(json.dumps({"ts": now, "id": "a", "model": "m", "cost": "1"}) + "\n")
    os.symlink(tmp_path / "vol" / "usage.jsonl", tmp_path / "logs" / "current.jsonl")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        f'[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "{ledger}"\n'
        '[[budgets]]\nname = "team"\ndaily = 10\nforecast = false\n'
    )
    return cfg


def test_status_names_an_exact_ledger_path_whose_symlink_dangles(run_guardd, tmp_path):
    cfg = setup(tmp_path, "logs/current.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    (tmp_path / "vol").rename(tmp_path / "vol.unmounted")
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    path = str(tmp_path / "logs" / "current.jsonl")
    assert [gone["path"] for gone in doc["missing_ledgers"]] == [path]
    assert "symbolic link" in doc["missing_ledgers"][0]["reason"]
    assert f"{path}: GONE" in run_guardd("status", "-c", str(cfg)).stdout


def test_check_warns_about_an_exact_ledger_path_that_was_deleted(run_guardd, tmp_path):
    cfg = setup(tmp_path, "logs/current.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    assert run_guardd("check", "-c", str(cfg)).returncode == 0
    (tmp_path / "logs" / "current.jsonl").unlink()
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout
    assert f"ledger file {tmp_path / 'logs' / 'current.jsonl'} is gone" in result.stdout


def test_a_glob_whose_files_were_cleaned_up_is_not_said(run_guardd, tmp_path):
    cfg = setup(tmp_path, "logs/*.jsonl")
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    (tmp_path / "logs" / "current.jsonl").unlink()
    doc = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)
    assert doc["missing_ledgers"] == [] and doc["unmatched_ledgers"] == []
    assert run_guardd("check", "-c", str(cfg)).returncode == 0

"""An unpriced event is reported, never silently $0 (contract §2): check, the monitoring plugin, says so too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, lines: list[dict[str, object]]) -> Path:
    (tmp_path / "usage.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        '[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "usage.jsonl"\n'
        '[[budgets]]\nname = "team"\ndaily = 10\nforecast = false\n'
    )
    return cfg


def test_check_warns_when_a_window_holds_events_it_could_not_price(run_guardd, tmp_path):
    now = datetime.now(UTC).isoformat()
    cfg = setup(
        tmp_path,
        [
            {"ts": now, "id": "a", "model": "m/a", "cost": "1.00"},
            # no cost and no [openrouter] catalog to price it: its cost is unknown, not $0
            {"ts": now, "id": "b", "model": "m/a", "prompt_tokens": 900000, "completion_tokens": 900000},
        ],
    )
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("GUARDD WARNING - team daily: 1 unpriced event not counted"), result.stdout
    assert "'team_daily'=1;8;10;0" in result.stdout


def test_check_stays_ok_when_every_event_is_priced(run_guardd, tmp_path):
    now = datetime.now(UTC).isoformat()
    cfg = setup(tmp_path, [{"ts": now, "id": "a", "model": "m/a", "cost": "1.00"}])
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 0 and result.stdout.startswith("GUARDD OK"), result.stdout

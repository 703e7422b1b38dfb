"""Nothing is set aside in silence (contract §7): a warning per line, `guardd quarantine`, check WARNING."""

import json
import re
from pathlib import Path

GOOD = '{"ts": "%s", "id": "g%d", "model": "m", "cost": "0.01"}'
BAD = ['{"ts": "2026-11-02T10:00:00Z", "id": "neg", "model": "m", "cost": -1}', "this line is not JSON"]


def setup(tmp_path: Path, bad: list[str]) -> Path:
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "usage.jsonl").write_text("\n".join([GOOD % (now, 1), *bad, GOOD % (now, 2)]) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        "[guardd]\nstate_dir = 'state'\n[[ledgers]]\npath = 'usage.jsonl'\n[[budgets]]\nname = 'b'\ndaily = 5\n"
    )
    return cfg


def test_each_line_set_aside_is_logged_with_its_ledger_offset_and_reason(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    result = run_guardd("run", "--once", "-c", str(cfg))
    warnings = [line for line in result.stderr.splitlines() if "set aside" in line]
    assert len(warnings) == 2, result.stderr
    assert all("warning" in w and "usage.jsonl" in w and "offset=" in w for w in warnings)
    assert "negative" in warnings[0] and "JSON" in warnings[1]


def test_at_most_ten_lines_a_minute_per_ledger_then_one_summary(run_guardd, tmp_path):
    cfg = setup(tmp_path, [f"garbage {i}" for i in range(25)])
    result = run_guardd("run", "--once", "-c", str(cfg))
    lines = [line for line in result.stderr.splitlines() if "set aside" in line]
    assert len(lines) == 11, result.stderr
    assert "at most 10 a minute" in lines[-1]


def test_quarantine_lists_what_was_set_aside_as_json(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    run_guardd("run", "--once", "-c", str(cfg))
    rows = json.loads(run_guardd("quarantine", "--json", "-c", str(cfg)).stdout)
    assert len(rows) == 2 and set(rows[0]) >= {"file", "offset", "reason", "excerpt", "at"}
    assert all(r["file"].endswith("usage.jsonl") for r in rows)
    assert [r["excerpt"] for r in rows] == ["this line is not JSON", BAD[0]]  # newest first: the later offset


def test_quarantine_filters_by_ledger_and_since(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    run_guardd("run", "--once", "-c", str(cfg))
    assert json.loads(run_guardd("quarantine", "--json", "--ledger", "other.jsonl", "-c", str(cfg)).stdout) == []
    ledger = str(tmp_path / "usage.jsonl")
    assert len(json.loads(run_guardd("quarantine", "--json", "--ledger", ledger, "-c", str(cfg)).stdout)) == 2
    assert json.loads(run_guardd("quarantine", "--json", "--since", "2099-01-01", "-c", str(cfg)).stdout) == []
    assert len(json.loads(run_guardd("quarantine", "--json", "--since", "1h", "-c", str(cfg)).stdout)) == 2


def test_quarantine_for_people_shows_one_line_per_entry(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    run_guardd("run", "--once", "-c", str(cfg))
    out = run_guardd("quarantine", "-c", str(cfg)).stdout
    assert len([line for line in out.splitlines() if "usage.jsonl" in line]) == 2
    assert not re.search(r"\d\.\d{6}", out)  # no microseconds


def test_check_warns_while_a_ledger_set_lines_aside_in_the_last_day(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    run_guardd("run", "--once", "-c", str(cfg))
    result = run_guardd("check", "-c", str(cfg))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("GUARDD WARNING") and "set aside" in result.stdout


def test_status_counts_lines_set_aside_per_ledger(run_guardd, tmp_path):
    cfg = setup(tmp_path, BAD)
    run_guardd("run", "--once", "-c", str(cfg))
    ledgers = json.loads(run_guardd("status", "--json", "-c", str(cfg)).stdout)["ledgers"]
    assert [(lg["quarantined"], lg["quarantined_24h"]) for lg in ledgers] == [(2, 2)]

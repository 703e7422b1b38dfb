"""Useful logs: -v says what was ingested and decided; log_format = "json" gives one JSON object a line."""

import json
from datetime import UTC, datetime
from pathlib import Path


def setup(tmp_path: Path, extra: str = "") -> Path:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = '{"ts": "%s", "id": "g%d", "model": "m", "cost": "3"}'
    (tmp_path / "usage.jsonl").write_text("\n".join([line % (now, 1), line % (now, 1), "not json"]) + "\n")
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        f"[guardd]\nstate_dir = 'state'\n{extra}[[ledgers]]\npath = 'usage.jsonl'\n"
        "[[budgets]]\nname = 'b'\ndaily = 5\nwarn_at = [50]\n"
    )
    return cfg


def test_verbose_logs_each_file_ingested_with_its_counts(run_guardd, tmp_path):
    result = run_guardd("run", "--once", "-v", "-c", str(setup(tmp_path)))
    lines = [line for line in result.stderr.splitlines() if "usage.jsonl" in line and "stored=" in line]
    assert lines and "stored=1" in lines[0] and "duplicates=1" in lines[0] and "set_aside=1" in lines[0], result.stderr


def test_verbose_logs_each_evaluation_decision(run_guardd, tmp_path):
    result = run_guardd("run", "--once", "-v", "-c", str(setup(tmp_path)))
    decisions = [line for line in result.stderr.splitlines() if "evaluated" in line and "budget=b" in line]
    assert decisions and "state=warning" in decisions[0] and "daily" in decisions[0], result.stderr


def test_without_verbose_there_is_no_debug_line(run_guardd, tmp_path):
    result = run_guardd("run", "--once", "-c", str(setup(tmp_path)))
    assert "stored=" not in result.stderr and " debug " not in result.stderr


def test_log_format_json_writes_one_object_a_line(run_guardd, tmp_path):
    cfg = setup(tmp_path, extra="log_format = 'json'\n")
    result = run_guardd("run", "--once", "-v", "-c", str(cfg))
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records and all({"ts", "level", "message"} <= set(r) for r in records)
    aside = next(r for r in records if r["message"].startswith("ledger line set aside"))
    assert aside["level"] == "warning" and aside["ledger"].endswith("usage.jsonl") and aside["offset"] > 0


def test_an_unknown_log_format_is_a_configuration_error(run_guardd, tmp_path):
    result = run_guardd("config", "check", "-c", str(setup(tmp_path, extra="log_format = 'xml'\n")))
    assert result.returncode == 78 and "guardd.log_format" in result.stderr

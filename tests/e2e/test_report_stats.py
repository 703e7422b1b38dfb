"""Per-key statistics (contract §11): report rows carry errors, rate_limited and last_at, in every form."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from guardd.client import LedgerWriter


def setup(tmp_path: Path) -> Path:
    (tmp_path / "ledgers").mkdir()
    path = tmp_path / "guardd.toml"
    path.write_text('[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n')
    writer = LedgerWriter(tmp_path / "ledgers" / "a.jsonl")
    lines = [
        ("2026-11-03T09:00:00Z", "…ab12", "1.00", {"status": 200, "latency_ms": 300}),
        ("2026-11-03T09:30:00Z", "…ab12", "0", {"status": 429}),
        ("2026-11-03T10:15:30Z", "…ab12", "0", {"ok": False, "error": "ReadTimeout"}),
        ("2026-11-04T08:00:00Z", "…cd34", "2.50", {}),
        ("2026-11-04T08:01:00Z", "…cd34", "0", {"status": 503}),
    ]
    for i, (ts, key, cost, health) in enumerate(lines):
        writer.write({"ts": ts, "id": f"e{i}", "model": "m", "cost": cost, "key": key, **health})
    return path


RANGE = ("--since", "2026-11-01", "--until", "2026-12-01")


def report(run_guardd, path: Path, *args: str):
    result = run_guardd("ingest", str(path.parent / "ledgers" / "a.jsonl"), "-c", str(path))
    assert result.returncode == 0, result.stderr
    return run_guardd("report", *RANGE, *args, "-c", str(path))


def test_report_rows_by_key_carry_errors_rate_limited_and_the_last_event(run_guardd, tmp_path):
    path = setup(tmp_path)
    rows = json.loads(report(run_guardd, path, "--by", "key", "--json").stdout)["rows"]
    assert [(r["group"], r["events"], r["errors"], r["rate_limited"], r["last_at"]) for r in rows] == [
        ("…cd34", 2, 1, 0, "2026-11-04T08:01:00+00:00"),
        ("…ab12", 3, 2, 1, "2026-11-03T10:15:30+00:00"),
    ]


def test_report_by_day_carries_the_statistics_of_each_day(run_guardd, tmp_path):
    path = setup(tmp_path)
    rows = json.loads(report(run_guardd, path, "--by", "day", "--json").stdout)["rows"]
    assert [(r["group"], r["errors"], r["rate_limited"], r["last_at"]) for r in rows] == [
        ("2026-11-03", 2, 1, "2026-11-03T10:15:30+00:00"),
        ("2026-11-04", 1, 0, "2026-11-04T08:01:00+00:00"),
    ]


def test_report_csv_has_the_statistics_columns_after_group_spent_events(run_guardd, tmp_path):
    path = setup(tmp_path)
    table = list(csv.reader(io.StringIO(report(run_guardd, path, "--by", "model", "--csv").stdout)))
    assert table == [
        ["group", "spent", "events", "errors", "rate_limited", "last_at"],
        ["m", "3.500000", "5", "3", "1", "2026-11-04T08:01:00+00:00"],
    ]


def test_report_by_key_on_a_terminal_shows_requests_errors_429s_last_use_and_spend(run_guardd, tmp_path):
    path = setup(tmp_path)
    text = report(run_guardd, path, "--by", "key").stdout
    header, cd34, ab12 = text.splitlines()[2:5]
    assert header.split() == ["spend", "requests", "errors", "429s", "last", "used"]
    assert ab12.split() == ["…ab12", "$1.00", "3", "2", "1", "2026-11-03", "10:15"]
    assert cd34.split() == ["…cd34", "$2.50", "2", "1", "0", "2026-11-04", "08:01"]


def test_a_range_that_cuts_an_hour_finds_the_last_event_inside_it(run_guardd, tmp_path):
    path = setup(tmp_path)
    run_guardd("ingest", str(tmp_path / "ledgers" / "a.jsonl"), "-c", str(path))
    result = run_guardd(
        "report", "--by", "key", "--since", "2026-11-01", "--until", "2026-11-03T10:00:00Z", "--json", "-c", str(path)
    )
    (row,) = json.loads(result.stdout)["rows"]
    assert (row["group"], row["last_at"], row["errors"]) == ("…ab12", "2026-11-03T09:30:00+00:00", 1)

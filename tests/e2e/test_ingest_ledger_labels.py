"""``guardd ingest`` of a file that a configured ``[[ledgers]]`` entry covers reads it as that ledger: with the
entry's labels (``--label`` adds to them and wins on a key both name) and its format, and says so on stderr — so a
backfill stores the events the daemon stores, and a re-run beside the daemon is a true duplicate (review F10)."""

from __future__ import annotations

import json
from pathlib import Path

CONFIG = """
[guardd]
state_dir = "state"
[[ledgers]]
path = "logs/usage-*.jsonl"
labels = { team = "search", env = "prod" }
[[budgets]]
name = "team-search"
match = { team = "search" }
daily = 5
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "guardd.toml").write_text(CONFIG)
    (tmp_path / "logs").mkdir()
    ledger = tmp_path / "logs" / "usage-a.jsonl"
    lines = [{"ts": "2026-11-02T10:00:00Z", "id": f"gen-{i}", "model": "m", "cost": "1.50"} for i in range(3)]
    ledger.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path / "guardd.toml", ledger


def by_label(run_guardd, cfg: Path, name: str) -> dict[str | None, tuple[str, int]]:
    result = run_guardd("report", "--by", f"label:{name}", "--json", "--since", "2026-11-01", "--until", "2026-12-01",
                        "-c", str(cfg))  # fmt: skip
    return {row["group"]: (row["spent"], row["events"]) for row in json.loads(result.stdout)["rows"]}


def test_ingest_beside_the_daemon_keeps_the_ledgers_labels_on_its_events(run_guardd, tmp_path):
    cfg, ledger = setup(tmp_path)
    assert run_guardd("run", "--once", "-c", str(cfg)).returncode == 0
    summary = json.loads(run_guardd("ingest", str(ledger), "--json", "-c", str(cfg)).stdout)
    assert (summary["read"], summary["stored"], summary["duplicates"]) == (3, 0, 3)
    assert by_label(run_guardd, cfg, "team") == {"search": ("4.500000", 3)}


def test_ingest_of_a_configured_ledger_applies_its_labels_and_says_so(run_guardd, tmp_path):
    cfg, ledger = setup(tmp_path)
    result = run_guardd("ingest", str(ledger), "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert 'read as [[ledgers]] "' in result.stderr and "labels env=prod, team=search" in result.stderr
    assert by_label(run_guardd, cfg, "team") == {"search": ("4.500000", 3)}


def test_a_label_given_on_the_command_line_wins_over_the_ledgers_on_the_same_key(run_guardd, tmp_path):
    cfg, ledger = setup(tmp_path)
    assert run_guardd("ingest", str(ledger), "--label", "team=ranking", "-c", str(cfg)).returncode == 0
    assert by_label(run_guardd, cfg, "team") == {"ranking": ("4.500000", 3)}
    assert by_label(run_guardd, cfg, "env") == {"prod": ("4.500000", 3)}


def test_a_file_no_ledger_covers_gets_only_the_command_lines_labels(run_guardd, tmp_path):
    cfg, _ = setup(tmp_path)
    other = tmp_path / "elsewhere.jsonl"
    other.write_text(json.dumps({"ts": "2026-11-02T10:00:00Z", "id": "gen-x", "model": "m", "cost": "1"}) + "\n")
    result = run_guardd("ingest", str(other), "-c", str(cfg))
    assert result.returncode == 0 and "[[ledgers]]" not in result.stderr
    assert by_label(run_guardd, cfg, "team") == {None: ("1.000000", 1)}


def test_the_first_ledger_whose_pattern_names_the_same_file_is_the_one_read_as(tmp_path):
    from guardd.ledger.tracked import LedgerSpec
    from guardd.services.backfill import ledgers_of

    (tmp_path / "logs").mkdir()
    ledger = tmp_path / "logs" / "usage-a.jsonl"
    ledger.write_text("")
    (tmp_path / "link.jsonl").symlink_to(ledger)
    first = LedgerSpec(str(tmp_path / "logs" / "usage-*.jsonl"), labels={"team": "search"})
    second = LedgerSpec(str(tmp_path / "logs" / "*.jsonl"), labels={"team": "other"})
    paths = [str(ledger), str(tmp_path / "link.jsonl"), str(tmp_path / "nowhere.jsonl")]
    assert ledgers_of(paths, [LedgerSpec(str(tmp_path / "x-*.jsonl")), first, second]) == {
        str(ledger): first,
        str(tmp_path / "link.jsonl"): first,
    }

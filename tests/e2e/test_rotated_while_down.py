"""Rotated twice while the daemon was down: the generation in between is read, and a compressed one that may
hold lines never counted makes ``check`` WARN and ``status`` name it (review F6)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.conftest import wait_for


def append(path: Path, i: int, cost: str) -> None:
    with path.open("a") as f:
        f.write(json.dumps({"ts": datetime.now(UTC).isoformat(), "id": f"gen-{i}", "model": "m/a", "cost": cost}))
        f.write("\n")


def test_a_compressed_rotated_file_with_unread_lines_makes_check_warn_and_status_name_it(
    run_guardd, tmp_path, daemon_factory
):
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    app = ledgers / "app.jsonl"
    append(app, 1, "1.00")
    config = tmp_path / "guardd.toml"
    config.write_text(
        '[guardd]\nstate_dir = "state"\nevaluate_every = "1s"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "team"\nmonthly = 100\nforecast = false\n'
    )
    daemon = daemon_factory(config)
    daemon.start()
    wait_for(lambda: "'team_monthly'=1;" in run_guardd("check", "-c", str(config)).stdout, timeout=30)
    assert daemon.stop() == 0
    append(app, 2, "2.00")  # unread when the daemon stopped
    os.rename(app, ledgers / "app.jsonl.1")
    append(app, 3, "4.00")  # the generation in between
    subprocess.run(["gzip", str(ledgers / "app.jsonl.1")], check=True)
    os.rename(app, ledgers / "app.jsonl.1")
    append(app, 4, "8.00")
    daemon.start()

    def checked():
        result = run_guardd("check", "-c", str(config))
        return result if "'team_monthly'=13;" in result.stdout else None

    result = wait_for(checked, timeout=30)  # $1 + $4 + $8: the $2 line is inside the .gz
    gz = str(ledgers / "app.jsonl.1.gz")
    assert result.returncode == 1 and result.stdout.startswith("GUARDD WARNING - "), result.stdout
    assert f"rotated ledger file {gz}: compressed (.gz)" in result.stdout
    doc = json.loads(run_guardd("status", "--json", "-c", str(config)).stdout)
    assert [w["path"] for w in doc["ledger_warnings"]] == [gz]
    assert f"{gz}: ROTATED, NOT READ: compressed" in run_guardd("status", "-c", str(config)).stdout

    # The README's remedy: decompress it elsewhere and ingest it; the lines read before count once.
    restored = tmp_path / "restored"
    restored.write_bytes(subprocess.run(["zcat", gz], check=True, capture_output=True).stdout)
    assert run_guardd("ingest", str(restored), "-c", str(config)).returncode == 0
    wait_for(lambda: "'team_monthly'=15;" in run_guardd("check", "-c", str(config)).stdout, timeout=30)
    assert daemon.stop() == 0

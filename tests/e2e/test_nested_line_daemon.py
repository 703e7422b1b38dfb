"""The daemon follows a ledger past a line nested 1,000 levels deep (it used to retry that block for ever)."""

from __future__ import annotations

import json
from pathlib import Path

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for

DEEP = '{"ts": "2026-11-21T10:00:00Z", "labels": ' + "[" * 1000 + "]" * 1000 + "}\n"


def test_the_daemon_quarantines_a_deeply_nested_line_and_reads_on(tmp_path: Path, run_guardd, daemon_factory):
    (tmp_path / "ledgers").mkdir()
    writer = LedgerWriter(tmp_path / "ledgers" / "app.jsonl")
    writer.write({"id": "g0", "model": "m", "cost": "0.25"})
    with (tmp_path / "ledgers" / "app.jsonl").open("a") as f:
        f.write(DEEP)
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n')
    daemon = daemon_factory(cfg)
    daemon.start(timeout=60)
    writer.write({"id": "g1", "model": "m", "cost": "0.25"})

    def events() -> int:
        result = run_guardd("report", "--json", "-c", str(cfg))
        return json.loads(result.stdout)["events"] if result.returncode == 0 else -1

    wait_for(lambda: events() == 2, timeout=60)
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log.read_text()

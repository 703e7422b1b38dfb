"""A ``**`` ledger pattern over a tree with two directory symlink loops: the daemon starts, counts the ledger's
lines, answers, and stops on SIGTERM."""

from __future__ import annotations

import json
import time
from pathlib import Path

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for


def test_a_glob_over_two_symlink_loops_neither_hangs_nor_blocks_sigterm(tmp_path: Path, run_guardd, daemon_factory):
    ledgers = tmp_path / "ledgers"
    (ledgers / "a" / "deep").mkdir(parents=True)
    (ledgers / "b" / "c").mkdir(parents=True)
    (ledgers / "a" / "up").symlink_to("..")  # ledgers/a/up -> ledgers
    (ledgers / "b" / "c" / "back").symlink_to("../../a")  # ledgers/b/c/back -> ledgers/a
    writer = LedgerWriter(ledgers / "a" / "deep" / "app.jsonl")
    writer.write({"id": "g0", "model": "m", "cost": "0.25"})
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\nevaluate_every = "1s"\n[[ledgers]]\npath = "ledgers/**/*.jsonl"\n')
    daemon = daemon_factory(cfg)
    daemon.start(timeout=60)  # READY=1 comes after the first look at the ledgers

    def counted() -> int:
        result = run_guardd("report", "--json", "--by", "model", "-c", str(cfg))
        return json.loads(result.stdout)["events"] if result.returncode == 0 else 0

    wait_for(lambda: counted() == 1, timeout=60)
    writer.write({"id": "g1", "model": "m", "cost": "0.25"})
    wait_for(lambda: counted() == 2, timeout=60)  # still following the file
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 10

"""A real full disk under state_dir (a small tmpfs): guardd keeps running, says so, and loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from guardd.client import LedgerWriter
from tests.e2e.conftest import wait_for
from tests.support.stress import stored_events


@pytest.fixture
def small_state_dir(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as state_dir (a real full disk)")
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(state)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield state
    subprocess.run(["umount", "-l", str(state)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; return the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def status(run_guardd, cfg: Path) -> dict:
    result = run_guardd("status", "--json", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_full_disk_is_shown_and_critical_and_every_line_is_stored_once_space_returns(
    tmp_path, small_state_dir, run_guardd, daemon_factory
):
    cfg = tmp_path / "guardd.toml"
    cfg.write_text(
        '[guardd]\nstate_dir = "state"\nevaluate_every = "1s"\n[[ledgers]]\npath = "ledgers/*.jsonl"\n'
        '[[budgets]]\nname = "all"\ndaily = 100000\n'
    )
    (tmp_path / "ledgers").mkdir()
    writer = LedgerWriter(tmp_path / "ledgers" / "app.jsonl")
    expected = Decimal(0)

    def write(start: int, count: int) -> None:
        nonlocal expected
        for i in range(start, start + count):
            cost = Decimal(i % 997 + 1) / 1_000_000
            writer.write({"id": f"d-{i}", "model": "m", "cost": cost, "labels": {"pad": "x" * 200}})
            expected += cost

    daemon = daemon_factory(cfg)
    daemon.start()
    db = small_state_dir / "guardd.db"
    try:
        write(0, 200)
        wait_for(lambda: stored_events(db) == 200)
        assert status(run_guardd, cfg)["store"]["ok"] is True
        filler = fill(small_state_dir)
        write(200, 3000)
        failing = wait_for(lambda: (doc := status(run_guardd, cfg))["store"]["ok"] is False and doc, timeout=60)
        assert "full" in failing["store"]["error"]
        check = run_guardd("check", "-c", str(cfg))
        assert check.returncode == 2 and check.stdout.startswith("GUARDD CRITICAL"), check.stdout
        assert daemon.proc.poll() is None
        filler.unlink()
        wait_for(lambda: stored_events(db) == 3200, timeout=60)
        wait_for(lambda: status(run_guardd, cfg)["store"]["ok"] is True, timeout=30)
    finally:
        daemon.stop()
    report = json.loads(run_guardd("report", "--json", "--since", "2000-01-01", "-c", str(cfg)).stdout)
    assert (Decimal(report["total"]), report["events"]) == (expected, 3200)
    log = daemon.log.read_text()
    assert log.count("database or disk is full") <= 6, log  # once a minute, not once a turn

"""Every benchmark shape of ledger (bench/genledger.py) ingests to its exact Decimal total: once, again (nothing
stored the second time), in parsing processes, and after a `kill -9` in the middle of an ingest and a restart.
The generator computes its total with Decimal, independently of guardd's parser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from guardd.core.money import parse_money
from guardd.services.backfill import ingest_files
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.support.processes import descendants

from .conftest import wait_for

BENCH = Path(__file__).resolve().parents[2] / "bench"
SHAPES = ["steady", "mixed", "sequential"]
LINES = 20_000  # ~5.4 MB: three ranges of 2 MiB (guardd.ledger.pool.RANGE_BYTES): a kill lands after the first commit


def generate(path: Path, shape: str, lines: int, seed: int = 7) -> Decimal:
    """Write a seeded ledger of ``shape``; return its exact total as the generator computed it."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "genledger.py"), str(path), "--lines", str(lines), "--shape", shape,
         "--seed", str(seed), "--span-days", "3"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Decimal(done.stderr.strip().split("=", 1)[1])


def guardd(config: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "guardd", *args, "-c", str(config)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def total(db: Path, lines: int = LINES) -> Decimal:
    return asyncio.run(_total(db, lines))


async def _total(db: Path, lines: int) -> Decimal:
    async with Store.open(db) as store:
        spent = await EventStore(store).window_sum(None, *_all_time())
    assert spent.events == lines and spent.unpriced == 0
    return Decimal(spent.cost).scaleb(-12)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "guardd.toml"
    path.write_text('[guardd]\nstate_dir = "state"\n')
    return path


@pytest.mark.parametrize("shape", SHAPES)
async def test_every_shape_parsed_by_worker_processes_gives_the_exact_total(tmp_path, shape):
    ledger = tmp_path / "ledger.jsonl"
    expected = generate(ledger, shape, 3000)
    async with Store.open(tmp_path / "guardd.db") as store:
        events = EventStore(store)
        summary = await ingest_files(
            events, [str(ledger)], "auto", {}, parse_money(1000), workers=2, range_bytes=64 << 10
        )
        assert (summary.read, summary.stored) == (3000, 3000)
    assert await _total(tmp_path / "guardd.db", 3000) == expected


def count(db: Path, readonly: bool = False) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro" if readonly else f"file:{db}", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def _all_time() -> tuple:
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_gives_its_exact_total_after_a_kill_mid_way_a_restart_and_a_second_ingest(tmp_path, config, shape):
    ledger = tmp_path / "ledger.jsonl"
    expected = generate(ledger, shape, LINES)
    db = tmp_path / "state" / "guardd.db"
    command = [sys.executable, "-m", "guardd", "ingest", str(ledger), "--json", "--workers", "2", "-c", str(config)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def some_committed() -> bool:
            if not db.exists():
                return False
            try:
                return count(db, readonly=True) > 0
            except sqlite3.OperationalError:
                return False  # not created yet

        wait_for(some_committed, timeout=120, interval=0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ingest ended before it could be killed: make the ledger longer"
    stored_before = count(db)
    assert 0 < stored_before < LINES
    again = guardd(config, "ingest", str(ledger), "--json", "--workers", "0")
    assert (again["stored"], again["duplicates"]) == (LINES - stored_before, stored_before)
    assert total(db) == expected
    second = guardd(config, "ingest", str(ledger), "--json", "--workers", "0")
    assert (second["read"], second["stored"], second["duplicates"]) == (LINES, 0, LINES)
    assert total(db) == expected


DAEMON_LINES = 30_000  # ~8 MB, four ranges of 2 MiB: the kill lands while workers parse the backlog
DAEMON_CONFIG = """
[guardd]
state_dir = "state"
ingest_workers = 2
[[ledgers]]
path = "ledgers/*.jsonl"
[[budgets]]
name = "all"
monthly = 1000000000
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def committed_offset(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT coalesce(max(offset), 0) FROM files").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # not created yet


def run_daemon(folder: Path, config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    with (folder / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "guardd", "run", "-c", str(config)], cwd=folder, env=env, stdout=log, stderr=log
        )


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_the_daemon_catching_up_on_every_shape_gives_its_exact_total_after_a_kill_mid_way(tmp_path, shape):
    (tmp_path / "ledgers").mkdir()
    ledger = tmp_path / "ledgers" / "app.jsonl"
    expected = generate(ledger, shape, DAEMON_LINES)
    size = ledger.stat().st_size
    config = tmp_path / "guardd.toml"
    config.write_text(DAEMON_CONFIG)
    db = tmp_path / "state" / "guardd.db"
    proc = run_daemon(tmp_path, config)
    try:
        wait_for(lambda: committed_offset(db) > 0, timeout=120, interval=0.02)
        helpers = [pid for generation in descendants(proc.pid) for pid in generation]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert helpers, "the daemon parsed its backlog in its own process, not with guardd ingest's workers"
    stored_before = count(db)
    assert 0 < stored_before < DAEMON_LINES, "the catch-up ended before the kill: make the ledger longer"
    wait_for(lambda: not any(alive(pid) for pid in helpers), timeout=30)  # the workers end with the daemon
    proc = run_daemon(tmp_path, config)
    try:
        wait_for(lambda: committed_offset(db) >= size, timeout=240, interval=0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert total(db, DAEMON_LINES) == expected
    again = guardd(config, "ingest", str(ledger), "--json", "--workers", "2")
    assert (again["read"], again["stored"], again["duplicates"]) == (DAEMON_LINES, 0, DAEMON_LINES)
    assert total(db, DAEMON_LINES) == expected
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()

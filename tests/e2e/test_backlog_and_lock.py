"""One daemon per state, and a start-up backlog that survives SIGTERM and kill -9 at any moment, exactly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.support.stress import stored_events


def config(tmp_path: Path, workers: str = "") -> Path:
    """``workers`` set (e.g. ``"ingest_workers = 2"``) parses any backlog longer than one range in worker processes,
    as a backlog of over 32 MiB is by default."""
    path = tmp_path / "guardd.toml"
    path.write_text(f"""
[guardd]
state_dir = "state"
{workers}
[[ledgers]]
path = "ledgers/*.jsonl"
[[budgets]]
name = "all"
daily = 1000000
""")
    (tmp_path / "ledgers").mkdir(exist_ok=True)
    return path


def backlog(tmp_path: Path, lines: int) -> Decimal:
    """Write ``lines`` canonical lines at once; return the exact sum of their costs."""
    rng = random.Random(7)
    costs = [rng.randint(1, 999_999) for _ in range(lines)]
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with (tmp_path / "ledgers" / "app.jsonl").open("w") as f:
        f.writelines(
            f'{{"ts":"{ts}","id":"b-{i}","model":"m/{i % 7}","cost":"0.{c:06d}","key":"k{i % 3}"}}\n'
            for i, c in enumerate(costs)
        )
    return Decimal(sum(costs)) / 1_000_000


def start(tmp_path: Path, cfg: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}
    log = (tmp_path / "daemon.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "guardd", "run", "-c", str(cfg)], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
    finally:
        log.close()


def report(run_guardd, cfg: Path) -> tuple[Decimal, int]:
    result = run_guardd("report", "--json", "--since", "2000-01-01", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    return Decimal(doc["total"]), int(doc["events"])


def test_a_second_daemon_on_the_same_state_exits_1_at_once_naming_the_first(tmp_path, run_guardd, daemon_factory):
    cfg = config(tmp_path)
    first = daemon_factory(cfg)
    first.start()
    started = time.monotonic()
    second = run_guardd("run", "-c", str(cfg))
    assert second.returncode == 1
    assert f"another guardd (pid {first.proc.pid}) is running on {tmp_path / 'state'}" in second.stderr
    assert time.monotonic() - started < 30  # "at once": it did not wait for the first one
    assert first.proc.poll() is None


def test_a_daemon_killed_with_sigkill_does_not_block_the_next_one(tmp_path, daemon_factory):
    cfg = config(tmp_path)
    first = daemon_factory(cfg)
    first.start()
    first.kill()
    second = daemon_factory(cfg)
    second.start()
    assert second.stop() == 0


@pytest.mark.slow
def test_sigterm_during_a_large_backlog_stops_between_batches_and_a_restart_finishes_exactly(tmp_path, run_guardd):
    cfg = config(tmp_path, "ingest_workers = 2")
    lines = 150_000  # ~12 MB: six ranges of 2 MiB parsed by the workers
    expected = backlog(tmp_path, lines)
    db = tmp_path / "state" / "guardd.db"
    proc = start(tmp_path, cfg)
    wait_for(lambda: stored_events(db) > 0, timeout=60)
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    took = time.monotonic() - asked
    assert stored_events(db) < lines, "the backlog was done before SIGTERM; nothing was shown"
    assert took < 10, f"SIGTERM took {took:.1f}s during the backlog"
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()  # the catch-up was ended, not abandoned
    proc = start(tmp_path, cfg)
    try:
        wait_for(lambda: stored_events(db) >= lines, timeout=240, interval=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert report(run_guardd, cfg) == (expected, lines)


@pytest.mark.slow
def test_kill_9_at_random_points_of_the_start_up_backlog_loses_and_doubles_nothing(tmp_path, run_guardd):
    cfg = config(tmp_path)
    lines = 300_000
    expected = backlog(tmp_path, lines)
    db = tmp_path / "state" / "guardd.db"
    rng = random.Random(9)
    for _ in range(3):
        proc = start(tmp_path, cfg)
        time.sleep(rng.uniform(0.5, 3.0))
        proc.kill()
        proc.wait(30)
    proc = start(tmp_path, cfg)
    try:
        wait_for(lambda: stored_events(db) >= lines, timeout=240, interval=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert report(run_guardd, cfg) == (expected, lines)
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()

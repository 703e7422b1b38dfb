"""Ledgers under stress: kill -9 at random points, the real logrotate, garbage mixed into valid lines."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardd.client import LedgerWriter
from guardd.core.money import parse_money
from guardd.ledger.tailer import LedgerSpec, Tailer
from guardd.store.sqlite.db import Store
from guardd.store.sqlite.events import EventStore
from tests.support.processes import descendants


def write_ledger(path: Path, lines: int, seed: int) -> Decimal:
    rng = random.Random(seed)
    total = Decimal(0)
    with path.open("w") as f:
        for i in range(lines):
            cost = Decimal(rng.randrange(1, 10**7)).scaleb(-9)
            total += cost
            ident = f'"id": "g{seed}-{i}", ' if i % 3 else ""  # a third of the lines carry no id
            f.write(f'{{"ts": "2026-11-02T10:{i % 60:02d}:00Z", {ident}"model": "m{i % 7}", "cost": {cost}}}\n')
    return total


def guardd(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "guardd", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def report_total(cwd: Path, cfg: Path) -> dict:
    proc = guardd("report", "--json", "--since", "2026-11-01", "--until", "2026-12-01", "-c", str(cfg), cwd=cwd)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    "command",
    [["run", "--once"], ["ingest", "ledgers/app.jsonl"], ["ingest", "--workers", "2", "ledgers/app.jsonl"]],
    ids=["tailer", "ingest", "ingest-in-worker-processes"],
)
def test_kill_9_at_random_points_then_restart_counts_every_cent_once(tmp_path, command):
    (tmp_path / "ledgers").mkdir()
    expected = write_ledger(tmp_path / "ledgers" / "app.jsonl", 120_000, seed=3)
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n[[ledgers]]\npath = "ledgers/app.jsonl"\n')
    rng = random.Random(11)
    for _ in range(4):
        proc = guardd(*command, "-c", str(cfg), cwd=tmp_path)
        time.sleep(rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    proc = guardd(*command, "-c", str(cfg), cwd=tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = report_total(tmp_path, cfg)
    assert Decimal(report["total"]) == expected and report["events"] == 120_000


def logrotate() -> str:
    found = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "logrotate"], capture_output=True, timeout=300)
        found = shutil.which("logrotate", path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        pytest.skip("logrotate is not installed and cannot be installed here (needs root and apt-get)")
    return found


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
async def test_the_real_logrotate_loses_and_doubles_nothing(tmp_path, mode):
    tool = logrotate()
    ledger = tmp_path / "app.jsonl"
    conf = tmp_path / "rotate.conf"
    conf.write_text(f"{ledger} {{\n  rotate 5\n  {mode}\n  missingok\n}}\n")
    writer = LedgerWriter(ledger)
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        n = 0
        for round_ in range(3):
            for _ in range(500):
                writer.write({"ts": "2026-11-02T10:00:00Z", "model": "m", "cost": "0.001", "n": n})
                n += 1
            if round_ != 1:
                await tailer.poll()
            result = subprocess.run(  # noqa: ASYNC221 - the test wants logrotate to finish first
                [tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True
            )
            assert result.returncode == 0, result.stderr
            for _ in range(100):  # written after the rotation
                writer.write({"ts": "2026-11-02T10:00:00Z", "model": "m", "cost": "0.001", "n": n})
                n += 1
            await tailer.poll()
        tailer.close()
        row = await store.fetchone("SELECT sum(cost), count(*) FROM events")
    assert (row[1], row[0]) == (n, parse_money("0.001") * n)


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("mode", ["create", "copytruncate"])
async def test_a_rotation_while_guardd_is_down_loses_and_doubles_nothing(tmp_path, mode, ids):
    # guardd stops (kill -9, an upgrade) with lines still unread; logrotate runs; the writer goes on; guardd starts.
    # The lines between the last read and the rotation are only in the rotated file: they must be counted, once.
    tool = logrotate()
    ledger = tmp_path / "app.jsonl"
    conf = tmp_path / "rotate.conf"
    conf.write_text(f"{ledger} {{\n  rotate 5\n  {mode}\n  missingok\n}}\n")
    writer = LedgerWriter(ledger)
    n = 0

    def write(count: int) -> None:
        nonlocal n
        for _ in range(count):
            line = {"ts": "2026-11-02T10:00:00Z", "model": "m", "cost": "0.001", "n": n}
            writer.write({**line, "id": f"gen-{n}"} if ids else line)
            n += 1

    async with Store.open(tmp_path / "db.sqlite") as store:
        before = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        write(300)
        await before.poll()
        before.close()  # guardd is down from here
        write(200)  # never read before the rotation
        result = subprocess.run(  # noqa: ASYNC221 - the test wants logrotate to finish first
            [tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        write(100)  # after the rotation, in the new (or emptied) file
        after = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        await after.poll()
        await after.poll()
        after.close()
        row = await store.fetchone("SELECT sum(cost), count(*) FROM events")
    assert (row[1], row[0]) == (n, parse_money("0.001") * n)


async def test_after_a_copytruncate_while_down_the_last_line_still_wins_across_restarts(tmp_path):
    tool = logrotate()
    ledger = tmp_path / "app.jsonl"
    conf = tmp_path / "rotate.conf"
    conf.write_text(f"{ledger} {{\n  rotate 5\n  copytruncate\n  missingok\n}}\n")
    writer = LedgerWriter(ledger)
    line = {"ts": "2026-11-02T10:00:00Z", "model": "m"}
    spec = LedgerSpec(str(ledger))
    async with Store.open(tmp_path / "db.sqlite") as store:

        async def run_once() -> None:
            tailer = Tailer([spec], EventStore(store), parse_money(1000))
            await tailer.poll()
            tailer.close()

        writer.write({**line, "id": "first", "cost": "1"})
        await run_once()
        writer.write({**line, "id": "stream", "cost": "0.01"})  # a first snapshot, unread when guardd stops
        rotated = subprocess.run(  # noqa: ASYNC221 - the test wants logrotate to finish first
            [tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True
        )
        assert rotated.returncode == 0, rotated.stderr
        writer.write({**line, "id": "stream", "cost": "0.05"})  # the final one, after the rotation
        for _ in range(3):  # restarts: the copy's tail is read once, before the new file, and never again
            await run_once()
            row = await store.fetchone("SELECT sum(cost), count(*) FROM events")
            assert (row[1], row[0]) == (2, parse_money("1.05"))


VALID = '{{"ts": "2026-11-02T10:00:00Z", "id": "v{i}", "model": "m", "cost": "0.0{i:02d}"}}'
garbage = st.one_of(
    st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b and not b.strip().startswith(b"{")),
    st.integers(0, 40).map(lambda i: VALID.format(i=i)[: -1 - i % 10].encode()),  # a valid line cut short
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(garbage, min_size=1, max_size=30), st.randoms(use_true_random=False))
async def test_garbage_is_quarantined_and_valid_totals_stay_exact(tmp_path_factory, bad_lines, rng):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    good = [VALID.format(i=i).encode() for i in range(1, 41)]
    lines = good + [b for b in bad_lines if b.strip()]
    rng.shuffle(lines)
    ledger = tmp_path / "app.jsonl"
    ledger.write_bytes(b"\n".join(lines) + b"\n")
    async with Store.open(tmp_path / "db.sqlite") as store:
        tailer = Tailer([LedgerSpec(str(ledger))], EventStore(store), parse_money(1000))
        await tailer.poll()
        tailer.close()
        row = await store.fetchone("SELECT coalesce(sum(cost), 0), count(*) FROM events")
        quarantined = await EventStore(store).quarantine_count()
    assert row[0] == sum(parse_money(f"0.0{i:02d}") for i in range(1, 41)) and row[1] == 40
    assert quarantined == len([b for b in bad_lines if b.strip()])


def test_status_never_fails_while_a_writer_ingests(tmp_path):
    (tmp_path / "ledgers").mkdir()
    write_ledger(tmp_path / "ledgers" / "app.jsonl", 150_000, seed=5)
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n[[budgets]]\nname = "all"\ndaily = 5\n')
    guardd("status", "-c", str(cfg), cwd=tmp_path).communicate(timeout=60)  # create the store first
    writer = guardd("ingest", "ledgers/app.jsonl", "-c", str(cfg), cwd=tmp_path)
    runs = 0
    while writer.poll() is None:
        proc = guardd("status", "--json", "-c", str(cfg), cwd=tmp_path)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        json.loads(out)
        runs += 1
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0 and runs >= 2, err


def test_a_parsing_worker_killed_mid_ingest_loses_and_doubles_nothing(tmp_path):
    (tmp_path / "ledgers").mkdir()
    expected = write_ledger(tmp_path / "ledgers" / "app.jsonl", 300_000, seed=4)
    cfg = tmp_path / "guardd.toml"
    cfg.write_text('[guardd]\nstate_dir = "state"\n')
    proc = guardd("ingest", "--workers", "2", "ledgers/app.jsonl", "--json", "-c", str(cfg), cwd=tmp_path)
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        generations = descendants(proc.pid)
        victim = generations[1][0] if len(generations) > 1 else None  # the forkserver's children: workers
        time.sleep(0.01)
    assert victim is not None, "no worker process appeared"
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert b"a parsing worker died" in err
    assert json.loads(out)["read"] == 300_000
    report = report_total(tmp_path, cfg)
    assert Decimal(report["total"]) == expected and report["events"] == 300_000

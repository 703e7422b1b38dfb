"""The daemon catching up on a backlog, against `guardd ingest` on the same file in the same run.

    python bench/catchup.py [--shape steady|mixed|sequential] [--lines 1000000] [--runs 5] [--seed 7] [--stop]

Generates the ledger with bench/genledger.py (seeded), then, in each run and one after the other on the same file:
- ``guardd ingest FILE`` into a fresh state folder: wall time from the command's start to its exit;
- ``guardd run`` with the file already in its ledger folder (a backlog found at start) into another fresh state
  folder: wall time from the command's start until the file's committed checkpoint reaches the end of the file
  (read from the ``files`` table, read-only, every 50 ms), then SIGTERM.
Both times include the interpreter's start and opening the store, so the ratio compares like with like. Each run
checks that both state folders report the generator's exact decimal total, and prints both rates and the ratio
daemon/ingest; with ``--runs N`` the medians. With ``--stop``, each run also starts a third daemon, sends SIGTERM
once a third of the backlog is committed, and prints how long the daemon took to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = """
[guardd]
state_dir = "state"
[[ledgers]]
path = "ledgers/*.jsonl"
[[budgets]]
name = "all"
monthly = 1000000000
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shape", choices=["steady", "mixed", "sequential"], default="steady")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--stop", action="store_true", help="also time SIGTERM a third of the way into the backlog")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ledger = work / "ledger.jsonl"
        gen = subprocess.run(
            [sys.executable, str(HERE / "genledger.py"), str(ledger), "--lines", str(args.lines),
             "--seed", str(args.seed), "--shape", args.shape],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        expected = Decimal(gen.stderr.strip().split("=", 1)[1])
        ratios: list[float] = []
        ingest_rates: list[float] = []
        daemon_rates: list[float] = []
        stops: list[float] = []
        for run in range(1, args.runs + 1):
            ingest_s, ingest_total = ingest_once(work / f"ingest{run}", ledger)
            daemon_s, daemon_total = catch_up_once(work / f"daemon{run}", ledger)
            ingest_rates.append(args.lines / ingest_s)
            daemon_rates.append(args.lines / daemon_s)
            ratios.append(ingest_s / daemon_s)
            exact = ingest_total == expected and daemon_total == expected
            stop = f"; SIGTERM a third of the way in: exited in {stop_once(work / f'stop{run}', ledger):.2f} s" if (
                args.stop) else ""  # fmt: skip
            if args.stop:
                stops.append(float(stop.rsplit(" in ", 1)[1].split()[0]))
            print(
                f"run {run} ({args.shape}, {args.lines:,} lines): guardd ingest {ingest_s:.2f} s "
                f"({args.lines / ingest_s:,.0f} lines/s); daemon catch-up {daemon_s:.2f} s "
                f"({args.lines / daemon_s:,.0f} lines/s); daemon/ingest {ingest_s / daemon_s:.2f}{stop}; totals "
                f"{'== exact' if exact else f'ingest {ingest_total}, daemon {daemon_total} != {expected}'}",
                flush=True,
            )
            if not exact:
                sys.exit(1)
        if args.runs > 1:
            tail = f"; SIGTERM exit max {max(stops):.2f} s" if stops else ""
            print(
                f"median of {args.runs} runs: guardd ingest {statistics.median(ingest_rates):,.0f} lines/s, daemon "
                f"catch-up {statistics.median(daemon_rates):,.0f} lines/s, daemon/ingest "
                f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}){tail}"
            )


def setup(folder: Path, ledger: Path) -> Path:
    """A fresh folder with a daemon configuration whose ledger folder holds ``ledger`` (a hard link)."""
    (folder / "ledgers").mkdir(parents=True)
    os.link(ledger, folder / "ledgers" / "app.jsonl")
    cfg = folder / "guardd.toml"
    cfg.write_text(CONFIG)
    return cfg


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GUARDD_", "OPENROUTER_"))}


def ingest_once(folder: Path, ledger: Path) -> tuple[float, Decimal]:
    cfg = setup(folder, ledger)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "guardd", "ingest", str(folder / "ledgers" / "app.jsonl"), "--json", "-c", str(cfg)],
        cwd=folder, env=env(), capture_output=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    return seconds, total(folder, cfg)


def start_daemon(folder: Path, cfg: Path) -> subprocess.Popen[bytes]:
    with (folder / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "guardd", "run", "-c", str(cfg)], cwd=folder, env=env(), stdout=log, stderr=log
        )


def committed(db: Path) -> int:
    """The committed checkpoint of the ledger file (0 before the daemon has committed one)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            row = conn.execute("SELECT max(offset) FROM files").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def catch_up_once(folder: Path, ledger: Path) -> tuple[float, Decimal]:
    cfg = setup(folder, ledger)
    size = ledger.stat().st_size
    db = folder / "state" / "guardd.db"
    began = time.perf_counter()
    proc = start_daemon(folder, cfg)
    try:
        while committed(db) < size:
            if proc.poll() is not None:
                sys.exit(f"the daemon exited with {proc.returncode}: {(folder / 'daemon.log').read_text()[-2000:]}")
            time.sleep(0.05)
        seconds = time.perf_counter() - began
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return seconds, total(folder, cfg)


def stop_once(folder: Path, ledger: Path) -> float:
    """Seconds from SIGTERM, sent once a third of the backlog is committed, to the daemon's exit."""
    cfg = setup(folder, ledger)
    size = ledger.stat().st_size
    db = folder / "state" / "guardd.db"
    proc = start_daemon(folder, cfg)
    try:
        while committed(db) < size // 3:
            time.sleep(0.01)
    finally:
        asked = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    took = time.perf_counter() - asked
    if code != 0:
        sys.exit(f"the daemon exited with {code} after SIGTERM")
    if committed(db) >= size:
        sys.exit("the backlog was done before SIGTERM: make it longer")
    shutil.rmtree(folder / "state")
    return took


def total(folder: Path, cfg: Path) -> Decimal:
    out = subprocess.run(
        [sys.executable, "-m", "guardd", "report", "--json", "--since", "2000-01-01", "--until", "2100-01-01",
         "-c", str(cfg)],
        cwd=folder, env=env(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    shutil.rmtree(folder / "state")
    return Decimal(json.loads(out)["total"])


if __name__ == "__main__":
    main()

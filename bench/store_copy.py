"""`guardd store copy --to URL`: a SQLite state of many events copied into PostgreSQL, the whole command timed.

    python bench/store_copy.py [--url postgresql://postgres@127.0.0.1:5432/test] [--lines 1000000]
                               [--shape steady] [--runs 3] [--ledger FILE]

Writes a seeded ledger (``bench/genledger.py``; or takes ``--ledger``), builds the state with ``guardd ingest``
(timed: the reference, on the same data in the same run), then, ``--runs`` times, copies it with the real
command into a fresh schema of the server of ``--url`` (dropped afterwards). Prints per run the wall time, rows
and events per second, the copy's time as a share of the ingest's, and the copy process's peak RSS (which must
not grow with the state: rows stream in batches). The copy checks its own totals before it commits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Run ``cmd``; return its wall time, its own peak RSS in MiB (``wait4``) and its stdout (exit on failure)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd[3:5])} failed ({proc.returncode}): {err.read().strip()}")
        return seconds, usage.ru_maxrss // 1024, out.read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--shape", default="steady")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ledger", type=Path, help="a ledger to use instead of generating one")
    args = ap.parse_args()
    guardd = [sys.executable, "-m", "guardd"]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger or Path(tmp) / "ledger.jsonl"
        if args.ledger is None:
            gen = [sys.executable, str(HERE / "genledger.py"), str(ledger), "--lines", str(args.lines)]
            subprocess.run([*gen, "--shape", args.shape], check=True, stderr=subprocess.DEVNULL)
        config = Path(tmp) / "guardd.toml"
        config.write_text(f'[guardd]\nstate_dir = "{tmp}/state"\ninstance = "bench-host"\n')
        ingest_s, _, out = timed([*guardd, "ingest", str(ledger), "--json", "-c", str(config)])
        events = json.loads(out)["stored"]
        db = Path(tmp) / "state" / "guardd.db"
        print(f"state: {events} events, {db.stat().st_size / 2**20:.0f} MiB; guardd ingest took {ingest_s:.1f}s")
        seconds = []
        for run in range(args.runs):
            schema = f"bench_copy_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in args.url else "?"
            url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
            try:
                wall, peak, out = timed([*guardd, "store", "copy", "--to", url, "-c", str(config)])
            finally:
                with psycopg.connect(args.url, autocommit=True) as admin:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
            rows = int(out.split(": ", 1)[1].split(" rows", 1)[0])
            seconds.append(wall)
            print(
                f"run {run + 1}: {wall:.1f}s, {rows / wall:,.0f} rows/s ({rows} rows), {events / wall:,.0f} events/s,"
                f" {wall / ingest_s:.2f}x the ingest's time, peak RSS {peak} MiB, load {os.getloadavg()[0]:.1f}"
            )
        median = statistics.median(seconds)
        print(f"median {median:.1f}s: {events / median:,.0f} events/s, {median / ingest_s:.2f}x the ingest's time")


if __name__ == "__main__":
    main()

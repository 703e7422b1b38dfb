"""Aggregate ingest into the shared PostgreSQL store: several instances, each parsing its own ledger, at once.

    python bench/pg_ingest.py [--url postgresql://postgres@127.0.0.1:5432/test] [--instances 3]
                              [--lines 1000000] [--shape steady] [--runs 1]

Writes ``--instances`` seeded ledgers (``--lines`` in all, ``bench/genledger.py``), creates a fresh database on
the server of ``--url`` (dropped afterwards), then starts one process per instance that reads its ledger with
guardd's parser and stores every batch with its checkpoint through ``PgEventStore.write_batch`` (COPY, then
``INSERT … ON CONFLICT``). Prints lines per second over the wall time of all of them, and checks that the stored
total equals the ledgers' exact total. (The daemon does not run on PostgreSQL yet: this drives the store layer
the daemon will use, with the same parser and batch size as ``guardd ingest``.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--shape", default="steady")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--worker", nargs=3, metavar=("URL", "INSTANCE", "LEDGER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(worker(*args.worker))
        return
    with tempfile.TemporaryDirectory() as tmp:
        ledgers, total = [], Decimal(0)
        for i in range(args.instances):
            path = Path(tmp) / f"host-{i}.jsonl"
            gen = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "genledger.py"),
                    str(path),
                    "--lines",
                    str(args.lines // args.instances),
                    "--seed",
                    str(100 + i),
                    "--shape",
                    args.shape,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            total += Decimal(gen.stderr.strip().rsplit("total=", 1)[1].split()[0])
            ledgers.append(path)
        rates = [run_once(args.url, ledgers, total, args.lines) for _ in range(args.runs)]
    print(
        f"aggregate ingest: median {statistics.median(rates):,.0f} lines/s over {args.runs} run(s) "
        f"({args.instances} instances, {args.lines:,} lines, shape {args.shape})"
    )


def run_once(server: str, ledgers: list[Path], total: Decimal, lines: int) -> float:
    name = f"guardd_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        asyncio.run(prepare(url))
        started = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, __file__, "--worker", url, f"host-{i}", str(path)])
            for i, path in enumerate(ledgers)
        ]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - started
        if any(codes):
            raise SystemExit(f"a worker failed: {codes}")
        with psycopg.connect(url) as conn:
            stored, count = conn.execute("SELECT coalesce(sum(cost), 0), count(*) FROM events").fetchone()
        exact = "exact" if stored == total else f"WRONG: stored {stored}, ledgers {total}"
        rate = lines / seconds
        print(
            f"{lines:,} lines by {len(ledgers)} instances in {seconds:.2f} s: {rate:,.0f} lines/s; "
            f"{count:,} events, total {exact}"
        )
        return rate
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def prepare(url: str) -> None:
    from guardd.store.postgres.db import PgStore

    async with PgStore.open(url, "bench"):
        pass  # creates the schema once, before the instances race


async def worker(url: str, instance: str, ledger: str) -> None:
    from guardd.ledger.lines import fingerprint
    from guardd.ledger.parse import LineParser, read_batch
    from guardd.store.api import Checkpoint
    from guardd.store.postgres.db import PgStore
    from guardd.store.postgres.events import PgEventStore

    fd = os.open(ledger, os.O_RDONLY)
    fp = fingerprint(fd) or ""
    st = os.fstat(fd)
    parser = LineParser("auto", {}, 1000 * 10**12)
    async with PgStore.open(url, instance) as store:
        events = PgEventStore(store)
        offset, stored = 0, 0
        while True:
            parsed = read_batch(fd, fp, ledger, parser, offset)
            if parsed.end == offset:
                break
            cp = Checkpoint("bench", ledger, st.st_dev, st.st_ino, fp, parsed.end, st.st_size, "", stored, 0, None)
            result = await events.write_batch(parsed, cp)
            stored += result.stored
            offset = parsed.end
    os.close(fd)


if __name__ == "__main__":
    main()

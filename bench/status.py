"""`guardd status --json` against a store of many events (default 10 million), for the whole process.

    python bench/status.py [--events 10000000] [--series 200] [--runs 5]

Builds the store directly in SQL (events over the last 90 days across many series, with the hour and day
rollups guardd keeps), configures 6 budgets with daily/weekly/monthly windows and a rolling cap in
Europe/Berlin, then times the real command end to end: interpreter start, config, store, every window sum.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guardd.core.batch import DAY_MS, HOUR_MS


def build(db: Path, events: int, series: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "guardd", "status", "-c", str(db.parent.parent / "guardd.toml")],
        capture_output=True,
        check=True,
    )  # creates and migrates the store
    conn = sqlite3.connect(db, isolation_level=None)
    now_ms = int(time.time() * 1000)
    span = 90 * DAY_MS
    conn.executemany(
        "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (?,?,?,?,?,?)",
        [
            (
                i,
                f'["model-{i % 20}","key-{i % 8}","P",[["svc","s{i}"],["team","t{i % 5}"]]]',
                f"model-{i % 20}",
                f"key-{i % 8}",
                "P",
                f'{{"svc": "s{i}", "team": "t{i % 5}"}}',
            )
            for i in range(1, series + 1)
        ],
    )
    conn.execute("BEGIN")
    # h: a unique stand-in for the key hash (guardd.core.batch.key_hash); this store is only read.
    conn.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {events})
        INSERT INTO events(h, k, ts, series, cost) SELECT i, 'g:' || i, {now_ms - span} + (i * {span // events}),
        1 + (i % {series}), 1000000 + (i % 997) * 1000 FROM n"""
    )
    for level, size in ((0, HOUR_MS), (1, DAY_MS)):
        conn.execute(
            f"INSERT INTO rollups SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events GROUP BY 2, 3"
        )
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (for profiling)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        budgets = (
            "".join(
                f'[[budgets]]\nname = "b{i}"\nmatch = {{ team = "t{i % 5}" }}\n'
                "daily = 50\nweekly = 300\nmonthly = 1000\n"
                f'rolling = [{{ window = "10m", limit = 5 }}]\n'
                for i in range(5)
            )
            + '[[budgets]]\nname = "all"\nmonthly = 100000\ndaily = 5000\n'
        )
        (work / "guardd.toml").write_text(f'[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n{budgets}')
        t0 = time.perf_counter()
        build(work / "state" / "guardd.db", args.events, args.series)
        print(f"built a store of {args.events:,} events in {time.perf_counter() - t0:.0f} s")
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "guardd", "status", "--json", "-c", str(work / "guardd.toml")],
                capture_output=True,
                check=True,
            )
            times.append((time.perf_counter() - t) * 1000)
    print(
        f"guardd status --json, whole process: median {statistics.median(times):.0f} ms, "
        f"max {max(times):.0f} ms (n={len(times)})"
    )


if __name__ == "__main__":
    main()

"""`guardd status --json` against a store of many events (default 10 million), for the whole process.

    python bench/status.py [--events 10000000] [--series 200] [--runs 5] [--warmup 2] [--keep DIR]

Builds the store directly in SQL (events over the last 90 days across many series, with the hour and day
rollups guardd keeps), configures 6 budgets with daily/weekly/monthly windows and a rolling cap in
Europe/Berlin, then times the real command end to end: interpreter start, config, store, every window sum — beside
``python -c pass`` in the same rounds, the reference that shows how loaded the machine is.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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
            "INSERT INTO rollups(level, bucket, series, cost, events, unpriced)"
            f" SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events GROUP BY 2, 3"
        )
    conn.execute("COMMIT")
    conn.close()


CPU: dict[str, list[float]] = {}
"""CPU milliseconds (user + system) of each timed process, by command: on a shared machine a steadier figure than
the wall clock, which other tenants stretch."""


def _time(cmd: list[str], env: dict[str, str]) -> float:
    """Wall-clock milliseconds of one whole process, output discarded; a failing command stops the benchmark. Its
    CPU time goes to :data:`CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, env=env)
    wall = (time.perf_counter() - t) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    CPU.setdefault(" ".join(cmd), []).append(cpu)
    return wall


def _line(name: str, times: list[float]) -> str:
    return (
        f"{name:<34} median {statistics.median(times):6.0f} ms  min {min(times):6.0f}  max {max(times):6.0f}"
        f"  runs {' '.join(f'{t:.0f}' for t in times)}"
    )


def measure(work: Path, runs: int, warmup: int) -> None:
    """hyperfine-style: ``warmup`` untimed runs of each command, then ``runs`` rounds, each timing the reference
    (``python -c pass``: interpreter start alone), ``guardd status --json`` with its validated configuration cached
    (the path every run after the first takes), and the same with an empty cache (full pydantic validation)."""
    status = [sys.executable, "-m", "guardd", "status", "--json", "-c", str(work / "guardd.toml")]
    reference = [sys.executable, "-c", "pass"]
    cache = work / "cache"
    # Bytecode cached, as after `pip install` (which compiles it): a PYTHONDONTWRITEBYTECODE inherited from the
    # shell would make every run compile guardd's modules again (≈ 50 files), which no installed guardd does.
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _ in range(warmup):
        _time(reference, env)
        _time(status, env)
    CPU.clear()
    ref, warm, cold = [], [], []
    for _ in range(runs):
        ref.append(_time(reference, env))
        warm.append(_time(status, env))
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(_time(status, env))
    print(_line("python -c pass (reference)", ref))
    print(_line("guardd status --json", warm))
    print(_line("  ... configuration not cached", cold))
    median_ref, median_warm = statistics.median(ref), statistics.median(warm)
    cpu_ref = statistics.median(CPU[" ".join(reference)])
    cpu_status = statistics.median(CPU[" ".join(status)][0::2])  # the warm runs (the cold ones come between)
    print(
        f"status over the reference: +{median_warm - median_ref:.0f} ms (x{median_warm / median_ref:.1f}); "
        f"CPU median {cpu_status:.0f} ms vs {cpu_ref:.0f} ms (x{cpu_status / cpu_ref:.1f}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (for profiling; reused when it exists)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "state" / "guardd.db").exists():
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
        measure(work, args.runs, args.warmup)


if __name__ == "__main__":
    main()

"""``guardd report`` and ``guardd status`` over many series (one per conversation: review finding F8), on SQLite
and PostgreSQL, whole commands, one code tree or several interleaved (the code before a change beside after it).

    python bench/report.py [--backend sqlite|postgresql|both] [--events 200000] [--series 100000] [--days 20]
                           [--runs 3] [--code DIR ...] [--timeout 900]

Builds the store directly in SQL: ``--events`` events over the last ``--days`` days, in ``--series`` series, each a
session (``labels = {session, team}``) whose events are consecutive, with the hour and day rollups guardd keeps.
Then, round after round and for each ``--code`` tree in turn (``python -m guardd`` run from it, so it imports that
tree), times ``report --json --since 30d`` (by model), ``report --json --since 30d --by label:session`` and
``status --json`` (6 budgets as ``bench/status.py``'s: 5 match a team, 20 % of the series each). Prints per command:
wall time, the client's CPU and, on PostgreSQL, the CPU of the server processes that served it (its backend and any
parallel workers, found by application name and read from ``/proc`` every 20 ms: a local server). CPU is the figure
to compare on a shared machine. A command over ``--timeout`` seconds is stopped and shown as ``>timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench.cluster import fresh_database  # noqa: E402 - after the path is set

DEFAULT_URL = os.environ.get("GUARDD_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
TICK = os.sysconf("SC_CLK_TCK")
BUDGETS = (
    "".join(
        f'[[budgets]]\nname = "b{i}"\nmatch = {{ team = "t{i % 5}" }}\ndaily = 50\nweekly = 300\nmonthly = 1000\n'
        'rolling = [{ window = "10m", limit = 5 }]\n'
        for i in range(5)
    )
    + '[[budgets]]\nname = "all"\nmonthly = 100000\ndaily = 5000\n'
)
COMMANDS = {
    "report --json --since 30d": ["report", "--json", "--since", "30d"],
    "report --json --since 30d --by label:session": ["report", "--json", "--since", "30d", "--by", "label:session"],
    "status --json": ["status", "--json"],
}


def series_rows(series: int) -> list[tuple[int, str, str, str, str, str]]:
    from guardd.core.batch import series_sig

    rows = []
    for i in range(1, series + 1):
        labels = {"session": f"sess-{i}", "team": f"t{i % 5}"}
        model, key = f"model-{i % 20}", f"key-{i % 8}"
        rows.append((i, series_sig(model, key, "P", labels), model, key, "P", json.dumps(labels, sort_keys=True)))
    return rows


def span(events: int, series: int, days: int) -> tuple[int, int, str]:
    """The first event's time, the step between events, and the SQL of event ``i``'s series (consecutive events
    share a session)."""
    now_ms = int(time.time() * 1000) - 60_000
    step = days * 86_400_000 // events
    return now_ms - days * 86_400_000, step, f"1 + ((i - 1) * {series}) / {events}"


def build_sqlite(home: Path, events: int, series: int, days: int) -> None:
    from guardd.core.batch import DAY_MS, HOUR_MS

    subprocess.run([sys.executable, "-m", "guardd", "status", "-c", str(home / "guardd.toml")], capture_output=True)
    conn = sqlite3.connect(home / "state" / "guardd.db", isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (?,?,?,?,?,?)", series_rows(series)
    )
    first, step, sid = span(events, series, days)
    conn.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {events})
        INSERT INTO events(h, k, ts, series, cost) SELECT i, 'g:' || i, {first} + i * {step}, {sid},
        1000000 + (i % 997) * 1000 FROM n"""
    )
    for level, size in ((0, HOUR_MS), (1, DAY_MS)):
        conn.execute(
            "INSERT INTO rollups(level, bucket, series, cost, events, unpriced)"
            f" SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events GROUP BY 2, 3"
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def build_postgres(url: str, events: int, series: int, days: int) -> None:
    import asyncio

    from cluster import KEY, prepare

    from guardd.core.batch import DAY_MS, HOUR_MS
    from guardd.store.postgres.ingest import hash_sql

    asyncio.run(prepare(url))
    first, step, sid = span(events, series, days)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO series(id, sig, model, key, provider, labels) VALUES (%s, %s, %s, %s, %s, %s)",
            series_rows(series),
        )
        conn.execute(
            f"INSERT INTO events(h, k, ts, series, cost, instance) SELECT {hash_sql(KEY)}, {KEY},"
            f" {first} + i * {step}, {sid}, (1000000 + (i % 997) * 1000) * 0.000000000001, 'bench'"
            f" FROM generate_series(1::bigint, {events}) i"
        )
        for level, size in ((0, HOUR_MS), (1, DAY_MS)):
            conn.execute(
                "INSERT INTO rollups (level, bucket, series, cost, events, unpriced)"
                f" SELECT {level}, ts / {size}, series, sum(cost), count(*), 0 FROM events GROUP BY 2, 3"
            )
        conn.execute("VACUUM ANALYZE")


class ServerCpu:
    """CPU seconds of the server processes whose application name is ``name`` (and their parallel workers),
    sampled from ``/proc`` every 20 ms while the block runs (a process's last 20 ms may be missed)."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name, self.last = url, name, {}
        self.stop = threading.Event()

    def __enter__(self) -> ServerCpu:
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s OR leader_pid IN"
                    " (SELECT pid FROM pg_stat_activity WHERE application_name = %s)",
                    (self.name, self.name),
                ).fetchall()
                for (pid,) in pids:
                    try:
                        with open(f"/proc/{pid}/stat") as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                        self.last[pid] = (int(fields[11]) + int(fields[12])) / TICK
                    except OSError:
                        pass
                time.sleep(0.02)

    @property
    def seconds(self) -> float:
        return sum(self.last.values())


def run(code: str, home: Path, args: list[str], timeout: float, url: str | None) -> tuple[float, float, float | None]:
    """Wall seconds, client CPU seconds and server CPU seconds (PostgreSQL) of one command (inf when stopped)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = code
    env["XDG_CACHE_HOME"] = str(home / "cache")
    config = home / (f"guardd-{uuid.uuid5(uuid.NAMESPACE_URL, code).hex[:8]}.toml" if url else "guardd.toml")
    if url:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        sep = "&" if "?" in url else "?"
        config.write_text(
            f'[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\ninstance = "bench"\n'
            f'[store]\nurl = "{url}{sep}application_name={name}"\n{BUDGETS}'
        )
    cmd = [sys.executable, "-m", "guardd", *args, "-c", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    server = ServerCpu(url, name) if url else None
    try:
        if server:
            server.__enter__()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=code, env=env, timeout=timeout)
        if done.returncode not in (0, 1, 2):
            raise SystemExit(f"{' '.join(args)} from {code}: exit {done.returncode}: {done.stderr.strip()[:400]}")
        wall = time.perf_counter() - started
    except subprocess.TimeoutExpired:
        wall = float("inf")
    finally:
        if server:
            server.__exit__()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, server.seconds if server else None


def ms(x: float) -> str:
    return ">timeout" if x == float("inf") else f"{x * 1000:.0f}"


def measure(backend: str, home: Path, codes: list[str], runs: int, timeout: float, url: str | None) -> None:
    results: dict[tuple[str, str], list[tuple[float, float, float | None]]] = {}
    for code in codes:  # untimed: byte-code written, configuration cached
        run(code, home, ["status", "--json"], timeout, url)
    for r in range(runs):
        for code in codes:
            for label, args in COMMANDS.items():
                got = run(code, home, args, timeout, url)
                results.setdefault((code, label), []).append(got)
                server = "" if got[2] is None else f", server CPU {ms(got[2])} ms"
                print(
                    f"[{backend}] run {r + 1} {code}: {label}: wall {ms(got[0])} ms, CPU {ms(got[1])} ms{server}"
                    f"; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    print(f"\n[{backend}] medians over {runs} runs")
    for (code, label), got in results.items():
        wall, cpu = statistics.median(g[0] for g in got), statistics.median(g[1] for g in got)
        server = "" if got[0][2] is None else f"  server CPU {ms(statistics.median(g[2] or 0 for g in got)):>7} ms"
        print(f"  {code:<28} {label:<46} wall {ms(wall):>8} ms  CPU {ms(cpu):>7} ms{server}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--code", action="append", help="a guardd source tree to run (default: this one)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--db-prefix", default="guardd_bench_", help="the name of the database made (and dropped)")
    args = ap.parse_args()
    codes = [str(Path(c).resolve()) for c in args.code or [HERE.parent]]
    print(f"{args.events:,} events in {args.series:,} series over {args.days} days; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if args.backend in ("sqlite", "both"):
            (home / "guardd.toml").write_text(f'[guardd]\nstate_dir = "state"\ntimezone = "Europe/Berlin"\n{BUDGETS}')
            t0 = time.perf_counter()
            build_sqlite(home, args.events, args.series, args.days)
            print(f"built the SQLite store in {time.perf_counter() - t0:.0f} s")
            measure("sqlite", home, codes, args.runs, args.timeout, None)
        if args.backend in ("postgresql", "both"):
            with fresh_database(args.url, args.db_prefix) as url:
                t0 = time.perf_counter()
                build_postgres(url, args.events, args.series, args.days)
                print(f"built the PostgreSQL store in {time.perf_counter() - t0:.0f} s")
                measure("postgresql", home, codes, args.runs, args.timeout, url)


if __name__ == "__main__":
    main()
